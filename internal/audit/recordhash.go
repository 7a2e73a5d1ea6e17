package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"
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

// HashChainReader is a ChainReader that also reads one record's hash.
type HashChainReader interface {
	ChainReader
	RecordHashReader
}

// VerifyCheckpointsByLookup is VerifyCheckpoints for a chain that Verify
// has just found intact, up to a head no other writer moves meanwhile (a
// restore's own database): the same checks of every line (signature, seqs
// and times in order, an incomplete last line ignored), but each
// checkpoint's record is looked up by seq instead of walking the chain
// from the first checkpoint, which is near the start of the log. The
// checkpoints at archived seqs are held against the archived ranges only,
// and the end of every archived range must be vouched for by a signature
// (as VerifyCheckpointsAsOf and VerifyAll check it).
func VerifyCheckpointsByLookup(ctx context.Context, st HashChainReader, r io.Reader, pub crypto.PublicKey) (CheckpointReport, error) {
	arch, err := ReadArchivedPrefix(ctx, st)
	if err != nil {
		return CheckpointReport{}, err
	}
	sc := &checkpointScanner{r: bufio.NewReaderSize(r, MaxCheckpointLine+1), pub: pub, asOf: time.Now()}
	var rep CheckpointReport
	lastLine := 0
	for {
		c, ok, err := sc.nextFor(&rep)
		if err != nil {
			return rep, err
		}
		if rep.Problem != nil {
			return rep, nil
		}
		if !ok {
			break
		}
		if c.Seq < arch.Below {
			if !rep.noteArchived(arch, c, sc.line) {
				return rep, nil
			}
			rep.Verified++
			rep.Last, lastLine = &c, sc.line
			continue
		}
		h, err := st.AuditRecordHash(ctx, c.Seq)
		if err != nil {
			return rep, fmt.Errorf("audit: verifying checkpoints: %w", err)
		}
		switch {
		case h == nil:
			rep.Problem = &CheckpointProblem{Line: sc.line, Seq: c.Seq, Kind: CheckpointRecordMissing,
				Detail: fmt.Sprintf("the chain has no record %d — records were removed", c.Seq)}
			return rep, nil
		case !bytes.Equal(h, c.Hash):
			rep.Problem = &CheckpointProblem{Line: sc.line, Seq: c.Seq, Kind: CheckpointHashMismatch,
				Detail: fmt.Sprintf("record %d does not have the hash the checkpoint names — the chain was rewritten", c.Seq)}
			return rep, nil
		}
		rep.Verified++
		rep.Last, lastLine = &c, sc.line
	}
	if sc.later {
		rep.StoppedAt = sc.line
	}
	head, err := st.AuditHead(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: verifying checkpoints: %w", err)
	}
	rep.checkHead(head, lastLine)
	rep.checkArchiveEnds(arch, pub)
	return rep, nil
}
