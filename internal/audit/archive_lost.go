package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ArchiveLostAction is the action of the audit record RecoverLostArchive
// leaves: which range's file was lost, which of its records are lost with
// it and which file holds the rest.
const ArchiveLostAction = "audit.archive.lost"

// ErrNoUnfinishedArchive is returned (wrapped) by RecoverLostArchive when
// no archived range is still being deleted.
var ErrNoUnfinishedArchive = errors.New("audit: no archive is unfinished")

// RecoverLostArchive finishes the archived range still being deleted whose
// file is lost (`thiqa audit archive --file-lost --out FILE`). The records
// of the range already deleted are gone with that file; the ones still
// live are written to o.Out (as Archive writes a file: fsync'd, read back
// and verified), from the first of them to the range's last, ending at the
// signed checkpoint the range keeps. The store then records o.Out as the
// replacement from that record on, with an audit record
// (ArchiveLostAction) naming what was lost, in one transaction; the rest
// of the range is deleted and the range marked done, so that later
// archives can run. Nothing is written when no record of the range is
// live any more (o.Out may then be ""). It refuses, recording nothing,
// when the range's own file is next to o.Out (it is not lost, or an
// archive is still deleting with it). Each step can be interrupted:
// running it again with the same o.Out finishes it.
//
// The live log stays verifiable: it starts after the range, chaining from
// the hash its row records, which the range's signed checkpoint vouches
// for. Verifying with the archive files (VerifyAllWithArchives) reports
// the lost records, if any, as a break: nothing vouches for them any more,
// unless the lost file turns up again and is given with the others (it is
// still the file the range's row names: no database write is needed).
func RecoverLostArchive(ctx context.Context, st ArchiveStore, o ArchiveOptions) (ArchiveResult, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = defaultArchiveBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Actor == "" {
		o.Actor = "operator"
	}
	pub, err := ReadCheckpointKey(o.CheckpointKeyFile)
	if err != nil {
		return ArchiveResult{}, err
	}
	p, err := ReadArchivedPrefix(ctx, st)
	if err != nil {
		return ArchiveResult{}, err
	}
	n := len(p.Rows)
	if n == 0 || p.Rows[n-1].State != ArchiveDeleting {
		return ArchiveResult{}, fmt.Errorf("%w: --file-lost finishes an archive whose file was lost while its records were being deleted", ErrNoUnfinishedArchive)
	}
	r := p.Rows[n-1]
	if r.ReplacedFrom != 0 {
		// Recorded by an interrupted run: finish it.
		res := ArchiveResult{Row: r, Resumed: true}
		if r.ReplacementFile != "" {
			s, err := readArchiveFile(o.Out, pub)
			if err == nil && !bytes.Equal(s.SHA256, r.ReplacementSHA256) {
				err = fmt.Errorf("%s is another file", o.Out)
			}
			if err != nil {
				return res, fmt.Errorf("%w: records %d to %d were written to %s (SHA-256 %s): run again with --out pointing at it (%w)",
					ErrArchiveUnfinished, r.ReplacedFrom, r.LastSeq, r.ReplacementFile, hex.EncodeToString(r.ReplacementSHA256), err)
			}
			res.Records, res.Bytes = s.Records, s.Bytes
		}
		return deleteArchived(ctx, st, o, res)
	}
	if o.Out != "" {
		// The range's own file next to --out: it is not lost (or a run of
		// the archive is still deleting with it), and finishing the range
		// with it loses nothing.
		kept := filepath.Join(filepath.Dir(o.Out), r.File)
		if s, err := readArchiveFile(kept, pub); err == nil && bytes.Equal(s.SHA256, r.FileSHA256) {
			return ArchiveResult{}, fmt.Errorf("%w: the file of records %d to %d is not lost, it is %s: finish the archive with --out %s and without --file-lost",
				ErrArchiveUnfinished, r.FirstSeq, r.LastSeq, kept, kept)
		}
	}
	first, err := firstLiveRecord(ctx, st)
	if err != nil {
		return ArchiveResult{}, err
	}
	if first.Seq != 0 && first.Seq < r.FirstSeq {
		return ArchiveResult{}, fmt.Errorf("%w: record %d is in the live log although it is archived: run thiqa audit verify", ErrArchiveConflict, first.Seq)
	}
	rep := ArchiveReplacement{From: r.LastSeq + 1}
	var s ArchiveSummary
	res := ArchiveResult{}
	if first.Seq != 0 && first.Seq <= r.LastSeq {
		rep.From = first.Seq
		if o.Out == "" {
			return res, fmt.Errorf("%w: records %d to %d of the range are still live: give --out for the file to hold them", ErrArchiveOutExists, first.Seq, r.LastSeq)
		}
		if s, res.Resumed, err = replacementFile(ctx, st, o, pub, r, first); err != nil {
			return res, err
		}
		rep.File, rep.FileSHA256 = filepath.Base(o.Out), s.SHA256
	}
	now := time.Unix(0, o.Now().UnixNano()).UTC()
	d := map[string]any{
		"firstSeq": r.FirstSeq, "lastSeq": r.LastSeq, "file": r.File, "sha256": hex.EncodeToString(r.FileSHA256),
		"replacedFrom": rep.From, "replacement": rep.File, "replacementSha256": hex.EncodeToString(rep.FileSHA256), "records": s.Records,
	}
	if rep.From > r.FirstSeq {
		d["lostFrom"], d["lostThrough"] = r.FirstSeq, rep.From-1
	}
	details, err := json.Marshal(d)
	if err != nil {
		return res, fmt.Errorf("audit: encoding the lost archive record: %w", err)
	}
	rec := Record{Time: now, Actor: o.Actor, Action: ArchiveLostAction, Object: r.File, Outcome: OutcomeSuccess, Details: details}
	err = st.ReplaceLostAuditArchive(ctx, r.FirstSeq, rep, func(h Head) ([]Record, error) {
		x := rec
		x.Seq, x.PrevHash = h.Seq+1, h.Hash
		x.Hash = HashRecord(x)
		return []Record{x}, nil
	})
	if err != nil {
		return res, fmt.Errorf("audit: recording the replacement of %s: %w", r.File, err)
	}
	r.ReplacedFrom, r.ReplacementFile, r.ReplacementSHA256 = rep.From, rep.File, rep.FileSHA256
	res.Row, res.Records, res.Bytes = r, s.Records, s.Bytes
	return deleteArchived(ctx, st, o, res)
}

