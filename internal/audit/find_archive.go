package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"container/heap"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Finding records in archive files: `thiqa audit find --archive FILE`
// searches archive files (thiqa audit archive) with the live log. A file
// is read only if the database records it: each is read through once,
// streaming, verified completely (ReadArchive), and its SHA-256, seqs,
// last hash and checkpoint held against the archived range it claims
// before any of its records is handed back. Only the best Query.Limit+1
// matches are kept in memory, whatever the files' sizes.

// ErrArchiveRefused is returned (wrapped) by FindWithArchives for a file
// the database does not record as the file of an archived range (no range
// has its seqs, or the range records another SHA-256, last hash or
// checkpoint). Nothing is returned then, and the search is not recorded.
var ErrArchiveRefused = errors.New("audit: not an archive file the database records")

// ErrArchiveUnreadable is returned (wrapped, with the error of the file
// system) by FindWithArchives for an archive file it cannot open or read.
var ErrArchiveUnreadable = errors.New("audit: the archive file cannot be read")

// SearchedArchive names an archive file a search read, as the search's
// audit record lists it.
type SearchedArchive struct {
	// File is the path as given.
	File string `json:"file"`
	// FirstSeq and LastSeq are the records it holds.
	FirstSeq int64 `json:"firstSeq"`
	LastSeq  int64 `json:"lastSeq"`
	// SHA256 is the file's SHA-256 in hex (the one audit_archives
	// records).
	SHA256 string `json:"sha256"`
}

// ArchiveGap is archived records that a search with archive files may
// select and that no file given holds.
type ArchiveGap struct {
	// FirstSeq and LastSeq bound the records.
	FirstSeq, LastSeq int64
	// File and SHA256 name the file that holds them (the database's
	// record of it); Lost says that it was lost (thiqa audit archive
	// --file-lost) and nothing holds them any more.
	File   string
	SHA256 []byte
	Lost   bool
}

// FindWithArchives is Find over the live log and the archive files at
// paths together: the same query, order and limit over both (a record
// both hold, in a range still being deleted, is returned once). Each file
// must be one the archived ranges of arch record (see ErrArchiveRefused),
// readable (ErrArchiveUnreadable) and intact (ErrArchiveCorrupt), its
// checkpoint verified with pub (the key the file carries when pub is nil;
// the database's SHA-256 is what vouches for the file). The search is recorded as Find records it, its
// details naming the files (key "archives", SearchedArchive), before
// anything is returned. Found.NotSearched names the archived records the
// query may select that no file given holds. Without paths it is Find.
func FindWithArchives(ctx context.Context, st RecordFinder, arch ArchiveLister, log Appender, actor string, q Query, paths []string, pub crypto.PublicKey) (Found, error) {
	if len(paths) == 0 {
		return Find(ctx, st, arch, log, actor, q)
	}
	if err := q.Check(); err != nil {
		return Found{}, err
	}
	prefix, err := ReadArchivedPrefix(ctx, arch)
	if err != nil {
		return Found{}, err
	}
	best := newBestRecords(q.Limit+1, q.OldestFirst)
	searched := make([]SearchedArchive, 0, len(paths))
	for _, path := range paths {
		if err := unrecordedFile(ctx, path, prefix.Rows); err != nil {
			return Found{}, err
		}
		s, err := searchArchiveFile(ctx, path, pub, q, best)
		if err != nil {
			return Found{}, err
		}
		if why := recordedFile(prefix.Rows, s); why != "" {
			return Found{}, fmt.Errorf("%w: %s (records %d to %d, SHA-256 %s): %s", ErrArchiveRefused, path,
				s.Header.FirstSeq, s.Header.LastSeq, hex.EncodeToString(s.SHA256), why)
		}
		searched = append(searched, SearchedArchive{File: path, FirstSeq: s.Header.FirstSeq, LastSeq: s.Header.LastSeq, SHA256: hex.EncodeToString(s.SHA256)})
	}
	ask := q
	ask.Limit = q.Limit + 1
	live, err := st.FindAuditRecords(ctx, ask)
	if err != nil {
		return Found{}, fmt.Errorf("searching the audit log: %w", err)
	}
	for _, r := range live {
		best.add(r)
	}
	f := Found{Records: best.sorted()}
	if len(f.Records) > q.Limit {
		f.Records, f.More = f.Records[:q.Limit], true
	}
	if f.ArchivedBelow, err = reachesArchived(ctx, st, arch, q); err != nil {
		return Found{}, err
	}
	if f.ArchivedBelow > 0 {
		// The ranges as they stand after the live log was read: an
		// archive that ran since the files were read moved records out
		// of it that no file given holds.
		if prefix, err = ReadArchivedPrefix(ctx, arch); err != nil {
			return Found{}, err
		}
		f.NotSearched = archiveGaps(prefix.Rows, searched, q)
	}
	details := map[string]any{"query": q, "returned": len(f.Records), "archives": searched}
	if _, err := log.Append(ctx, Entry{Actor: actor, Action: ReadAction, Object: q.Object, Outcome: OutcomeSuccess, Details: details}); err != nil {
		return Found{}, fmt.Errorf("%w: %w", ErrReadNotRecorded, err)
	}
	return f, nil
}

