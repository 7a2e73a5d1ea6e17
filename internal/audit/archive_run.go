package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Why Archive refuses (wrapped, with the details).
var (
	// ErrNoArchiveCheckpoint: no signed checkpoint lies between the first
	// live record and the point asked for, so nothing would vouch for the
	// archive's end.
	ErrNoArchiveCheckpoint = errors.New("audit: no signed checkpoint to end the archive at")
	// ErrBeyondHead: the point asked for is past the newest record.
	ErrBeyondHead = errors.New("audit: the log does not reach that far")
	// ErrAlreadyArchived: the records asked for are archived already, or
	// the output file belongs to another archive.
	ErrAlreadyArchived = errors.New("audit: already archived")
	// ErrArchiveUnfinished: an earlier archive is still deleting its
	// records; rerun it with its file first.
	ErrArchiveUnfinished = errors.New("audit: an earlier archive is unfinished")
	// ErrArchiveOutExists: the output file exists and is not an archive
	// of the log's next records.
	ErrArchiveOutExists = errors.New("audit: the output file exists")
)

// ArchiveAction is the action of the audit record an archive leaves.
const ArchiveAction = "audit.archive"

// defaultArchiveBatch is how many records one delete transaction removes.
const defaultArchiveBatch = 10000

// ArchiveOptions describe one archive run.
type ArchiveOptions struct {
	// Through archives up to the newest signed checkpoint at or before
	// this seq. Either Through or Before is set.
	Through int64
	// Before archives up to the newest signed checkpoint at or before the
	// last record of the run, from the first live record on, of records
	// all made strictly before this time (record times need not follow
	// their seqs after a clock step: no record made at or after it is
	// archived).
	Before time.Time
	// Out is the archive file to write; it must not exist, unless it is
	// the file of an interrupted run of the same archive (which is then
	// finished).
	Out string
	// CheckpointFile and CheckpointKeyFile are the checkpoint file and the
	// checkpoint public key (PEM).
	CheckpointFile, CheckpointKeyFile string
	// Actor is who archives, for the audit record (default "operator").
	Actor string
	// BatchSize is how many records one delete transaction removes
	// (default 10,000).
	BatchSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SkipUndelivered archives records that the notifications to citizens
	// (package notify) have not reached yet, which are then never told;
	// the audit record of the archive says how many. Without it, Archive
	// refuses (ErrUndelivered) to archive past the notifier's cursor with
	// Through, and stops at the newest checkpoint the cursor has passed
	// with Before.
	SkipUndelivered bool
	// NotifyEnabled says whether notifications are on in the
	// configuration (only the refusal's advice depends on it: records
	// behind a cursor are told once they are turned on again).
	NotifyEnabled bool

	// afterFile and afterBatch are called once the file is in place and
	// after each delete transaction; an error from them stops the run
	// there (tests: a crash).
	afterFile  func() error
	afterBatch func(deleted int64) error
}

// ArchiveResult says what Archive did.
type ArchiveResult struct {
	// Row is the archived range as the store records it.
	Row ArchiveRow
	// Records is how many records the file holds; Bytes its size.
	Records, Bytes int64
	// Deleted is how many records this run deleted from the live log.
	Deleted int64
	// Resumed is set when the file was there from an interrupted run.
	Resumed bool
	// AlreadyDone is set when that run had finished: nothing was done.
	AlreadyDone bool
	// Undelivered is how many of the archived records the notifications
	// to citizens had not reached (archived with SkipUndelivered: their
	// citizens are not told; the audit record says how many).
	Undelivered int64
	// NotifyCapped is set when a run with Before stopped at an earlier
	// checkpoint than it could have, because the notifier has not reached
	// the records after it.
	NotifyCapped bool
}

