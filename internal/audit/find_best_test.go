package audit

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBestRecords: the bounded keeper of FindWithArchives holds at most n
// records whatever it is given, each seq once, and returns the n first
// of the order (newest or oldest first) in that order.
func TestBestRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seqs := make([]int64, 5000)
	for i := range seqs {
		seqs[i] = int64(i + 1)
	}
	for _, oldest := range []bool{false, true} {
		for _, n := range []int{1, 7, 51, 6000} {
			rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
			b := newBestRecords(n, oldest)
			for i, s := range seqs {
				b.add(Record{Seq: s})
				if i%3 == 0 {
					b.add(Record{Seq: s}) // the same seq from another source
				}
				if len(b.recs) > n {
					t.Fatalf("n %d: holds %d records", n, len(b.recs))
				}
			}
			want := slices.Sorted(slices.Values(seqs))
			if !oldest {
				slices.Reverse(want)
			}
			want = want[:min(n, len(want))]
			var got []int64
			for _, r := range b.sorted() {
				got = append(got, r.Seq)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("oldest %v n %d: %v..., want %v...", oldest, n, got[:min(5, len(got))], want[:min(5, len(want))])
			}
		}
	}
}

// TestArchiveGaps: the archived records a search with files may reach and
// no file given holds: a range whose file is not given, the records lost
// with a file (thiqa audit archive --file-lost) unless that file turned up
// and is given, ranges beyond the query's seqs left out.
func TestArchiveGaps(t *testing.T) {
	rows := []ArchiveRow{
		{FirstSeq: 1, LastSeq: 40, File: "a1"},
		{FirstSeq: 41, LastSeq: 60, File: "a2", ReplacedFrom: 51, ReplacementFile: "a2r"}, // 41-50 lost
		{FirstSeq: 61, LastSeq: 70, File: "a3", ReplacedFrom: 71},                         // all lost
		{FirstSeq: 71, LastSeq: 80, File: "a4", ReplacedFrom: 71, ReplacementFile: "a4r"}, // none lost
	}
	type gap struct {
		first, last int64
		file        string
		lost        bool
	}
	for _, c := range []struct {
		given []SearchedArchive
		q     Query
		want  []gap
	}{
		{nil, Query{}, []gap{{1, 40, "a1", false}, {41, 50, "a2", true}, {51, 60, "a2r", false}, {61, 70, "a3", true}, {71, 80, "a4r", false}}},
		{[]SearchedArchive{{FirstSeq: 1}, {FirstSeq: 51}, {FirstSeq: 71}}, Query{}, []gap{{41, 50, "a2", true}, {61, 70, "a3", true}}},
		{[]SearchedArchive{{FirstSeq: 41}}, Query{}, []gap{{1, 40, "a1", false}, {61, 70, "a3", true}, {71, 80, "a4r", false}}}, // a2 found again
		{[]SearchedArchive{{FirstSeq: 1}}, Query{FromSeq: 55}, []gap{{51, 60, "a2r", false}, {61, 70, "a3", true}, {71, 80, "a4r", false}}},
		{nil, Query{Seq: 45}, []gap{{41, 50, "a2", true}}},
		{nil, Query{FromSeq: 81}, nil},
	} {
		var got []gap
		for _, g := range archiveGaps(rows, c.given, c.q) {
			got = append(got, gap{g.FirstSeq, g.LastSeq, g.File, g.Lost})
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("given %+v, query %+v: %v, want %v", c.given, c.q, got, c.want)
		}
	}
}

// TestRecordedFileReplacement: the replacement file of a range whose file
// was lost before any of its records was deleted (thiqa audit archive
// --file-lost: the replacement holds the range from its first seq, as the
// lost file did) is the range's file, and so is the lost file if it turns
// up again; any other file of those seqs is refused, naming both SHA-256s.
func TestRecordedFileReplacement(t *testing.T) {
	lost, repl, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	last := bytes.Repeat([]byte{9}, 32)
	rows := []ArchiveRow{
		{FirstSeq: 1, LastSeq: 40, File: "a1", FileSHA256: bytes.Repeat([]byte{4}, 32), LastHash: bytes.Repeat([]byte{8}, 32)},
		{FirstSeq: 41, LastSeq: 60, File: "a2", FileSHA256: lost, LastHash: last, ReplacedFrom: 41, ReplacementFile: "a2r", ReplacementSHA256: repl},
	}
	file := func(sum []byte) ArchiveSummary {
		return ArchiveSummary{Header: ArchiveHeader{FirstSeq: 41, LastSeq: 60}, SHA256: sum, LastHash: last}
	}
	for _, sum := range [][]byte{repl, lost} {
		if why := recordedFile(rows, file(sum)); why != "" {
			t.Errorf("the file with SHA-256 %x: refused: %s", sum, why)
		}
	}
	want := "the archived range 41-60 records the file with SHA-256 " + hex.EncodeToString(lost) + " or " + hex.EncodeToString(repl)
	if why := recordedFile(rows, file(other)); why != want {
		t.Errorf("another file: %q, want %q", why, want)
	}
}
