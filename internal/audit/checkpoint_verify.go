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

// ChainReader reads the chain; store.DB implements it.
type ChainReader interface {
	AuditRecords(ctx context.Context, fromSeq int64, fn func(Record) error) error
	AuditHead(ctx context.Context) (Head, error)
}

// CheckpointProblemKind says what is wrong with a checkpoint.
type CheckpointProblemKind string

// The kinds of problem VerifyCheckpoints reports.
const (
	// CheckpointMalformed: a line (not the last) is not a checkpoint.
	CheckpointMalformed CheckpointProblemKind = "malformed"
	// CheckpointBadSignature: the signature does not verify with the
	// checkpoint public key (forged or edited line).
	CheckpointBadSignature CheckpointProblemKind = "bad-signature"
	// CheckpointSeqBackwards: a checkpoint's seq is below the one before.
	CheckpointSeqBackwards CheckpointProblemKind = "seq-backwards"
	// CheckpointTimeBackwards: a checkpoint's time is before the one before.
	CheckpointTimeBackwards CheckpointProblemKind = "time-backwards"
	// CheckpointRecordMissing: the chain has no record at the checkpoint's
	// seq; records were removed (and the head rewritten to hide it).
	CheckpointRecordMissing CheckpointProblemKind = "record-missing"
	// CheckpointHashMismatch: the record at the checkpoint's seq has
	// another hash; the chain was rewritten from there or before.
	CheckpointHashMismatch CheckpointProblemKind = "hash-mismatch"
	// CheckpointHeadBehind: the head is before the last checkpoint.
	CheckpointHeadBehind CheckpointProblemKind = "head-behind"
	// CheckpointChainBroken: the records read from the first checkpoint
	// on do not form a chain (a hash or a link does not hold, or a seq is
	// missing), although the chain walk before found them intact: the
	// database answered the two walks differently.
	CheckpointChainBroken CheckpointProblemKind = "chain-broken"
	// CheckpointArchiveUnvouched: nothing signed vouches for the end of
	// an archived range (its row keeps no checkpoint and none in the file
	// names its end, or the one it keeps does not verify or names another
	// record): the row was forged or edited to make records vanish. Line
	// is 0: the problem is in the database, not in the file.
	CheckpointArchiveUnvouched CheckpointProblemKind = "archive-unvouched"
)

// CheckpointProblem is the first checkpoint that does not hold.
type CheckpointProblem struct {
	// Line is the checkpoint's line number in the file, from 1.
	Line int
	// Seq is the checkpoint's seq (0 when the line does not parse).
	Seq int64
	// Kind says what is wrong.
	Kind CheckpointProblemKind
	// Detail explains it in words.
	Detail string
}

// CheckpointReport is the result of VerifyCheckpoints.
type CheckpointReport struct {
	// Verified counts the checkpoints found valid, in file order, up to
	// the problem (or the end).
	Verified int
	// Last is the last valid checkpoint (nil when there is none).
	Last *Checkpoint
	// Head is the chain head read after the walk.
	Head Head
	// StoppedAt is set when the file holds checkpoints written after the
	// verification began (a running server's): they are left for the next
	// run, and this is the line of the first of them.
	StoppedAt int
	// IncompleteLastLine is set when the file's last line has no "\n":
	// what a crash in the middle of a write leaves. It is ignored.
	IncompleteLastLine bool
	// IncompleteLine is that line's number.
	IncompleteLine int
	// Problem is the first problem, nil when every checkpoint holds.
	Problem *CheckpointProblem
	// ArchiveEnds counts the archived ranges whose end a checkpoint names
	// (with the hash the range records).
	ArchiveEnds int
	// archiveEnds holds the last seqs of those ranges.
	archiveEnds map[int64]bool
}

// OK reports whether every checkpoint held.
func (r CheckpointReport) OK() bool { return r.Problem == nil }

// String describes the report in one line.
func (r CheckpointReport) String() string {
	if p := r.Problem; p != nil {
		if p.Line == 0 {
			return p.Detail
		}
		if p.Seq == 0 {
			return fmt.Sprintf("checkpoint %d: %s", p.Line, p.Detail)
		}
		return fmt.Sprintf("checkpoint %d (seq %d): %s", p.Line, p.Seq, p.Detail)
	}
	if r.Last == nil {
		return "no checkpoints"
	}
	return fmt.Sprintf("%d verified, the last at seq %d (%s)", r.Verified, r.Last.Seq, r.Last.Time.Format(time.RFC3339))
}