// Archive moves the oldest records of the live log into the archive file
// o.Out and out of the database, as `thiqa audit archive` does: from the
// first live record to the newest signed checkpoint at or before the point
// asked for (o.Through or o.Before). It writes the file (fsync'd, under a
// temporary name until complete, never over an existing file), reads it
// back and verifies it completely, and only then records the range (state
// ArchiveDeleting) together with an audit record (ArchiveAction), deletes
// the range's records in transactions of o.BatchSize and marks the range
// done. Each step can be interrupted: running Archive again with the same
// o.Out finishes the run. Appends by a running server go on meanwhile: only
// the oldest records are touched.
func Archive(ctx context.Context, st ArchiveStore, o ArchiveOptions) (ArchiveResult, error) {
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
	switch _, err := os.Lstat(o.Out); {
	case err == nil:
		return resumeArchive(ctx, st, o, pub, p)
	case !errors.Is(err, os.ErrNotExist):
		return ArchiveResult{}, fmt.Errorf("audit: archive file: %w", err)
	}
	if n := len(p.Rows); n > 0 && p.Rows[n-1].State != ArchiveDone {
		r := p.Rows[n-1]
		if r.ReplacedFrom != 0 {
			return ArchiveResult{}, fmt.Errorf("%w: records %d to %d are still being deleted; run the archive again with --file-lost and --out pointing at %s",
				ErrArchiveUnfinished, r.FirstSeq, r.LastSeq, cmp.Or(r.ReplacementFile, "any name"))
		}
		return ArchiveResult{}, fmt.Errorf("%w: records %d to %d are still being deleted; run the archive again with --out pointing at %s (if that file is lost: --file-lost, see docs/operations.md)",
			ErrArchiveUnfinished, r.FirstSeq, r.LastSeq, r.File)
	}
	nc, err := readNotifyCursor(ctx, st)
	if err != nil {
		return ArchiveResult{}, err
	}
	c, capped, err := archiveEnd(ctx, st, o, pub, p.Below, nc)
	if err != nil {
		return ArchiveResult{}, err
	}
	keyPEM, err := os.ReadFile(o.CheckpointKeyFile)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("audit: reading the checkpoint key: %w", err)
	}
	line, err := c.MarshalLine()
	if err != nil {
		return ArchiveResult{}, err
	}
	h := ArchiveHeader{FirstSeq: p.Below, LastSeq: c.Seq, PrevHash: GenesisHash(), Checkpoint: c,
		CheckpointLine: string(bytes.TrimSuffix(line, []byte("\n"))), CheckpointKeyPEM: string(keyPEM), Created: o.Now().UTC()}
	if n := len(p.Rows); n > 0 {
		h.PrevHash = p.Rows[n-1].LastHash
	}
	if err := writeArchive(ctx, st, o.Out, h); err != nil {
		return ArchiveResult{}, err
	}
	if o.afterFile != nil {
		if err := o.afterFile(); err != nil {
			return ArchiveResult{}, err
		}
	}
	s, err := readArchiveFile(o.Out, pub)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("audit: the archive just written does not verify: %w", err)
	}
	if s.Header.FirstSeq != h.FirstSeq || s.Header.LastSeq != h.LastSeq || !bytes.Equal(s.Header.PrevHash, h.PrevHash) {
		return ArchiveResult{}, fmt.Errorf("%w: the archive read back holds records %d to %d, not %d to %d", ErrArchiveCorrupt,
			s.Header.FirstSeq, s.Header.LastSeq, h.FirstSeq, h.LastSeq)
	}
	return recordAndDelete(ctx, st, o, s, ArchiveResult{NotifyCapped: capped})
}

// resumeArchive finishes the run that wrote o.Out, or refuses when o.Out
// is not an archive of the log's next records.
func resumeArchive(ctx context.Context, st ArchiveStore, o ArchiveOptions, pub crypto.PublicKey, p ArchivedPrefix) (ArchiveResult, error) {
	s, err := readArchiveFile(o.Out, pub)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("%w: %s, and it is not a complete archive (%w); it is not overwritten", ErrArchiveOutExists, o.Out, err)
	}
	res := ArchiveResult{Resumed: true}
	for _, r := range p.Rows {
		if r.FirstSeq > s.Header.LastSeq || r.LastSeq < s.Header.FirstSeq {
			continue
		}
		replacement := r.ReplacedFrom != 0 && r.ReplacedFrom == s.Header.FirstSeq && bytes.Equal(r.ReplacementSHA256, s.SHA256)
		if !replacement && (r.FirstSeq != s.Header.FirstSeq || !bytes.Equal(r.FileSHA256, s.SHA256)) || r.LastSeq != s.Header.LastSeq {
			return res, fmt.Errorf("%w: %s holds records %d to %d, already archived in %s (records %d to %d); it is not overwritten",
				ErrAlreadyArchived, o.Out, s.Header.FirstSeq, s.Header.LastSeq, r.File, r.FirstSeq, r.LastSeq)
		}
		if r.State == ArchiveDone {
			res.Row, res.Records, res.Bytes, res.AlreadyDone = r, s.Records, s.Bytes, true
			return res, nil
		}
		res.Row, res.Records, res.Bytes = r, s.Records, s.Bytes
		return deleteArchived(ctx, st, o, res)
	}
	if s.Header.FirstSeq != p.Below {
		return res, fmt.Errorf("%w: %s holds records %d to %d, but the live log starts at %d; it is not overwritten",
			ErrArchiveOutExists, o.Out, s.Header.FirstSeq, s.Header.LastSeq, p.Below)
	}
	if n := len(p.Rows); n > 0 && !bytes.Equal(s.Header.PrevHash, p.Rows[n-1].LastHash) {
		return res, fmt.Errorf("%w: %s does not chain from the last archived record; it is not overwritten", ErrArchiveOutExists, o.Out)
	}
	return recordAndDelete(ctx, st, o, s, res)
}

