package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrNoAnchor is returned (wrapped) by VerifySince when the checkpoint
// file holds no checkpoint at or before the seq asked for: the
// incremental verification has nothing signed to start from, and it never
// starts from the database's word alone.
var ErrNoAnchor = errors.New("audit: no signed checkpoint to start the incremental verification from")

// ErrInvalidSince is returned (wrapped) by VerifySince for a seq below 1.
var ErrInvalidSince = errors.New("audit: the seq to verify from must be 1 or more")

// anchor is the checkpoint an incremental verification starts from.
type anchor struct {
	c    Checkpoint
	line int   // its line in the file, from 1
	off  int64 // the offset of that line
}

// findAnchor reads the checkpoint file from its start up to the first
// checkpoint after since (or made after asOf) and returns the last
// checkpoint at or before since, and the file's first checkpoint
// (earliest, nil when it has none). Every line read must parse and seqs
// and times must not go backwards (a problem otherwise); signatures are
// not checked here: the anchor's and every later one's are, by VerifySince.
func findAnchor(r io.Reader, since int64, asOf time.Time) (a *anchor, earliest *Checkpoint, p *CheckpointProblem, err error) {
	sc := &checkpointScanner{r: bufio.NewReaderSize(r, MaxCheckpointLine+1), asOf: asOf, unsigned: true}
	for {
		start := sc.off
		c, ok, _, p, err := sc.next()
		if err != nil || p != nil || !ok {
			return a, earliest, p, err
		}
		if earliest == nil {
			earliest = &c
		}
		if c.Seq > since {
			return a, earliest, nil, nil
		}
		a = &anchor{c: c, line: sc.line, off: start}
	}
}

