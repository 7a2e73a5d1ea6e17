package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// BreakKind says how the chain is broken.
type BreakKind string

// The kinds of break Verify reports.
const (
	// BreakHashMismatch: a record's contents do not match its hash; the
	// record was edited.
	BreakHashMismatch BreakKind = "hash-mismatch"
	// BreakPrevHashMismatch: a record does not link to the one before it;
	// a record was deleted, inserted or replaced (with a recomputed hash).
	BreakPrevHashMismatch BreakKind = "prev-hash-mismatch"
	// BreakSeqGap: a seq number is missing; a record was deleted.
	BreakSeqGap BreakKind = "seq-gap"
	// BreakHeadMismatch: the chain's end does not match the head; records
	// were truncated from the tail, or added after it without the log.
	BreakHeadMismatch BreakKind = "head-mismatch"
)

// Break is the first place where the chain is broken.
type Break struct {
	// Seq is the record where the break shows (for a gap or a truncated
	// tail: the first missing seq).
	Seq int64
	// Kind says what is wrong.
	Kind BreakKind
	// Detail explains it in words.
	Detail string
}

// Report is the result of Verify.
type Report struct {
	// Verified counts the records checked and found valid, from seq 1 (from
	// the anchor, for an incremental verification) up to the break (or the
	// end).
	Verified int64
	// LastSeq is the seq of the last valid record.
	LastSeq int64
	// Head is the head read when the walk began.
	Head Head
	// Break is the first break, nil when the chain is intact.
	Break *Break
	// Archived is what the archived ranges say about the records before
	// the first live one (Below is 1 when none are archived).
	Archived ArchivedPrefix
}

// OK reports whether the whole chain verified.
func (r Report) OK() bool { return r.Break == nil }

// String describes the report in one line.
func (r Report) String() string {
	if r.OK() {
		return fmt.Sprintf("audit chain intact: %d records verified (head seq %d)", r.Verified, r.Head.Seq)
	}
	return fmt.Sprintf("audit chain broken at seq %d (%s): %s; %d records verified before it",
		r.Break.Seq, r.Break.Kind, r.Break.Detail, r.Verified)
}

// errStop ends the walk at the first break.
var errStop = errors.New("stop")

// Verify walks the whole chain in seq order, streaming (constant memory),
// and reports the first break. It recomputes every record's hash, checks
// every link and the seq numbering, and compares the end of the chain with
// the head. It may run while other processes append: records committed
// during the walk are verified too. An error means the store could not be
// read; a broken chain is a Report with Break set.
//
// When the oldest records were archived (st is an ArchiveLister with
// archived ranges), the walk starts at the first live record, which must
// chain from the hash of the last archived record as the store's row for
// that range names it; the archived records themselves are not read
// (VerifyArchiveFiles checks the files). Report.Archived says which.
//
// An archive that starts or moves on during the walk deletes the records
// it began at: when the walk finds a break and the archived ranges have
// changed since it began, it walks again, once.
func Verify(ctx context.Context, st Store) (Report, error) {
	for attempt := 1; ; attempt++ {
		rep, err := verifyLive(ctx, st)
		if err != nil || rep.OK() || attempt == 2 {
			return rep, err
		}
		if moved, err := archivesMoved(ctx, st, rep.Archived); err != nil || !moved {
			return rep, err
		}
	}
}

// verifyLive is one walk of Verify.
func verifyLive(ctx context.Context, st Store) (Report, error) {
	ls, p, brk, err := archiveStart(ctx, st)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	if brk != nil {
		return Report{Break: brk, Archived: p}, nil
	}
	rep, err := verifyFrom(ctx, st, ls)
	rep.Archived = p
	return rep, err
}