// recordAndDelete records the verified archive s (with its audit record),
// then deletes its records.
func recordAndDelete(ctx context.Context, st ArchiveStore, o ArchiveOptions, s ArchiveSummary, res ArchiveResult) (ArchiveResult, error) {
	now := time.Unix(0, o.Now().UnixNano()).UTC()
	row := ArchiveRow{FirstSeq: s.Header.FirstSeq, LastSeq: s.Header.LastSeq, LastHash: s.LastHash,
		File: filepath.Base(o.Out), FileSHA256: s.SHA256, Created: now, State: ArchiveDeleting,
		Checkpoint: s.Header.CheckpointLine}
	var undelivered int64
	err := st.StartAuditArchive(ctx, row, func(a ArchiveStart) ([]Record, error) {
		// The notifier's cursor only moves forward: read here, in the
		// transaction that records the range, it tells for certain
		// whether a record of the range is still to be notified.
		d := map[string]any{
			"firstSeq": row.FirstSeq, "lastSeq": row.LastSeq, "lastHash": hex.EncodeToString(row.LastHash),
			"file": row.File, "sha256": hex.EncodeToString(row.FileSHA256), "records": s.Records, "bytes": s.Bytes,
		}
		undelivered = 0
		if a.NotifyCursorSet && a.NotifyCursor < row.LastSeq {
			first := max(a.NotifyCursor+1, row.FirstSeq)
			if !o.SkipUndelivered {
				return nil, undeliveredError(first, row.LastSeq, a.NotifyCursor, a.NotifyCursor >= row.FirstSeq, o.NotifyEnabled)
			}
			undelivered = row.LastSeq - first + 1
			d["undelivered"], d["undeliveredFrom"], d["undeliveredThrough"] = undelivered, first, row.LastSeq
		}
		details, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("audit: encoding the archive record: %w", err)
		}
		r := Record{Time: now, Actor: o.Actor, Action: ArchiveAction, Object: row.File, Outcome: OutcomeSuccess, Details: details}
		r.Seq, r.PrevHash = a.Head.Seq+1, a.Head.Hash
		r.Hash = HashRecord(r)
		return []Record{r}, nil
	})
	if err != nil {
		return res, fmt.Errorf("audit: recording the archive of records %d to %d: %w", row.FirstSeq, row.LastSeq, err)
	}
	res.Row, res.Records, res.Bytes, res.Undelivered = row, s.Records, s.Bytes, undelivered
	return deleteArchived(ctx, st, o, res)
}

// deleteArchived deletes the records of res.Row in batches and marks it
// done.
func deleteArchived(ctx context.Context, st ArchiveStore, o ArchiveOptions, res ArchiveResult) (ArchiveResult, error) {
	r := res.Row
	for {
		n, err := st.DeleteArchivedAuditRecords(ctx, r.FirstSeq, r.LastSeq, o.BatchSize)
		if err != nil {
			return res, fmt.Errorf("audit: deleting archived records %d to %d: %w", r.FirstSeq, r.LastSeq, err)
		}
		if n == 0 {
			break
		}
		res.Deleted += n
		if o.afterBatch != nil {
			if err := o.afterBatch(n); err != nil {
				return res, err
			}
		}
	}
	if err := st.FinishAuditArchive(ctx, r.FirstSeq); err != nil {
		return res, fmt.Errorf("audit: finishing the archive of records %d to %d: %w", r.FirstSeq, r.LastSeq, err)
	}
	res.Row.State = ArchiveDone
	return res, nil
}