// VerifySince is the incremental form of VerifyAll: it verifies the chain
// in st from the newest signed checkpoint at or before since (the anchor)
// to the head, as `thiqa audit verify --since` reports it on out, and
// returns false when it is broken (out says where). The anchor's
// signature must verify with the key in publicKeyFile and the record at
// its seq must carry exactly its hash; from there every record is
// recomputed and linked as Verify does, and every later checkpoint is
// checked as VerifyCheckpoints does (signature, order, its record's hash,
// the head at or past it).
//
// Records before the anchor are not read: a rewrite of them that leaves
// the anchor record's stored hash as it was is not detected (the full
// walk, VerifyAll, detects it). Nor are the signatures of the checkpoint
// lines before the anchor checked (they are parsed and their order is).
//
// When the anchor's record is archived, it verifies every live record as
// VerifyAll does (the live log is then anchored by the archived ranges).
//
// Without a checkpoint file, a readable key, or a checkpoint at or before
// since, it returns an error (ErrNoAnchor for the last, naming the
// earliest checkpoint) and verifies nothing: it never trusts the database
// alone.
func VerifySince(ctx context.Context, st Store, checkpointFile, publicKeyFile string, since int64, out io.Writer) (bool, error) {
	if since < 1 {
		return false, fmt.Errorf("%w (got %d)", ErrInvalidSince, since)
	}
	f, err := os.Open(checkpointFile)
	if err != nil {
		return false, fmt.Errorf("incremental audit verification needs the signed checkpoints: %w", err)
	}
	defer f.Close()
	pub, err := ReadCheckpointKey(publicKeyFile)
	if err != nil {
		return false, err
	}
	asOf := time.Now()
	a, earliest, p, err := findAnchor(f, since, asOf)
	if err != nil {
		return false, fmt.Errorf("reading the audit checkpoints in %s: %w", checkpointFile, err)
	}
	if p != nil {
		fmt.Fprintf(out, "audit chain BROKEN: %s (%s)\n", CheckpointReport{Problem: p}, checkpointFile)
		return false, nil
	}
	if a == nil {
		if earliest == nil {
			return false, fmt.Errorf("%w: %s holds no checkpoint; run the full verification (without --since)", ErrNoAnchor, checkpointFile)
		}
		return false, fmt.Errorf("%w: none at or before seq %d in %s, the earliest is at seq %d (%s); verify from there or run the full verification (without --since)",
			ErrNoAnchor, since, checkpointFile, earliest.Seq, earliest.Time.Format(time.RFC3339))
	}
	c := a.c
	arch, err := ReadArchivedPrefix(ctx, st)
	if err != nil {
		return false, err
	}
	if c.Seq < arch.Below {
		// The anchor's record is archived: the live log starts from the
		// archived ranges' anchor instead, which the full walk checks.
		fmt.Fprintf(out, "audit verify: the checkpoint at or before seq %d is at seq %d, which is archived; verifying every live record (from seq %d) instead\n",
			since, c.Seq, arch.Below)
		f.Close()
		return VerifyAll(ctx, st, checkpointFile, publicKeyFile, out)
	}
	before := "nothing precedes it"
	if c.Seq > 1 {
		before = fmt.Sprintf("records 1 to %d were NOT re-checked in this run (run without --since for the full walk)", c.Seq-1)
	}
	fmt.Fprintf(out, "audit verify: INCREMENTAL from seq %d, anchored by the checkpoint on line %d of %s (seq %d, %s); %s\n",
		c.Seq, a.line, checkpointFile, c.Seq, c.Time.Format(time.RFC3339), before)
	broken := func(kind CheckpointProblemKind, detail string) (bool, error) {
		p := &CheckpointProblem{Line: a.line, Seq: c.Seq, Kind: kind, Detail: detail}
		fmt.Fprintf(out, "audit chain BROKEN: %s (%s)\n", CheckpointReport{Problem: p}, checkpointFile)
		return false, nil
	}
	if c.Verify(pub) != nil {
		return broken(CheckpointBadSignature, badSignature)
	}
	// The anchor first, by one read: a mismatch needs no walk.
	h, err := RecordHash(ctx, st, c.Seq)
	switch {
	case err != nil:
		return false, fmt.Errorf("reading the anchor record %d: %w", c.Seq, err)
	case h == nil:
		return broken(CheckpointRecordMissing, fmt.Sprintf("the chain has no record %d — records were removed", c.Seq))
	case !bytes.Equal(h, c.Hash):
		return broken(CheckpointHashMismatch, fmt.Sprintf("record %d does not have the hash the checkpoint names — the chain was rewritten", c.Seq))
	}
	if _, err := f.Seek(a.off, io.SeekStart); err != nil {
		return false, fmt.Errorf("reading the audit checkpoints in %s: %w", checkpointFile, err)
	}
	// From the anchor's line on, every line is checked in full; the walk
	// checks the anchor record against it again.
	sc := &checkpointScanner{r: bufio.NewReaderSize(f, MaxCheckpointLine+1), pub: pub, asOf: asOf, line: a.line - 1}
	rep, crep, err, cerr := verifyTogether(ctx, st, liveStart{from: c.Seq}, func(ctx context.Context, cr ChainReader) (CheckpointReport, error) {
		// The walk checked each record before handing it over.
		crep, err := verifyCheckpoints(ctx, cr, sc, false, ArchivedPrefix{Below: 1})
		if sc.later {
			crep.StoppedAt = sc.line
		}
		return crep, err
	})
	if err != nil {
		return false, fmt.Errorf("walking the audit chain from seq %d: %w", c.Seq, err)
	}
	if !rep.OK() {
		fmt.Fprintf(out, "audit chain BROKEN: %s\n", rep)
		return false, nil
	}
	if cerr != nil {
		return false, fmt.Errorf("checking the audit checkpoints in %s: %w", checkpointFile, cerr)
	}
	if !crep.OK() {
		fmt.Fprintf(out, "audit chain BROKEN: %s (%s)\n", crep, checkpointFile)
		return false, nil
	}
	fmt.Fprintf(out, "audit chain OK from seq %d: %d records, head seq %d, hash %s\n", c.Seq, rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
	if crep.IncompleteLastLine {
		fmt.Fprintf(out, "audit checkpoints: WARNING: line %d of %s is incomplete (a crash while writing?) and was ignored\n", crep.IncompleteLine, checkpointFile)
	}
	fmt.Fprintf(out, "audit checkpoints OK from line %d: %s in %s\n", a.line, crep, checkpointFile)
	if crep.StoppedAt > 0 {
		fmt.Fprintf(out, "audit checkpoints: line %d on was written while this verification ran; left for the next run\n", crep.StoppedAt)
	}
	if crep.Last != nil && rep.Head.Seq > crep.Last.Seq {
		fmt.Fprintf(out, "audit checkpoints: records %d to %d are newer than the last checkpoint and rest on the chain alone\n", crep.Last.Seq+1, rep.Head.Seq)
	}
	if crep.Last != nil {
		fmt.Fprintf(out, "audit verify: the next incremental run can start from the last checkpoint verified here: --since %d\n", crep.Last.Seq)
	}
	return true, nil
}