// badSignature is the detail of a CheckpointBadSignature problem.
const badSignature = "the signature does not verify with the checkpoint public key (forged or edited)"

// checkpointScanner reads checkpoint lines one at a time (constant memory).
type checkpointScanner struct {
	r    *bufio.Reader
	line int
	pub  crypto.PublicKey
	prev *Checkpoint
	asOf time.Time // checkpoints after this are not read
	// later is set at the first checkpoint after asOf.
	later bool
	// unsigned skips the signature check (VerifySince's search for its
	// anchor, whose signature and every later one are checked after).
	unsigned bool
	// off counts the bytes read.
	off int64
}

// nextFor reads the next checkpoint for rep, noting there an incomplete
// last line and a problem; ok is false at the end of the file or at a
// problem.
func (s *checkpointScanner) nextFor(rep *CheckpointReport) (c Checkpoint, ok bool, err error) {
	c, ok, incomplete, p, err := s.next()
	if err != nil {
		return c, false, err
	}
	if incomplete {
		rep.IncompleteLastLine, rep.IncompleteLine = true, s.line
	}
	if p != nil {
		rep.Problem = p
		return c, false, nil
	}
	return c, ok, nil
}

// checkHead records the chain's head in rep, and a problem when it is
// behind the last checkpoint verified (read on line lastLine).
func (rep *CheckpointReport) checkHead(head Head, lastLine int) {
	rep.Head = head
	if rep.Last != nil && head.Seq < rep.Last.Seq {
		rep.Problem = &CheckpointProblem{Line: lastLine, Seq: rep.Last.Seq, Kind: CheckpointHeadBehind,
			Detail: fmt.Sprintf("the head (seq %d) is behind this checkpoint — records were removed or the database rolled back", head.Seq)}
	}
}

// next returns the next valid checkpoint. At the end of the file it
// returns ok false; an incomplete last line sets incomplete. A line that
// does not hold is returned as a problem.
func (s *checkpointScanner) next() (c Checkpoint, ok, incomplete bool, p *CheckpointProblem, err error) {
	raw, err := s.r.ReadSlice('\n')
	s.off += int64(len(raw))
	switch {
	case errors.Is(err, io.EOF):
		if len(raw) == 0 {
			return Checkpoint{}, false, false, nil, nil
		}
		s.line++
		return Checkpoint{}, false, true, nil, nil
	case errors.Is(err, bufio.ErrBufferFull):
		s.line++
		return Checkpoint{}, false, false, &CheckpointProblem{Line: s.line, Kind: CheckpointMalformed,
			Detail: fmt.Sprintf("line is longer than %d bytes", MaxCheckpointLine)}, nil
	case err != nil:
		return Checkpoint{}, false, false, nil, fmt.Errorf("audit: reading checkpoints: %w", err)
	}
	s.line++
	c, err = ParseCheckpointLine(raw)
	if err != nil {
		return Checkpoint{}, false, false, &CheckpointProblem{Line: s.line, Kind: CheckpointMalformed,
			Detail: fmt.Sprintf("not a checkpoint line: %v", err)}, nil
	}
	prob := func(kind CheckpointProblemKind, format string, args ...any) *CheckpointProblem {
		return &CheckpointProblem{Line: s.line, Seq: c.Seq, Kind: kind, Detail: fmt.Sprintf(format, args...)}
	}
	if !s.unsigned {
		if err := c.Verify(s.pub); err != nil {
			return Checkpoint{}, false, false, prob(CheckpointBadSignature, badSignature), nil
		}
	}
	if s.prev != nil {
		if c.Seq < s.prev.Seq {
			return Checkpoint{}, false, false, prob(CheckpointSeqBackwards, "seq goes backwards (the checkpoint before is at seq %d)", s.prev.Seq), nil
		}
		if c.Time.Before(s.prev.Time) {
			return Checkpoint{}, false, false, prob(CheckpointTimeBackwards, "time %s goes backwards (the checkpoint before is at %s)",
				c.Time.Format(time.RFC3339Nano), s.prev.Time.Format(time.RFC3339Nano)), nil
		}
	}
	if c.Time.After(s.asOf) {
		// Written while this verification runs: its records may be newer
		// than what the walk reads. Times do not go backwards, so every
		// line after it is later too.
		s.later = true
		return Checkpoint{}, false, false, nil, nil
	}
	s.prev = &c
	return c, true, false, nil, nil
}

