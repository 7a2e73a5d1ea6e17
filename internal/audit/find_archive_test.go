package audit_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// findArchived runs FindWithArchives over s with the files (names in
// s.dir), by "cli:op", the checkpoints checked with s's key.
func (s *sinceLog) findArchived(t *testing.T, q audit.Query, names ...string) (audit.Found, error) {
	t.Helper()
	pub, err := audit.ReadCheckpointKey(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = n
		if !filepath.IsAbs(n) {
			paths[i] = filepath.Join(s.dir, n)
		}
	}
	return audit.FindWithArchives(ctxT(t), s.db, s.db, newLog(t, s.db, nil), "cli:op", q, paths, pub)
}

// seqsOf are the seqs of recs.
func seqsOf(recs []audit.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// TestFindWithArchives: `audit find --archive` answers every query over
// the archive files and the live log as the live log answered it before
// the records were archived (the same records, order, limit and "more"),
// records the files it read, and names the archived ranges no file given
// holds.
func TestFindWithArchives(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testFindWithArchives(t, d) })
	}
}

func testFindWithArchives(t *testing.T, d storetest.Dialect) {
	s := newSinceLog(t, d)
	app := []string{"test.append"}
	queries := []audit.Query{
		{Actions: app, Object: "obj-3"},
		{Actions: app, Object: "obj-3", Limit: 2},
		{Actions: app, Object: "obj-3", Limit: 2, OldestFirst: true},
		{Actions: app, Limit: 5},
		{Actions: app, Limit: 5, OldestFirst: true},
		{Actions: app, FromSeq: 38, Limit: 4, OldestFirst: true},
		{Actions: app, FromSeq: 38, Limit: 40},
		{Actions: app, Seq: 5},
		{Actions: app, Since: s.recs[9].Time, Until: s.recs[12].Time},
		{Actions: app, Actor: "tester", Object: "obj-15", Outcome: audit.OutcomeSuccess, Limit: 2, OldestFirst: true},
		{Actions: app, Outcome: audit.OutcomeFailure},
		{Actions: app, Limit: 100, OldestFirst: true},
	}
	before := make([]audit.Found, len(queries))
	for i, q := range queries {
		f, err := audit.Find(ctxT(t), s.db, s.db, newLog(t, s.db, nil), "cli:op", q)
		if err != nil {
			t.Fatal(err)
		}
		before[i] = f
	}
	s.mustArchive(t, 45, "a1.jsonl.gz") // records 1 to 40
	reads := storetest.AuditCount(t, s.db, audit.ReadAction, audit.OutcomeSuccess)
	for i, q := range queries {
		got, err := s.findArchived(t, q, "a1.jsonl.gz")
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		want := before[i]
		if !slices.Equal(seqsOf(got.Records), seqsOf(want.Records)) || got.More != want.More || len(got.NotSearched) != 0 {
			t.Fatalf("%+v: seqs %v more %v (not searched %+v), before the archive %v more %v", q, seqsOf(got.Records), got.More,
				got.NotSearched, seqsOf(want.Records), want.More)
		}
		for j, r := range got.Records {
			if !bytes.Equal(r.Hash, want.Records[j].Hash) || !r.Time.Equal(want.Records[j].Time) || !bytes.Equal(r.Details, want.Records[j].Details) {
				t.Fatalf("%+v: record %d differs from the live one it was: %+v, %+v", q, r.Seq, r, want.Records[j])
			}
		}
	}
	// Without the file, the archived records are not found.
	if f, err := audit.Find(ctxT(t), s.db, s.db, newLog(t, s.db, nil), "cli:op", queries[0]); err != nil ||
		!slices.Equal(seqsOf(f.Records), []int64{64, 44}) || f.ArchivedBelow != 41 {
		t.Fatalf("Find without the file: %v %v %+v", seqsOf(f.Records), err, f)
	}
	// Each search left its record, naming the file it read.
	if n := storetest.AuditCount(t, s.db, audit.ReadAction, audit.OutcomeSuccess); n != reads+len(queries)+1 {
		t.Fatalf("%d audit.read records, want %d", n, reads+len(queries)+1)
	}
	rec, err := s.findArchived(t, audit.Query{Actions: []string{audit.ReadAction}, Limit: 2}, "a1.jsonl.gz")
	if err != nil || len(rec.Records) != 2 {
		t.Fatalf("the audit.read records: %+v %v", rec, err)
	}
	sum := s.fileSHA256(t, "a1.jsonl.gz")
	var details struct {
		Query    audit.Query             `json:"query"`
		Returned *int                    `json:"returned"`
		Archives []audit.SearchedArchive `json:"archives"`
	}
	if err := json.Unmarshal(rec.Records[1].Details, &details); err != nil {
		t.Fatal(err)
	}
	if details.Returned == nil || len(details.Archives) != 1 || details.Archives[0] != (audit.SearchedArchive{File: filepath.Join(s.dir, "a1.jsonl.gz"), FirstSeq: 1, LastSeq: 40, SHA256: sum}) {
		t.Fatalf("the search's details: %s", rec.Records[1].Details)
	}
	// The search without files leaves its details as before.
	if string(rec.Records[0].Details) != `{"query":{"actions":["test.append"],"object":"obj-3","limit":50},"returned":2}` {
		t.Fatalf("the search without files: details %s", rec.Records[0].Details)
	}

	// A second range: the files given are searched, the range whose file
	// is not given is named (when the query may reach it).
	s.mustArchive(t, 70, "a2.jsonl.gz") // records 41 to 60
	q := audit.Query{Actions: app, Object: "obj-3"}
	for _, c := range []struct {
		q     audit.Query
		files []string
		seqs  []int64
		gaps  [][2]int64
	}{
		{q, []string{"a1.jsonl.gz", "a2.jsonl.gz"}, []int64{64, 44, 24, 4}, nil},
		{q, []string{"a2.jsonl.gz", "a1.jsonl.gz"}, []int64{64, 44, 24, 4}, nil},
		{q, []string{"a1.jsonl.gz"}, []int64{64, 24, 4}, [][2]int64{{41, 60}}},
		{q, []string{"a2.jsonl.gz"}, []int64{64, 44}, [][2]int64{{1, 40}}},
		{audit.Query{Actions: app, Object: "obj-3", FromSeq: 41}, []string{"a2.jsonl.gz"}, []int64{64, 44}, nil},
		{audit.Query{Actions: app, Seq: 50}, []string{"a1.jsonl.gz"}, nil, [][2]int64{{41, 60}}},
		{audit.Query{Actions: app, Seq: 65}, []string{"a1.jsonl.gz"}, []int64{65}, nil},
	} {
		f, err := s.findArchived(t, c.q, c.files...)
		if err != nil {
			t.Fatalf("%+v with %v: %v", c.q, c.files, err)
		}
		var gaps [][2]int64
		for _, g := range f.NotSearched {
			gaps = append(gaps, [2]int64{g.FirstSeq, g.LastSeq})
			if g.Lost || !strings.HasSuffix(g.File, ".jsonl.gz") || len(g.SHA256) != 32 || slices.Contains(c.files, g.File) {
				t.Fatalf("%+v with %v: gap %+v", c.q, c.files, g)
			}
		}
		if !slices.Equal(seqsOf(f.Records), c.seqs) || !slices.Equal(gaps, c.gaps) {
			t.Fatalf("%+v with %v: seqs %v gaps %v, want %v %v", c.q, c.files, seqsOf(f.Records), gaps, c.seqs, c.gaps)
		}
	}
}