// searchArchiveFile reads and verifies the archive file at path, adding
// the records matching q to best.
func searchArchiveFile(ctx context.Context, path string, pub crypto.PublicKey, q Query, best *bestRecords) (ArchiveSummary, error) {
	file, err := os.Open(path)
	if err != nil {
		return ArchiveSummary{}, fmt.Errorf("%w: %w", ErrArchiveUnreadable, err)
	}
	defer file.Close()
	s, err := ReadArchive(contextReader{ctx, file}, pub, func(r Record) error {
		if q.Matches(r) {
			best.add(r)
		}
		return nil
	})
	switch {
	case ctx.Err() != nil:
		return s, fmt.Errorf("audit: reading the archive %s: %w", path, ctx.Err())
	case errors.Is(err, ErrArchiveCorrupt):
		return s, fmt.Errorf("%s: %w", path, err)
	case err != nil:
		return s, fmt.Errorf("%w: %s: %w", ErrArchiveUnreadable, path, err)
	}
	return s, nil
}

// unrecordedFile refuses (ErrArchiveRefused) the archive file at path
// when it cannot be the file of an archived range of rows, from its
// header and its SHA-256 alone (before anything in it is decompressed
// past its header): no range has its seqs, or the ranges that do record
// another SHA-256. It returns nil when the file may be, or when its
// header cannot be read (the whole reading then says what is wrong). A
// file is thus decompressed and verified only when its bytes are the ones
// the database records: a gzip bomb, or forged records behind a genuine
// header, are refused after one read of the file as stored, however much
// they would decompress to.
func unrecordedFile(ctx context.Context, path string, rows []ArchiveRow) error {
	file, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer file.Close()
	gz, err := gzip.NewReader(bufio.NewReader(file))
	if err != nil {
		return nil
	}
	line, err := bufio.NewReaderSize(io.LimitReader(gz, maxArchiveLine), 64<<10).ReadSlice('\n')
	var h archiveHeaderLine
	if err != nil || strictJSON(line, &h) != nil || h.Format != archiveFormat {
		return nil
	}
	var sums [][]byte
	var row ArchiveRow
	for _, r := range rows {
		if s := r.recordedSums(h.FirstSeq, h.LastSeq); len(s) > 0 {
			sums, row = s, r
			break
		}
	}
	if len(sums) == 0 {
		return fmt.Errorf("%w: %s: it holds records %d to %d (its header says), which no archived range recorded in the database holds",
			ErrArchiveRefused, path, h.FirstSeq, h.LastSeq)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrArchiveUnreadable, path, err)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, contextReader{ctx, file}); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("audit: reading the archive %s: %w", path, ctx.Err())
		}
		return fmt.Errorf("%w: %s: %w", ErrArchiveUnreadable, path, err)
	}
	if got := sum.Sum(nil); !slices.ContainsFunc(sums, func(b []byte) bool { return bytes.Equal(b, got) }) {
		return fmt.Errorf("%w: %s (records %d to %d, SHA-256 %s): the archived range %d-%d records the file with SHA-256 %s: another file, or a damaged or truncated copy (thiqa audit verify --archive FILE says what is wrong with it)",
			ErrArchiveRefused, path, h.FirstSeq, h.LastSeq, hex.EncodeToString(got), row.FirstSeq, row.LastSeq, hexSums(sums))
	}
	return nil
}

// contextReader is r that stops with ctx's error once ctx is done: a
// search interrupted (Ctrl-C) stops reading a multi-GB file at once.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// recordedFile says why the file s is not the file of an archived range
// of rows, "" when it is: a file the range records (its own, first seq
// to last, or its replacement's, from the first seq it replaced the lost
// file from), with the range's last seq, last hash and checkpoint. A lost
// file that turned up again is the range's file.
func recordedFile(rows []ArchiveRow, s ArchiveSummary) string {
	h := s.Header
	for _, r := range rows {
		sums := r.recordedSums(h.FirstSeq, h.LastSeq)
		if len(sums) == 0 {
			continue
		}
		switch {
		case !slices.ContainsFunc(sums, func(b []byte) bool { return bytes.Equal(b, s.SHA256) }):
			return fmt.Sprintf("the archived range %d-%d records the file with SHA-256 %s", r.FirstSeq, r.LastSeq, hexSums(sums))
		case !bytes.Equal(s.LastHash, r.LastHash):
			return fmt.Sprintf("its last record's hash is not the one the archived range %d-%d records", r.FirstSeq, r.LastSeq)
		case r.Checkpoint != "" && r.Checkpoint != h.CheckpointLine:
			return fmt.Sprintf("it ends at another checkpoint than the one the archived range %d-%d keeps", r.FirstSeq, r.LastSeq)
		}
		return ""
	}
	return "no archived range recorded in the database holds these records"
}

