package audit

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The states of an archived range.
const (
	// ArchiveDeleting: the file is written and verified and the range's
	// records are being deleted (a crash leaves this; rerunning the
	// archive with the same file finishes it).
	ArchiveDeleting = "deleting"
	// ArchiveDone: the range's records are gone from the live log.
	ArchiveDone = "done"
)

// BreakArchiveMismatch: the live log does not start where the archived
// ranges say it does (records archived but still there, archived ranges
// that do not follow each other, a live record at the end of a range with
// another hash than the range names).
const BreakArchiveMismatch BreakKind = "archive-mismatch"

// ErrArchiveConflict is returned (wrapped) by the store when an archived
// range does not continue the ranges before it, overlaps one, or names a
// last record whose hash the live log does not hold.
var ErrArchiveConflict = errors.New("audit: the archived range conflicts with the log")

// ArchiveRow is one archived range of the log as the store records it.
type ArchiveRow struct {
	// FirstSeq and LastSeq are the range's first and last records.
	FirstSeq, LastSeq int64
	// LastHash is the hash of record LastSeq: the first record after the
	// range links to it.
	LastHash []byte
	// File is the archive file's name (its base name).
	File string
	// FileSHA256 is the SHA-256 of the archive file.
	FileSHA256 []byte
	// Created is when the range was recorded.
	Created time.Time
	// State is ArchiveDeleting or ArchiveDone.
	State string
	// Checkpoint is the signed checkpoint line at LastSeq (the one the
	// file's header holds): the verification checks its signature, so a
	// row written without the checkpoint key does not verify. "" for rows
	// written before it was kept.
	Checkpoint string
	// ReplacedFrom is set (not 0) when File was lost while the range was
	// being deleted (RecoverLostArchive): records FirstSeq to
	// ReplacedFrom-1 are lost with it, and ReplacementFile (SHA-256
	// ReplacementSHA256) holds records ReplacedFrom to LastSeq;
	// ReplacementFile is "" when ReplacedFrom is LastSeq+1.
	ReplacedFrom int64
	// ReplacementFile and ReplacementSHA256 name the replacement file.
	ReplacementFile   string
	ReplacementSHA256 []byte
}

// ArchiveReplacement is what replaces the lost file of a range still being
// deleted: the file holding its records from From (the first of them still
// live) to its last, "" when none was (From is then its last seq + 1).
type ArchiveReplacement struct {
	From       int64
	File       string
	FileSHA256 []byte
}

// lost says which records the row's lost file took with it, "" when
// none: its file was not replaced, or replaced from its first record.
func (r ArchiveRow) lost() string {
	if r.ReplacedFrom <= r.FirstSeq {
		return ""
	}
	return fmt.Sprintf("records %d to %d were deleted and their archive file %s (SHA-256 %s) is lost", r.FirstSeq, r.ReplacedFrom-1,
		r.File, hex.EncodeToString(r.FileSHA256))
}

// ArchiveLister is what a store that archives offers: the archived
// ranges, in seq order. store.DB implements it; a store without it has
// archived nothing.
type ArchiveLister interface {
	AuditArchives(ctx context.Context) ([]ArchiveRow, error)
}

// ArchiveStore is the storage Archive needs; store.DB implements it.
type ArchiveStore interface {
	Store
	RecordHashReader
	ArchiveLister
	// StartAuditArchive records row (state ArchiveDeleting) and appends
	// the records seal returns (as AppendAuditRecords does) in one
	// transaction. It fails with ErrArchiveConflict unless row follows
	// the last range (which must be done) or starts at seq 1, and the log
	// holds record row.LastSeq with hash row.LastHash.
	// seal is given the head and the notifier's cursor read in that
	// transaction: it refuses (its error rolls the transaction back) to
	// archive records the notifier has not dealt with.
	StartAuditArchive(ctx context.Context, row ArchiveRow, seal func(ArchiveStart) ([]Record, error)) error
	// AuditNotifyCursor returns the cursor of the notifications to
	// citizens: the seq of the last audit record the notifier dealt with;
	// set is false when the notifier never ran.
	AuditNotifyCursor(ctx context.Context) (cursor int64, set bool, err error)
	// DeleteArchivedAuditRecords deletes up to limit of the oldest live
	// records of the range [firstSeq, lastSeq] (which must be recorded and
	// in state ArchiveDeleting) in one transaction, and says how many.
	DeleteArchivedAuditRecords(ctx context.Context, firstSeq, lastSeq int64, limit int) (int64, error)
	// FinishAuditArchive moves the range starting at firstSeq to
	// ArchiveDone.
	FinishAuditArchive(ctx context.Context, firstSeq int64) error
	// ReplaceLostAuditArchive records rep as the replacement of the lost
	// file of the range starting at firstSeq and appends the records seal
	// returns, in one transaction. It fails with ErrArchiveConflict unless
	// the range is the last, still being deleted, not replaced yet, and
	// its live records start at rep.From.
	ReplaceLostAuditArchive(ctx context.Context, firstSeq int64, rep ArchiveReplacement, seal func(Head) ([]Record, error)) error
}

