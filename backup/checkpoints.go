package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// checkpointSplit is what restoreCheckpoints did with a checkpoint file.
type checkpointSplit struct {
	kept     int
	archived int
	// firstArchived and lastArchived are the seqs of the archived
	// checkpoints (0 when none).
	firstArchived, lastArchived int64
	invalid                     int // archived lines that are not valid checkpoints of this key
	// archiveName is the archive's file name, next to the checkpoint file.
	archiveName string
}

// recordHash returns the hash of the record at seq, or nil when the chain
// has none: one primary-key read on a store that offers it
// (audit.RecordHash), since a restore looks up every line of a checkpoint
// file that may hold a year of checkpoints.
func recordHash(ctx context.Context, chain audit.ChainReader, seq int64) ([]byte, error) {
	return audit.RecordHash(ctx, chain, seq)
}

// splitCheckpoints applies the README's rule for a restore from a backup
// to the checkpoint lines in src: checkpoints that name a record of the
// restored chain (signed by pub, in order) are kept; the others (records
// the restored chain lacks: what happened after the backup) go, in file
// order, to the archive. Checkpoints at archived records (thiqa audit
// archive) are kept when they agree with the archived ranges. An
// incomplete last line is dropped.
func splitCheckpoints(ctx context.Context, chain audit.ChainReader, src []byte, pub crypto.PublicKey) (kept, archived []byte, s checkpointSplit, err error) {
	arch, err := audit.ReadArchivedPrefix(ctx, chain)
	if err != nil {
		return nil, nil, s, err
	}
	var last *audit.Checkpoint
	r := bufio.NewReader(bytes.NewReader(src))
	for {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, nil, s, rerr
		}
		if len(line) == 0 || line[len(line)-1] != '\n' {
			break // end, or an incomplete last line (a crash while writing)
		}
		c, perr := audit.ParseCheckpointLine(line)
		ok := perr == nil && c.Verify(pub) == nil
		if !ok {
			s.invalid++
		} else if (last == nil || (c.Seq >= last.Seq && !c.Time.Before(last.Time))) && c.Seq < arch.Below {
			// An archived record: the archived range vouches for it.
			ok = arch.Holds(c)
		} else if last == nil || (c.Seq >= last.Seq && !c.Time.Before(last.Time)) {
			h, err := recordHash(ctx, chain, c.Seq)
			if err != nil {
				return nil, nil, s, fmt.Errorf("reading audit record %d: %w", c.Seq, err)
			}
			ok = h != nil && bytes.Equal(h, c.Hash)
		} else {
			ok = false
		}
		if ok && s.archived == 0 {
			kept = append(kept, line...)
			s.kept++
			last = &c
			continue
		}
		// From the first checkpoint the restored chain does not hold on,
		// every later one is archived too: the file stays in order.
		archived = append(archived, line...)
		s.archived++
		if perr == nil {
			if s.firstArchived == 0 {
				s.firstArchived = c.Seq
			}
			s.lastArchived = c.Seq
		}
	}
	return kept, archived, s, nil
}

// newestSignedTime returns the time of the last checkpoint in src, a
// checkpoint file, whose signature verifies with pub (lines are read from
// the end, so a year of checkpoints costs one check or a few); false when
// none does. An incomplete last line (a crash while writing) is skipped.
func newestSignedTime(src []byte, pub crypto.PublicKey) (time.Time, bool) {
	if i := bytes.LastIndexByte(src, '\n'); i >= 0 {
		src = src[:i+1]
	} else {
		return time.Time{}, false
	}
	for len(src) > 0 {
		body := src[:len(src)-1]
		line := src[bytes.LastIndexByte(body, '\n')+1:]
		src = src[:len(src)-len(line)]
		if c, err := audit.ParseCheckpointLine(line); err == nil && c.Verify(pub) == nil {
			return c.Time, true
		}
	}
	return time.Time{}, false
}

// restoreCheckpoints rewrites the staged checkpoint file cpPath from src
// (the backup's copy, or a newer one the operator gave): kept checkpoints
// stay in it, the others are archived next to it in
// checkpoints.archived-<UTC time>.jsonl. It then appends a checkpoint of
// the restored head (signer: the checkpoint key) and verifies the file.
func restoreCheckpoints(ctx context.Context, chain audit.ChainReader, src []byte, cpPath string, signer crypto.Signer, now time.Time) (checkpointSplit, error) {
	pub := signer.Public()
	kept, archived, s, err := splitCheckpoints(ctx, chain, src, pub)
	if err != nil {
		return s, err
	}
	if err := os.MkdirAll(filepath.Dir(cpPath), 0o700); err != nil {
		return s, err
	}
	if err := os.Remove(cpPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if err := writeNew(cpPath, bytes.NewReader(kept), 0o600); err != nil {
		return s, err
	}
	if len(archived) > 0 {
		base := strings.TrimSuffix(filepath.Base(cpPath), filepath.Ext(cpPath))
		s.archiveName = base + ".archived-" + now.UTC().Format("20060102T150405Z") + ".jsonl"
		if err := writeNew(filepath.Join(filepath.Dir(cpPath), s.archiveName), bytes.NewReader(archived), 0o600); err != nil {
			return s, err
		}
	}
	w, err := audit.NewCheckpointWriter(chain, signer, cpPath, audit.CheckpointWriterOptions{})
	if err != nil {
		return s, err
	}
	if _, _, err := w.Checkpoint(ctx); err != nil {
		return s, fmt.Errorf("checkpointing the restored chain: %w", err)
	}
	f, err := os.Open(cpPath)
	if err != nil {
		return s, err
	}
	defer f.Close()
	// The chain was verified (checkStore) and only this restore writes to
	// it: each checkpoint's record is looked up rather than walking the
	// chain a second time from the first checkpoint, near its start.
	var rep audit.CheckpointReport
	if hc, ok := chain.(audit.HashChainReader); ok {
		rep, err = audit.VerifyCheckpointsByLookup(ctx, hc, f, pub)
	} else {
		rep, err = audit.VerifyCheckpoints(ctx, chain, f, pub)
	}
	if err != nil {
		return s, fmt.Errorf("verifying the restored checkpoints: %w", err)
	}
	if !rep.OK() {
		return s, fmt.Errorf("the restored checkpoints do not verify: %s", rep)
	}
	return s, nil
}

// describe says in one line what happened to the checkpoints of the file
// cpName (its final place).
func (s checkpointSplit) describe(cpName string) string {
	if s.archived == 0 {
		return fmt.Sprintf("%d kept in %s, all name records of the restored chain; a new one anchors the restore", s.kept, cpName)
	}
	msg := fmt.Sprintf("%d kept in %s; %d name records the restored chain lacks (seq %d to %d, after the backup) and were archived in %s: keep that file, it vouches for the chain up to the loss",
		s.kept, cpName, s.archived, s.firstArchived, s.lastArchived, filepath.Join(filepath.Dir(cpName), s.archiveName))
	if s.invalid > 0 {
		msg += fmt.Sprintf(" (%d of them are not valid checkpoints of this token's key)", s.invalid)
	}
	return msg
}
