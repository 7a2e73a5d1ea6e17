package audit

import (
	"context"
	"errors"
	"fmt"
)

// RecordHashReader is what a chain store may offer besides ChainReader:
// the stored hash of one record, looked up by seq, nil when the chain has
// no such record. store.DB implements it with a primary-key read.
type RecordHashReader interface {
	AuditRecordHash(ctx context.Context, seq int64) ([]byte, error)
}

// RecordHash returns the stored hash of record seq, nil when the chain has
// none. It reads the one record when chain implements RecordHashReader;
// otherwise it starts a walk at seq and stops at the first record, which
// costs a whole page of records on a paging store, once per call: the
// checkpoint writer calls it at every checkpoint and a restore once per
// line of the checkpoint file (hundreds of thousands a year).
func RecordHash(ctx context.Context, chain ChainReader, seq int64) ([]byte, error) {
	if r, ok := chain.(RecordHashReader); ok {
		h, err := r.AuditRecordHash(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("audit: reading the hash of record %d: %w", seq, err)
		}
		return h, nil
	}
	var h []byte
	err := chain.AuditRecords(ctx, seq, func(r Record) error {
		if r.Seq == seq {
			h = r.Hash
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return h, nil
}