// ArchivedPrefix is what the archived ranges say about the beginning of
// the log.
type ArchivedPrefix struct {
	// Rows are the archived ranges, in seq order.
	Rows []ArchiveRow
	// Below is the first seq not archived (1 when nothing is).
	Below int64
	// ends maps the last seq of each range to its last hash.
	ends map[int64][]byte
}

// ReadArchivedPrefix reads the archived ranges of st (none when st is no
// ArchiveLister).
func ReadArchivedPrefix(ctx context.Context, st any) (ArchivedPrefix, error) {
	p := ArchivedPrefix{Below: 1}
	al, ok := st.(ArchiveLister)
	if !ok {
		return p, nil
	}
	rows, err := al.AuditArchives(ctx)
	if err != nil {
		return p, fmt.Errorf("audit: reading the archived ranges: %w", err)
	}
	p.Rows = rows
	p.ends = make(map[int64][]byte, len(rows))
	for _, r := range rows {
		p.ends[r.LastSeq] = r.LastHash
		p.Below = max(p.Below, r.LastSeq+1)
	}
	return p, nil
}

// Holds reports whether checkpoint c, at an archived seq, agrees with the
// archived ranges: it does unless a range ends at c.Seq with another hash.
func (p ArchivedPrefix) Holds(c Checkpoint) bool {
	h, ok := p.ends[c.Seq]
	return !ok || bytes.Equal(h, c.Hash)
}

// Describe says in one line which records are archived, or "" when none.
func (p ArchivedPrefix) Describe() string {
	return p.describe(false)
}

// describe is Describe; withFiles says that the archive files are checked
// after it (verify --data with --archive).
func (p ArchivedPrefix) describe(withFiles bool) string {
	if len(p.Rows) == 0 {
		return ""
	}
	files := make([]string, len(p.Rows))
	for i, r := range p.Rows {
		files[i] = fmt.Sprintf("%s (seq %d-%d, SHA-256 %s", r.File, r.FirstSeq, r.LastSeq, hex.EncodeToString(r.FileSHA256))
		if r.ReplacedFrom != 0 {
			files[i] += ", file lost"
			if r.ReplacementFile != "" {
				files[i] += fmt.Sprintf(": records %d-%d in %s, SHA-256 %s", r.ReplacedFrom, r.LastSeq,
					r.ReplacementFile, hex.EncodeToString(r.ReplacementSHA256))
			}
			if r.ReplacedFrom > r.FirstSeq {
				files[i] += fmt.Sprintf(", records %d-%d lost with it", r.FirstSeq, r.ReplacedFrom-1)
			}
		}
		if r.State != ArchiveDone {
			files[i] += ", " + r.State
		}
		files[i] += ")"
	}
	if withFiles {
		return fmt.Sprintf("records 1 to %d are archived in %s, checked against the archive files given after the live log",
			p.Below-1, strings.Join(files, ", "))
	}
	return fmt.Sprintf("records 1 to %d are archived in %s and not re-checked here (verify the files with --archive)",
		p.Below-1, strings.Join(files, ", "))
}

// liveStart is where the walk of the live log starts.
type liveStart struct {
	// from is the first seq the walk reads.
	from int64
	// prev is the hash record from must link to; nil when it is not
	// checked (an incremental verification's anchor).
	prev []byte
	// window is a range being deleted: the first live record may be any
	// of it, or the one after it.
	window *ArchiveRow
}

