package audit

import "fmt"

// Sealer seals records into the chain at a head, as the seal function of
// Store.AppendAuditRecords does. A store method that commits a durable
// change (a revocation, an issued certificate) takes one and calls it in
// the same transaction, after locking the head, so that the change and its
// records are committed together or not at all: no change without its
// record after a failed append, no record of a change that was rolled
// back. It may be called again when the store retries the transaction.
type Sealer func(head Head) ([]Record, error)

// Prepare validates entries as Append does and returns the Sealer that
// writes them, in order, at whatever head the caller's transaction holds.
// The records' time is taken when they are sealed. Prepare with no entries
// returns a Sealer that writes nothing.
func (l *Log) Prepare(entries ...Entry) (Sealer, error) {
	recs := make([]Record, len(entries))
	for i, e := range entries {
		r, err := l.prepare(e)
		if err != nil {
			return nil, fmt.Errorf("audit: preparing %s record: %w", e.Action, err)
		}
		recs[i] = r
	}
	return func(h Head) ([]Record, error) {
		out := make([]Record, len(recs))
		l.seal(h, recs, out)
		return out, nil
	}, nil
}