// replacementFile writes the live records of r, from first on, to o.Out
// and verifies it, or verifies the file an interrupted run wrote there
// (resumed).
func replacementFile(ctx context.Context, st ArchiveStore, o ArchiveOptions, pub crypto.PublicKey, r ArchiveRow, first Record) (s ArchiveSummary, resumed bool, err error) {
	switch _, err := os.Lstat(o.Out); {
	case err == nil:
		resumed = true
	case !errors.Is(err, os.ErrNotExist):
		return s, false, fmt.Errorf("audit: archive file: %w", err)
	default:
		c, line, err := rangeCheckpoint(o, pub, r)
		if err != nil {
			return s, false, err
		}
		keyPEM, err := os.ReadFile(o.CheckpointKeyFile)
		if err != nil {
			return s, false, fmt.Errorf("audit: reading the checkpoint key: %w", err)
		}
		h := ArchiveHeader{FirstSeq: first.Seq, LastSeq: r.LastSeq, PrevHash: first.PrevHash, Checkpoint: c,
			CheckpointLine: line, CheckpointKeyPEM: string(keyPEM), Created: o.Now().UTC()}
		if err := writeArchive(ctx, st, o.Out, h); err != nil {
			return s, false, err
		}
	}
	s, err = readArchiveFile(o.Out, pub)
	if err != nil {
		return s, resumed, fmt.Errorf("%w: %s, and it is not a complete archive (%w); it is not overwritten", ErrArchiveOutExists, o.Out, err)
	}
	if s.Header.FirstSeq != first.Seq || s.Header.LastSeq != r.LastSeq || !bytes.Equal(s.LastHash, r.LastHash) {
		return s, resumed, fmt.Errorf("%w: %s holds records %d to %d, not the live records %d to %d of the range whose file was lost; it is not overwritten",
			ErrArchiveOutExists, o.Out, s.Header.FirstSeq, s.Header.LastSeq, first.Seq, r.LastSeq)
	}
	return s, resumed, nil
}

// rangeCheckpoint returns the signed checkpoint at the end of r: the one
// its row keeps, or for a row without one, the checkpoint of the
// checkpoint file at its last record with its hash.
func rangeCheckpoint(o ArchiveOptions, pub crypto.PublicKey, r ArchiveRow) (Checkpoint, string, error) {
	if r.Checkpoint != "" {
		c, err := ParseCheckpointLine([]byte(r.Checkpoint))
		if err != nil || c.Verify(pub) != nil || c.Seq != r.LastSeq || !bytes.Equal(c.Hash, r.LastHash) {
			return c, "", fmt.Errorf("%w: the checkpoint the archived range %d-%d keeps does not vouch for its end: run thiqa audit verify",
				ErrArchiveConflict, r.FirstSeq, r.LastSeq)
		}
		return c, r.Checkpoint, nil
	}
	f, err := os.Open(o.CheckpointFile)
	if err != nil {
		return Checkpoint{}, "", fmt.Errorf("audit: the range keeps no checkpoint; reading the checkpoint file: %w", err)
	}
	defer f.Close()
	sc := &checkpointScanner{r: bufio.NewReaderSize(f, MaxCheckpointLine+1), pub: pub, asOf: o.Now()}
	for {
		c, ok, _, p, err := sc.next()
		switch {
		case err != nil:
			return c, "", err
		case p != nil:
			return c, "", fmt.Errorf("audit: the checkpoint file %s does not verify (%s): run thiqa audit verify", o.CheckpointFile, CheckpointReport{Problem: p})
		case !ok:
			return c, "", fmt.Errorf("%w: %s holds none at record %d, where the archived range %d-%d ends", ErrNoArchiveCheckpoint,
				o.CheckpointFile, r.LastSeq, r.FirstSeq, r.LastSeq)
		case c.Seq == r.LastSeq && bytes.Equal(c.Hash, r.LastHash):
			line, err := c.MarshalLine()
			if err != nil {
				return c, "", err
			}
			return c, string(bytes.TrimSuffix(line, []byte("\n"))), nil
		}
	}
}