// verifyFrom is Verify from record ls.from on. ls.prev is the hash record
// from must link to; nil when record from is an anchor vouched for by a
// signed checkpoint (VerifySince), whose link to the record before it is
// then not checked (nor is anything before it). With ls.window (a range
// being deleted by an archive), the first record may be any of the range,
// unlinked, or the one after it, linked to the range's last hash; the
// range's last record, while live, must have that hash. Verified and
// LastSeq count from the first record read.
func verifyFrom(ctx context.Context, st Store, ls liveStart) (Report, error) {
	from, prev, w := ls.from, ls.prev, ls.window
	h1, err := st.AuditHead(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	rep := Report{Head: h1}
	if prev != nil {
		rep.LastSeq = from - 1 // record 0, or the last archived one
	}
	expect := from
	buf := make([]byte, 0, 512)
	err = st.AuditRecords(ctx, from, func(r Record) error {
		if w != nil && rep.Verified == 0 && r.Seq > expect && r.Seq <= w.LastSeq+1 {
			// The archive deleting the range has got this far.
			expect, prev = r.Seq, nil
			if r.Seq == w.LastSeq+1 {
				prev = w.LastHash
			}
		}
		switch {
		case w != nil && r.Seq == w.LastSeq && !bytes.Equal(r.Hash, w.LastHash):
			rep.Break = &Break{Seq: r.Seq, Kind: BreakArchiveMismatch,
				Detail: fmt.Sprintf("record %d does not have the hash the archived range %d-%d (%s) names", r.Seq, w.FirstSeq, w.LastSeq, w.File)}
		case r.Seq != expect:
			rep.Break = &Break{Seq: expect, Kind: BreakSeqGap,
				Detail: fmt.Sprintf("record %d is missing (the next record is %d)", expect, r.Seq)}
		case prev != nil && !bytes.Equal(r.PrevHash, prev):
			rep.Break = &Break{Seq: r.Seq, Kind: BreakPrevHashMismatch,
				Detail: fmt.Sprintf("record %d does not link to record %d", r.Seq, r.Seq-1)}
		default:
			buf = appendCanonical(buf[:0], r)
			if !bytes.Equal(sum256(buf), r.Hash) {
				rep.Break = &Break{Seq: r.Seq, Kind: BreakHashMismatch,
					Detail: fmt.Sprintf("record %d does not match its hash (edited)", r.Seq)}
			} else if r.Seq == h1.Seq && !bytes.Equal(r.Hash, h1.Hash) {
				rep.Break = &Break{Seq: r.Seq, Kind: BreakHeadMismatch,
					Detail: fmt.Sprintf("record %d is not the one the head names", r.Seq)}
			}
		}
		if rep.Break != nil {
			return errStop
		}
		prev = r.Hash
		rep.Verified++
		rep.LastSeq = r.Seq
		expect++
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	if rep.Break != nil {
		return rep, nil
	}
	if rep.Verified == 0 && from > 1 && ls.prev == nil {
		// Nothing from the anchor on: the anchor record itself is gone.
		rep.Break = &Break{Seq: from, Kind: BreakSeqGap,
			Detail: fmt.Sprintf("record %d is missing (the chain ends before it)", from)}
		return rep, nil
	}
	if rep.LastSeq < h1.Seq {
		rep.Break = &Break{Seq: rep.LastSeq + 1, Kind: BreakHeadMismatch,
			Detail: fmt.Sprintf("the head names record %d but the chain ends at %d (tail truncated)", h1.Seq, rep.LastSeq)}
		return rep, nil
	}
	// Every record the walk saw was committed together with a head at least
	// as far on, so a head read now must reach the last record seen.
	h2, err := st.AuditHead(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	switch {
	case rep.LastSeq > h2.Seq:
		rep.Break = &Break{Seq: h2.Seq + 1, Kind: BreakHeadMismatch,
			Detail: fmt.Sprintf("records %d to %d lie beyond the head (%d)", h2.Seq+1, rep.LastSeq, h2.Seq)}
		// The records past the head are not vouched for.
		rep.Verified, rep.LastSeq = max(0, rep.Verified-(rep.LastSeq-h2.Seq)), h2.Seq
	case rep.LastSeq == h2.Seq && !bytes.Equal(prev, h2.Hash):
		rep.Break = &Break{Seq: rep.LastSeq, Kind: BreakHeadMismatch,
			Detail: fmt.Sprintf("record %d is not the one the head names", rep.LastSeq)}
	}
	return rep, nil
}
