package audit

import "fmt"

// Sealer seals records into the chain at a head, as the seal function of
// Store.AppendAuditRecords does. A store method that commits a durable
// change (a revocation, an issued certificate) takes one and seals it in
// the same transaction, after locking the head, so that the change and its
// records are committed together or not at all: no change without its
// record after a failed append, no record of a change that was rolled
// back.
type Sealer interface {
	// Seal returns the records continuing the chain at head. It may be
	// called again when the store retries the transaction.
	Seal(head Head) ([]Record, error)
	// Committed tells that the records Seal returned last were committed;
	// the store calls it after the commit.
	Committed()
}

// FailureNoter is implemented by a Sealer that wants to know that its
// records could not be sealed, written or committed into the chain and the
// change they record was therefore rolled back, or answered as failed (the
// store tells it once, after the transaction failed for good, COMMIT
// included).
type FailureNoter interface {
	Failed(err error)
}

// SealerFunc is a Sealer whose Committed does nothing.
type SealerFunc func(head Head) ([]Record, error)

// Seal calls f.
func (f SealerFunc) Seal(h Head) ([]Record, error) { return f(h) }

// Committed does nothing.
func (SealerFunc) Committed() {}

// Prepare validates entries as Append does and returns the Sealer that
// writes them, in order, at whatever head the caller's transaction holds.
// The records' time is taken when they are sealed; once committed they
// count in thiqa_audit_records_total like appended ones.
func (l *Log) Prepare(entries ...Entry) (Sealer, error) {
	recs := make([]Record, len(entries))
	for i, e := range entries {
		r, err := l.prepare(e)
		if err != nil {
			return nil, fmt.Errorf("audit: preparing %s record: %w", e.Action, err)
		}
		recs[i] = r
	}
	return &prepared{l: l, recs: recs}, nil
}

// prepared is the Sealer of Log.Prepare.
type prepared struct {
	l    *Log
	recs []Record
}

// Seal implements Sealer.
func (p *prepared) Seal(h Head) ([]Record, error) {
	out := make([]Record, len(p.recs))
	p.l.seal(h, p.recs, out)
	return out, nil
}

// Committed implements Sealer: it counts the records.
func (p *prepared) Committed() {
	for _, r := range p.recs {
		p.l.m.records(r.Outcome).Inc()
	}
}

// Failed implements FailureNoter: a change whose records could not be
// written in its transaction counts, and is logged, as one failed append
// (thiqa_audit_append_failures_total), as when Append's batch fails.
func (p *prepared) Failed(err error) {
	p.l.m.failures.Inc()
	var action, object string
	if len(p.recs) > 0 {
		action, object = p.recs[0].Action, p.recs[0].Object
	}
	p.l.logger.Error("audit: records not written with their change; the change was rolled back",
		"records", len(p.recs), "action", action, "object", object, "err", err)
}