// VerifyCheckpoints checks the checkpoint file read from r against the
// chain in st: every line's signature must verify with pub, seqs and times
// must not go backwards, the chain must hold a record at each checkpoint's
// seq with exactly the checkpoint's hash, and the head must be at or past
// the last checkpoint. An incomplete last line (no "\n", left by a crash
// while writing) is ignored and reported in IncompleteLastLine; a bad line
// anywhere else is a problem.
//
// Run it after Verify found the chain intact: a checkpoint then vouches
// for every record up to its seq. It walks the chain once from the first
// checkpoint's seq alongside the file, in constant memory. An error means
// the store or the file could not be read; a checkpoint that does not hold
// is a report with Problem set.
func VerifyCheckpoints(ctx context.Context, st ChainReader, r io.Reader, pub crypto.PublicKey) (CheckpointReport, error) {
	return VerifyCheckpointsAsOf(ctx, st, r, pub, time.Now())
}

// noteArchived holds checkpoint c (on line), at an archived seq, against
// arch: it sets rep.Problem and returns false when a range ends at c.Seq
// with another hash, and counts the ranges whose end c names.
func (rep *CheckpointReport) noteArchived(arch ArchivedPrefix, c Checkpoint, line int) bool {
	if p := arch.problem(c, line); p != nil {
		rep.Problem = p
		return false
	}
	if _, end := arch.ends[c.Seq]; end && !rep.archiveEnds[c.Seq] {
		rep.ArchiveEnds++
		if rep.archiveEnds == nil {
			rep.archiveEnds = make(map[int64]bool)
		}
		rep.archiveEnds[c.Seq] = true
	}
	return true
}

// checkArchiveEnds sets rep.Problem (CheckpointArchiveUnvouched) when,
// the file found sound, nothing signed vouches for the end of one of the
// archived ranges of arch, as VerifyAll checks it: the checkpoint its row
// keeps, verified with pub, or for a row without one a checkpoint of the
// file at its end.
func (rep *CheckpointReport) checkArchiveEnds(arch ArchivedPrefix, pub crypto.PublicKey) {
	if rep.Problem != nil {
		return
	}
	for _, r := range arch.Rows {
		if p := r.endProblem(pub, rep.archiveEnds); p != "" {
			rep.Problem = &CheckpointProblem{Seq: r.LastSeq, Kind: CheckpointArchiveUnvouched, Detail: p}
			return
		}
	}
}

// VerifyCheckpointsAsOf is VerifyCheckpoints for the checkpoints made up
// to asOf; the first one after it ends the file (StoppedAt). A checkpoint
// written while the verification runs could name records newer than the
// ones the walk reads, and must not look like a removal.
//
// When st is an ArchiveLister with archived ranges, the checkpoints at
// archived seqs are checked for their signature and order only, and the
// one at the end of a range must name the hash the range records; the
// end of every range must be vouched for by a signature, as VerifyAll
// checks it (CheckpointArchiveUnvouched).
func VerifyCheckpointsAsOf(ctx context.Context, st ChainReader, r io.Reader, pub crypto.PublicKey, asOf time.Time) (CheckpointReport, error) {
	p, err := ReadArchivedPrefix(ctx, st)
	if err != nil {
		return CheckpointReport{}, err
	}
	rep, err := verifyCheckpointsAsOf(ctx, st, r, pub, asOf, true, p)
	if err == nil {
		rep.checkArchiveEnds(p, pub)
	}
	return rep, err
}

// verifyCheckpointsAsOf is VerifyCheckpointsAsOf; rehash false skips
// recomputing each record's hash, for records that Verify's walk hands
// over after checking them (verifyTogether). The checkpoints below
// arch.Below are held against arch only.
func verifyCheckpointsAsOf(ctx context.Context, st ChainReader, r io.Reader, pub crypto.PublicKey, asOf time.Time, rehash bool, arch ArchivedPrefix) (CheckpointReport, error) {
	sc := &checkpointScanner{r: bufio.NewReaderSize(r, MaxCheckpointLine+1), pub: pub, asOf: asOf}
	rep, err := verifyCheckpoints(ctx, st, sc, rehash, arch)
	if sc.later {
		rep.StoppedAt = sc.line
	}
	return rep, err
}