// archiveEnd returns the checkpoint the new archive ends at: the newest
// one (signature verified) at or after seq from and at or before the
// point o asks for, and not past the notifier's cursor nc
// (capAtNotified; capped says it was moved back for it).
func archiveEnd(ctx context.Context, st ArchiveStore, o ArchiveOptions, pub crypto.PublicKey, from int64, nc notifyCursor) (Checkpoint, bool, error) {
	head, err := st.AuditHead(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	limit := head.Seq
	if o.Through > 0 {
		if o.Through > head.Seq {
			return Checkpoint{}, false, fmt.Errorf("%w: --through %d is past the newest record (%d)", ErrBeyondHead, o.Through, head.Seq)
		}
		limit = o.Through
	}
	if limit < from {
		return Checkpoint{}, false, fmt.Errorf("%w: records 1 to %d are archived, the live log starts at %d", ErrAlreadyArchived, from-1, from)
	}
	f, err := os.Open(o.CheckpointFile)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: archiving needs the signed checkpoints: %w", err)
	}
	defer f.Close()
	sc := &checkpointScanner{r: bufio.NewReaderSize(f, MaxCheckpointLine+1), pub: pub, asOf: o.Now()}
	var cands []Checkpoint
	for {
		c, ok, _, p, err := sc.next()
		if err != nil {
			return Checkpoint{}, false, err
		}
		if p != nil {
			return Checkpoint{}, false, fmt.Errorf("audit: the checkpoint file %s does not verify (%s): run thiqa audit verify", o.CheckpointFile, CheckpointReport{Problem: p})
		}
		if !ok {
			break
		}
		if c.Seq >= from && c.Seq <= limit && (len(cands) == 0 || cands[len(cands)-1].Seq != c.Seq) {
			cands = append(cands, c)
		}
	}
	if !o.Before.IsZero() && len(cands) > 0 {
		// Record times need not follow their seqs (the clock may be
		// stepped back): the bound is the last record of the longest run
		// from the first live record on whose every record was made
		// before o.Before, found by reading up to the first one that was
		// not (a record made at or after o.Before is never archived), or
		// up to the last checkpoint that could end the archive: no
		// further, as the records after it are not archived anyway.
		bound, err := lastBefore(ctx, st, from, cands[len(cands)-1].Seq, o.Before)
		if err != nil {
			return Checkpoint{}, false, err
		}
		n := len(cands)
		for n > 0 && cands[n-1].Seq > bound {
			n--
		}
		cands = cands[:n]
	}
	if len(cands) == 0 {
		point := fmt.Sprintf("seq %d", limit)
		if !o.Before.IsZero() {
			point = "the last record before " + o.Before.UTC().Format(time.RFC3339)
		}
		return Checkpoint{}, false, fmt.Errorf("%w: %s holds none between the first live record (%d) and %s", ErrNoArchiveCheckpoint, o.CheckpointFile, from, point)
	}
	kept, capped, err := capAtNotified(cands, nc, o, from)
	if err != nil {
		return Checkpoint{}, false, err
	}
	return kept[len(kept)-1], capped, nil
}