// fileSHA256 is the hex SHA-256 of the file name in s.dir as
// audit_archives records it.
func (s *sinceLog) fileSHA256(t *testing.T, name string) string {
	t.Helper()
	p, err := audit.ReadArchivedPrefix(ctxT(t), s.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Rows {
		if r.File == name {
			return hex.EncodeToString(r.FileSHA256)
		}
	}
	t.Fatalf("no archived range of %s", name)
	return ""
}

// TestFindWithArchivesRefuses: a file the database does not record (from
// another log, with the same key and seqs; of a range not recorded; one
// whose recorded SHA-256 differs), a truncated or damaged copy, a gzip
// bomb (refused from their SHA-256, before they are decompressed), a file
// that is not gzip, or one that cannot be read (ErrArchiveUnreadable) is
// refused with a clear error: nothing is returned and the search is not
// recorded.
func TestFindWithArchivesRefuses(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testFindWithArchivesRefuses(t, d) })
	}
}

func testFindWithArchivesRefuses(t *testing.T, d storetest.Dialect) {
	s := newSinceLog(t, d)
	s.mustArchive(t, 45, "a1.jsonl.gz")
	other := newSinceLogKey(t, d, s.key)
	other.mustArchive(t, 45, "o1.jsonl.gz")
	other.mustArchive(t, 70, "o2.jsonl.gz")
	good := filepath.Join(s.dir, "a1.jsonl.gz")
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	truncated := writeBytes(t, dir, "truncated.jsonl.gz", raw[:len(raw)/2])
	damaged := slices.Clone(raw)
	damaged[len(damaged)/2] ^= 0x55
	damagedFile := writeBytes(t, dir, "damaged.jsonl.gz", damaged)
	notGzip := writeBytes(t, dir, "not-gzip.jsonl.gz", []byte("{\"format\":\"thiqa-audit-archive\"}\n"))
	bomb := writeBytes(t, dir, "bomb.jsonl.gz", gzipBytes(t, append(gunzipFile(t, good), make([]byte, 64<<20)...)))
	// The header of a range the database never archived, then anything:
	// refused from its header, before the rest is read.
	headerOnly := writeBytes(t, dir, "header-only.jsonl.gz", gzipBytes(t, append(firstLine(t, filepath.Join(other.dir, "o2.jsonl.gz")), "not a record\n"...)))
	reads := storetest.AuditCount(t, s.db, audit.ReadAction, audit.OutcomeSuccess)
	q := audit.Query{Object: "obj-3"}
	for _, c := range []struct {
		files []string
		want  error
		text  string
	}{
		{[]string{filepath.Join(other.dir, "o1.jsonl.gz")}, audit.ErrArchiveRefused, "the archived range 1-40 records the file with SHA-256 " + s.fileSHA256(t, "a1.jsonl.gz")},
		{[]string{good, filepath.Join(other.dir, "o2.jsonl.gz")}, audit.ErrArchiveRefused, "o2.jsonl.gz: it holds records 41 to 60 (its header says), which no archived range"},
		{[]string{headerOnly}, audit.ErrArchiveRefused, "header-only.jsonl.gz: it holds records 41 to 60 (its header says), which no archived range recorded in the database holds"},
		{[]string{truncated}, audit.ErrArchiveRefused, "truncated.jsonl.gz (records 1 to 40, SHA-256 "},
		{[]string{damagedFile}, audit.ErrArchiveRefused, "the archived range 1-40 records the file with SHA-256 " + s.fileSHA256(t, "a1.jsonl.gz") + ": another file, or a damaged or truncated copy"},
		{[]string{notGzip}, audit.ErrArchiveCorrupt, "not-gzip.jsonl.gz: audit: archive file is corrupt: not a gzip file"},
		// The file archived with 64 MiB of zeros after its trailer, in its
		// gzip member (64 KiB compressed): refused from its SHA-256,
		// nothing decompressed past its header.
		{[]string{bomb}, audit.ErrArchiveRefused, "bomb.jsonl.gz (records 1 to 40, SHA-256 "},
		{[]string{dir}, audit.ErrArchiveUnreadable, "audit: the archive file cannot be read: " + dir + ": "},
		{[]string{filepath.Join(dir, "missing.jsonl.gz")}, os.ErrNotExist, "missing.jsonl.gz"},
		{[]string{filepath.Join(dir, "missing.jsonl.gz")}, audit.ErrArchiveUnreadable, "missing.jsonl.gz"},
	} {
		f, err := s.findArchived(t, q, c.files...)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) || f.Records != nil {
			t.Fatalf("%v: %d records, %v; want %v with %q", c.files, len(f.Records), err, c.want, c.text)
		}
	}
	if _, err := s.findArchived(t, q, truncated); !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("a truncated file: %v, want it called truncated", err)
	}
	// A search that cannot be recorded returns nothing.
	pub, err := audit.ReadCheckpointKey(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := audit.FindWithArchives(ctxT(t), s.db, s.db, failingLog{}, "cli:op", q, []string{good}, pub); !errors.Is(err, audit.ErrReadNotRecorded) || f.Records != nil {
		t.Fatalf("a failing log: %d records, %v", len(f.Records), err)
	}
	// The database's record of the file changed: the file is refused.
	tamperArchives(t, s.cfg, "UPDATE audit_archives SET file_sha256 = "+blobLiteral(d.Name, bytes.Repeat([]byte{7}, 32))+" WHERE first_seq = 1")
	if f, err := s.findArchived(t, q, good); !errors.Is(err, audit.ErrArchiveRefused) || f.Records != nil ||
		!strings.Contains(err.Error(), "records the file with SHA-256 "+strings.Repeat("07", 32)) {
		t.Fatalf("a file whose recorded SHA-256 differs: %d records, %v", len(f.Records), err)
	}
	if n := storetest.AuditCount(t, s.db, audit.ReadAction, audit.OutcomeSuccess); n != reads {
		t.Fatalf("refused searches left %d audit.read records", n-reads)
	}
}