// verifyCheckpoints walks the chain alongside the checkpoints sc reads;
// those below arch.Below (archived records) are held against arch only.
func verifyCheckpoints(ctx context.Context, st ChainReader, sc *checkpointScanner, rehash bool, arch ArchivedPrefix) (CheckpointReport, error) {
	var rep CheckpointReport
	var cur Checkpoint
	var curLine, lastLine int
	// next moves cur to the next checkpoint with a higher seq than the
	// last verified one; a checkpoint repeating that seq must repeat its
	// hash. It returns false at the end of the file or at a problem.
	next := func() (bool, error) {
		for {
			c, ok, err := sc.nextFor(&rep)
			if err != nil || !ok {
				return false, err
			}
			if c.Seq < arch.Below {
				if !rep.noteArchived(arch, c, sc.line) {
					return false, nil
				}
				rep.Verified++
				rep.Last, lastLine = &c, sc.line
				continue
			}
			if rep.Last == nil || c.Seq != rep.Last.Seq {
				cur, curLine = c, sc.line
				return true, nil
			}
			if !bytes.Equal(c.Hash, rep.Last.Hash) {
				rep.Problem = &CheckpointProblem{Line: sc.line, Seq: c.Seq, Kind: CheckpointHashMismatch,
					Detail: fmt.Sprintf("names another hash for seq %d than the checkpoint before", c.Seq)}
				return false, nil
			}
			rep.Verified++
			rep.Last, lastLine = &c, sc.line
		}
	}
	have, err := next()
	if err != nil || !have {
		return rep, err
	}
	var lastSeen int64
	var prevHash, buf []byte
	walkErr := st.AuditRecords(ctx, cur.Seq, func(rec Record) error {
		// The records read here must form a chain themselves: the walk
		// that verified the chain was another query.
		if rehash {
			buf = appendCanonical(buf[:0], rec)
		}
		broken := ""
		switch {
		case lastSeen != 0 && rec.Seq != lastSeen+1:
			broken = fmt.Sprintf("record %d follows record %d", rec.Seq, lastSeen)
		case lastSeen != 0 && !bytes.Equal(rec.PrevHash, prevHash):
			broken = fmt.Sprintf("record %d does not link to record %d", rec.Seq, lastSeen)
		case rehash && !bytes.Equal(sum256(buf), rec.Hash):
			broken = fmt.Sprintf("record %d does not match its hash", rec.Seq)
		}
		if broken != "" {
			rep.Problem = &CheckpointProblem{Line: curLine, Seq: cur.Seq, Kind: CheckpointChainBroken,
				Detail: broken + " in the records read for the checkpoints, although the chain verified: the database answers inconsistently"}
			return errStop
		}
		lastSeen, prevHash = rec.Seq, rec.Hash
		for have && cur.Seq <= rec.Seq {
			if cur.Seq < rec.Seq {
				rep.Problem = &CheckpointProblem{Line: curLine, Seq: cur.Seq, Kind: CheckpointRecordMissing,
					Detail: fmt.Sprintf("the chain has no record %d (the next record is %d) — records were removed", cur.Seq, rec.Seq)}
				return errStop
			}
			if !bytes.Equal(rec.Hash, cur.Hash) {
				rep.Problem = &CheckpointProblem{Line: curLine, Seq: cur.Seq, Kind: CheckpointHashMismatch,
					Detail: fmt.Sprintf("record %d does not have the hash the checkpoint names — the chain was rewritten", cur.Seq)}
				return errStop
			}
			rep.Verified++
			c := cur
			rep.Last, lastLine = &c, curLine
			var err error
			if have, err = next(); err != nil {
				return err
			}
		}
		if !have {
			return errStop
		}
		return nil
	})
	if walkErr != nil && !errors.Is(walkErr, errStop) {
		return rep, fmt.Errorf("audit: verifying checkpoints: %w", walkErr)
	}
	if rep.Problem != nil {
		return rep, nil
	}
	// The head now: every checkpoint read was made before asOf, so its
	// record was committed before this read.
	head, err := st.AuditHead(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: verifying checkpoints: %w", err)
	}
	if have {
		rep.Head = head
		end := lastSeen
		if end == 0 {
			end = head.Seq // the walk saw nothing from cur.Seq on
		}
		rep.Problem = &CheckpointProblem{Line: curLine, Seq: cur.Seq, Kind: CheckpointRecordMissing,
			Detail: fmt.Sprintf("the chain ends at seq %d — records were removed", end)}
		return rep, nil
	}
	rep.checkHead(head, lastLine)
	return rep, nil
}