// lastBefore returns the last seq of the records from, from+1, … (up to
// limit) that were all made strictly before t: the seq before the first
// record from from on made at or after t (from-1 when record from is).
// It reads the live log in seq order and stops there.
func lastBefore(ctx context.Context, st ChainReader, from, limit int64, t time.Time) (int64, error) {
	bound := from - 1
	err := st.AuditRecords(ctx, from, func(r Record) error {
		if r.Seq > limit || !r.Time.Before(t) {
			return errStop
		}
		bound = r.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, fmt.Errorf("audit: reading the records before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return bound, nil
}

// writeArchive writes the archive of h's records to out: under a new
// temporary name next to it first (out.partial-*, created for this run
// alone: another run writing the same out, or a name left linked to
// another file, is never written through), then linked to out (which must
// not exist), both fsync'd with their folder. The records are checked as
// they are copied.
func writeArchive(ctx context.Context, st ChainReader, out string, h ArchiveHeader) (err error) {
	f, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".partial-*")
	if err != nil {
		return fmt.Errorf("audit: creating the archive: %w", err)
	}
	partial := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(partial)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	aw, err := newArchiveWriter(bw, h)
	if err != nil {
		return err
	}
	prev, expect := h.PrevHash, h.FirstSeq
	buf := make([]byte, 0, 512)
	werr := st.AuditRecords(ctx, h.FirstSeq, func(r Record) error {
		buf = appendCanonical(buf[:0], r)
		switch {
		case r.Seq != expect:
			return fmt.Errorf("%w: record %d is missing from the live log (the next is %d): run thiqa audit verify", ErrArchiveConflict, expect, r.Seq)
		case !bytes.Equal(r.PrevHash, prev) || !bytes.Equal(sum256(buf), r.Hash):
			return fmt.Errorf("%w: record %d does not verify: run thiqa audit verify", ErrArchiveConflict, r.Seq)
		}
		if err := aw.record(r); err != nil {
			return err
		}
		prev = r.Hash
		expect++
		if r.Seq == h.LastSeq {
			return errStop
		}
		return nil
	})
	if werr != nil && !errors.Is(werr, errStop) {
		return werr
	}
	if expect != h.LastSeq+1 || !bytes.Equal(prev, h.Checkpoint.Hash) {
		return fmt.Errorf("%w: record %d does not have the hash its checkpoint names: run thiqa audit verify", ErrArchiveConflict, h.LastSeq)
	}
	if err := aw.finish(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: writing the archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: writing the archive: %w", err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return fmt.Errorf("audit: writing the archive: %w", err)
	}
	f = nil
	if err := os.Link(partial, out); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s; it is not overwritten", ErrArchiveOutExists, out)
		}
		return fmt.Errorf("audit: placing the archive: %w", err)
	}
	if err := os.Remove(partial); err != nil {
		return fmt.Errorf("audit: placing the archive: %w", err)
	}
	return syncDir(filepath.Dir(out))
}

// syncDir fsyncs a folder, so that a new name in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: syncing %s: %w", dir, err)
	}
	return nil
}

// readArchiveFile verifies the archive file at path (ReadArchive).
func readArchiveFile(path string, pub crypto.PublicKey) (ArchiveSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return ArchiveSummary{}, fmt.Errorf("audit: opening the archive: %w", err)
	}
	defer f.Close()
	return ReadArchive(f, pub, nil)
}

// VerifyArchiveFiles verifies archive files offline, as `thiqa audit
// verify --archive` reports it on out: each file completely (ReadArchive,
// with the key in publicKeyFile, or the file's own key when it is ""),
// and that each file continues the one before (its first record chains
// from that file's last hash). It returns false when a file is broken or
// the files do not chain; an error when a file or the key cannot be read.
func VerifyArchiveFiles(paths []string, publicKeyFile string, out io.Writer) (bool, error) {
	var pub crypto.PublicKey
	if publicKeyFile != "" {
		var err error
		if pub, err = ReadCheckpointKey(publicKeyFile); err != nil {
			return false, err
		}
	}
	var prev *ArchiveSummary
	for _, path := range paths {
		s, err := readArchiveFile(path, pub)
		if errors.Is(err, ErrArchiveCorrupt) {
			fmt.Fprintf(out, "audit archive BROKEN: %s: %v\n", path, err)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if prev != nil && (s.Header.FirstSeq != prev.Header.LastSeq+1 || !bytes.Equal(s.Header.PrevHash, prev.LastHash)) {
			fmt.Fprintf(out, "audit archive BROKEN: %s (records %d to %d) does not continue the file before it, which ends at record %d\n",
				path, s.Header.FirstSeq, s.Header.LastSeq, prev.Header.LastSeq)
			return false, nil
		}
		fmt.Fprintf(out, "audit archive OK: %s: records %d to %d (%d), SHA-256 %s, %d bytes; ends at the checkpoint of %s\n",
			path, s.Header.FirstSeq, s.Header.LastSeq, s.Records, hex.EncodeToString(s.SHA256), s.Bytes,
			s.Header.Checkpoint.Time.Format(time.RFC3339))
		prev = &s
	}
	if pub == nil {
		fmt.Fprintln(out, "audit archive: WARNING: the checkpoint signatures were checked with the key each file carries; pin the deployment's key with --checkpoint-key")
	}
	return true, nil
}