// writeBytes writes b to dir/name and returns its path.
func writeBytes(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// firstLine is the first line (with its "\n") of the gzip'd file at path.
func firstLine(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(zr).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// gzipBytes is b compressed.
func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// gunzipFile is the gzip'd file at path decompressed.
func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archivingFinder is s.db as a RecordFinder that archives records 41 to
// 60 (a2.jsonl.gz) before the first search it runs: an archive that runs
// while a search with archive files is under way.
type archivingFinder struct {
	t    *testing.T
	s    *sinceLog
	done bool
}

func (f *archivingFinder) FindAuditRecords(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	if !f.done {
		f.done = true
		f.s.mustArchive(f.t, 70, "a2.jsonl.gz")
	}
	return f.s.db.FindAuditRecords(ctx, q)
}

// TestFindWithArchivesArchiveRuns: when an archive moves records out of
// the live log while a search with archive files runs (after the files
// were read), the search says that those records were not searched: the
// archived ranges it names are the ones read after the live log was.
func TestFindWithArchivesArchiveRuns(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			s.mustArchive(t, 45, "a1.jsonl.gz") // records 1 to 40
			pub, err := audit.ReadCheckpointKey(s.pub)
			if err != nil {
				t.Fatal(err)
			}
			q := audit.Query{Actions: []string{"test.append"}, Object: "obj-3"}
			f, err := audit.FindWithArchives(ctxT(t), &archivingFinder{t: t, s: s}, s.db, newLog(t, s.db, nil), "cli:op", q,
				[]string{filepath.Join(s.dir, "a1.jsonl.gz")}, pub)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqsOf(f.Records), []int64{64, 24, 4}) || len(f.NotSearched) != 1 ||
				f.NotSearched[0].FirstSeq != 41 || f.NotSearched[0].LastSeq != 60 || f.NotSearched[0].File != "a2.jsonl.gz" {
				t.Fatalf("seqs %v, not searched %+v; want 64 24 4 and records 41 to 60 (a2.jsonl.gz) not searched", seqsOf(f.Records), f.NotSearched)
			}
		})
	}
}