// recordedSums returns the SHA-256s r records for a file of records first
// to last: its own file's when first is its first seq, its replacement's
// when first is the seq it replaced its lost file from (both when that is
// its first seq: the lost file may turn up again); none when r holds no
// such file.
func (r ArchiveRow) recordedSums(first, last int64) [][]byte {
	if last != r.LastSeq {
		return nil
	}
	var sums [][]byte
	if first == r.FirstSeq {
		sums = append(sums, r.FileSHA256)
	}
	if r.ReplacedFrom != 0 && r.ReplacementFile != "" && first == r.ReplacedFrom {
		sums = append(sums, r.ReplacementSHA256)
	}
	return sums
}

// hexSums is sums in hex, joined by " or ".
func hexSums(sums [][]byte) string {
	out := make([]string, len(sums))
	for i, b := range sums {
		out[i] = hex.EncodeToString(b)
	}
	return strings.Join(out, " or ")
}

// archiveGaps returns the archived records of rows that q may select
// (by seq) and that no file of searched holds, in seq order.
func archiveGaps(rows []ArchiveRow, searched []SearchedArchive, q Query) []ArchiveGap {
	given := make(map[int64]bool, len(searched))
	for _, s := range searched {
		given[s.FirstSeq] = true
	}
	var gaps []ArchiveGap
	add := func(g ArchiveGap) {
		lo, hi := g.FirstSeq, g.LastSeq
		switch {
		case lo > hi, q.Seq > 0 && (q.Seq < lo || q.Seq > hi), q.FromSeq > hi:
			return
		}
		gaps = append(gaps, g)
	}
	for _, r := range rows {
		if given[r.FirstSeq] {
			continue // the range's own file: every record of it
		}
		if r.ReplacedFrom > r.FirstSeq {
			add(ArchiveGap{FirstSeq: r.FirstSeq, LastSeq: r.ReplacedFrom - 1, File: r.File, SHA256: r.FileSHA256, Lost: true})
		}
		if r.hasFile() && !given[r.fileFirst()] {
			add(ArchiveGap{FirstSeq: r.fileFirst(), LastSeq: r.LastSeq, File: r.fileName(), SHA256: r.fileSHA256()})
		}
	}
	return gaps
}

// Matches reports whether r is a record q selects: every field q sets
// matches (as the store's search compares them: exact text, Since
// inclusive, Until exclusive, to the nanosecond).
func (q Query) Matches(r Record) bool {
	switch {
	case q.Seq > 0 && r.Seq != q.Seq,
		q.FromSeq > 0 && r.Seq < q.FromSeq,
		q.Object != "" && r.Object != q.Object,
		q.Actor != "" && r.Actor != q.Actor,
		q.Outcome != "" && r.Outcome != q.Outcome,
		!q.Since.IsZero() && r.Time.UnixNano() < q.Since.UnixNano(),
		!q.Until.IsZero() && r.Time.UnixNano() >= q.Until.UnixNano(),
		len(q.Actions) > 0 && !slices.Contains(q.Actions, r.Action):
		return false
	}
	return true
}

// bestRecords keeps the n first records of an order (seq descending, or
// ascending when oldest), each seq once: a heap whose root is the record
// that goes first when a better one comes.
type bestRecords struct {
	n      int
	oldest bool
	recs   []Record
	seqs   map[int64]bool
}

func newBestRecords(n int, oldest bool) *bestRecords {
	return &bestRecords{n: n, oldest: oldest, seqs: make(map[int64]bool, n)}
}

// before reports whether seq a comes before seq b in the order.
func (b *bestRecords) before(a, c int64) bool {
	if b.oldest {
		return a < c
	}
	return a > c
}

// add keeps r if it is among the n first seen so far.
func (b *bestRecords) add(r Record) {
	if b.seqs[r.Seq] {
		return
	}
	if len(b.recs) < b.n {
		b.seqs[r.Seq] = true
		heap.Push((*recordHeap)(b), r)
		return
	}
	if !b.before(r.Seq, b.recs[0].Seq) {
		return
	}
	delete(b.seqs, b.recs[0].Seq)
	b.seqs[r.Seq] = true
	b.recs[0] = r
	heap.Fix((*recordHeap)(b), 0)
}

// sorted returns the records kept, in the order.
func (b *bestRecords) sorted() []Record {
	out := slices.Clone(b.recs)
	slices.SortFunc(out, func(x, y Record) int {
		switch {
		case b.before(x.Seq, y.Seq):
			return -1
		case b.before(y.Seq, x.Seq):
			return 1
		}
		return 0
	})
	return out
}

// recordHeap is bestRecords as a heap.Interface: the root is the last in
// the order.
type recordHeap bestRecords

func (h *recordHeap) Len() int { return len(h.recs) }
func (h *recordHeap) Less(i, j int) bool {
	return (*bestRecords)(h).before(h.recs[j].Seq, h.recs[i].Seq)
}
func (h *recordHeap) Swap(i, j int) { h.recs[i], h.recs[j] = h.recs[j], h.recs[i] }
func (h *recordHeap) Push(x any)    { h.recs = append(h.recs, x.(Record)) }
func (h *recordHeap) Pop() any {
	r := h.recs[len(h.recs)-1]
	h.recs = h.recs[:len(h.recs)-1]
	return r
}
