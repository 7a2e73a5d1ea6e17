package audit

import (
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