// archiveStart checks the archived ranges of st and returns where the
// live log must start, or a break when the ranges or the first live
// record do not hold.
func archiveStart(ctx context.Context, st Store) (liveStart, ArchivedPrefix, *Break, error) {
	p, err := ReadArchivedPrefix(ctx, st)
	if err != nil {
		return liveStart{}, p, nil, err
	}
	ls := liveStart{from: 1, prev: GenesisHash()}
	brk := func(seq int64, format string, args ...any) (liveStart, ArchivedPrefix, *Break, error) {
		return ls, p, &Break{Seq: seq, Kind: BreakArchiveMismatch, Detail: fmt.Sprintf(format, args...)}, nil
	}
	for i, r := range p.Rows {
		switch {
		case r.FirstSeq != ls.from:
			return brk(r.FirstSeq, "the archived range %d-%d (%s) does not follow the one before (it should start at %d)", r.FirstSeq, r.LastSeq, r.File, ls.from)
		case r.LastSeq < r.FirstSeq || len(r.LastHash) != HashSize ||
			r.ReplacedFrom != 0 && (r.ReplacedFrom < r.FirstSeq || r.ReplacedFrom > r.LastSeq+1):
			return brk(r.FirstSeq, "the archived range %d-%d (%s) is malformed", r.FirstSeq, r.LastSeq, r.File)
		case r.State == ArchiveDeleting && i == len(p.Rows)-1:
			ls.window = &p.Rows[i]
		case r.State != ArchiveDone:
			return brk(r.FirstSeq, "the archived range %d-%d (%s) is in state %q", r.FirstSeq, r.LastSeq, r.File, r.State)
		}
		if ls.window == nil {
			ls.from, ls.prev = r.LastSeq+1, r.LastHash
		}
	}
	if len(p.Rows) == 0 {
		return ls, p, nil, nil
	}
	var first int64
	err = st.AuditRecords(ctx, 1, func(r Record) error {
		first = r.Seq
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return ls, p, nil, fmt.Errorf("audit: reading the first live record: %w", err)
	}
	if first != 0 && first < ls.from {
		return brk(first, "record %d is in the live log although it is archived", first)
	}
	return ls, p, nil, nil
}

// problem returns the problem of checkpoint c (on line) at an archived
// seq: nil unless a range ends at c.Seq and records another hash.
func (p ArchivedPrefix) problem(c Checkpoint, line int) *CheckpointProblem {
	if p.Holds(c) {
		return nil
	}
	return &CheckpointProblem{Line: line, Seq: c.Seq, Kind: CheckpointHashMismatch,
		Detail: fmt.Sprintf("the archived range ending at record %d records another hash than this checkpoint — the archive row was edited", c.Seq)}
}

// archivesMoved reports whether the archived ranges of st differ from p
// (a range added, or its state changed).
func archivesMoved(ctx context.Context, st Store, p ArchivedPrefix) (bool, error) {
	now, err := ReadArchivedPrefix(ctx, st)
	if err != nil {
		return false, err
	}
	if len(now.Rows) != len(p.Rows) {
		return true, nil
	}
	for i, r := range now.Rows {
		if r.State != p.Rows[i].State || r.LastSeq != p.Rows[i].LastSeq {
			return true, nil
		}
	}
	return false, nil
}

// endProblem says why nothing signed vouches for the end of the archived
// range r, or "" when something does: the checkpoint line the row keeps
// (its signature verified with pub, at r.LastSeq with r.LastHash), or,
// for a row without one, a checkpoint at r.LastSeq in the checkpoint file
// (named holds the seqs of those). A row made by `thiqa audit archive`
// always keeps the checkpoint its file ends at; a row written by hand to
// make the oldest records vanish cannot sign one.
func (r ArchiveRow) endProblem(pub crypto.PublicKey, named map[int64]bool) string {
	what := fmt.Sprintf("the archived range %d-%d (%s)", r.FirstSeq, r.LastSeq, r.File)
	if r.Checkpoint == "" {
		if named[r.LastSeq] {
			return ""
		}
		return what + " keeps no signed checkpoint and none in the checkpoint file is at its last record: nothing outside the database vouches that these records were archived"
	}
	c, err := ParseCheckpointLine([]byte(r.Checkpoint))
	switch {
	case err != nil:
		return fmt.Sprintf("%s: its checkpoint does not parse (%v) — the archive row was forged or edited", what, err)
	case c.Verify(pub) != nil:
		return what + ": its checkpoint's signature does not verify with the checkpoint key — the archive row was forged or edited"
	case c.Seq != r.LastSeq || !bytes.Equal(c.Hash, r.LastHash):
		return fmt.Sprintf("%s: its checkpoint names record %d with another hash than the range's last — the archive row was forged or edited", what, c.Seq)
	}
	return ""
}