// cancellingLister is an ArchiveLister that cancels the search's context
// once it has listed the ranges: the operator interrupts the search
// (Ctrl-C) while the files are read.
type cancellingLister struct {
	audit.ArchiveLister
	cancel context.CancelFunc
}

func (l cancellingLister) AuditArchives(ctx context.Context) ([]audit.ArchiveRow, error) {
	rows, err := l.ArchiveLister.AuditArchives(ctx)
	l.cancel()
	return rows, err
}

// countingFinder counts the searches of the live log it runs.
type countingFinder struct {
	audit.RecordFinder
	n int
}

func (f *countingFinder) FindAuditRecords(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	f.n++
	return f.RecordFinder.FindAuditRecords(ctx, q)
}

// TestFindWithArchivesInterrupted: a search interrupted while it reads
// the archive files stops reading them at once (a file may be many GB)
// and returns the context's error, naming the file; nothing is returned.
func TestFindWithArchivesInterrupted(t *testing.T) {
	s := newSinceLog(t, storetest.Dialects()[0])
	s.mustArchive(t, 45, "a1.jsonl.gz")
	pub, err := audit.ReadCheckpointKey(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	live := &countingFinder{RecordFinder: s.db}
	path := filepath.Join(s.dir, "a1.jsonl.gz")
	f, err := audit.FindWithArchives(ctx, live, cancellingLister{s.db, cancel}, newLog(t, s.db, nil), "cli:op", audit.Query{Object: "obj-3"}, []string{path}, pub)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), path) || f.Records != nil || live.n != 0 {
		t.Fatalf("an interrupted search: %d records, %v, %d searches of the live log; want it stopped in the file, with the file named", len(f.Records), err, live.n)
	}
}
