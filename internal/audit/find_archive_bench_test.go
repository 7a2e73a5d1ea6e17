package audit

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchArchive writes an archive file of n records (every tenth by the
// actor "citizen:rare") to dir and returns its path and checkpoint key.
func benchArchive(b *testing.B, dir string, n int64) (string, *ecdsa.PublicKey) {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := func(seq int64, prev []byte) Record {
		actor := "ra:officer-7"
		if seq%10 == 0 {
			actor = "citizen:rare"
		}
		r := Record{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond), Actor: actor, Action: "signing.sign",
			Object: fmt.Sprintf("cred-%d", seq%5000), Outcome: OutcomeSuccess, Details: json.RawMessage(`{"level":"B-LT","doc":"3f2a9c"}`), PrevHash: prev}
		r.Hash = HashRecord(r)
		return r
	}
	prev := GenesisHash()
	for seq := int64(1); seq <= n; seq++ {
		prev = rec(seq, prev).Hash
	}
	cp, err := SignCheckpoint(key, Head{Seq: n, Hash: prev}, t0.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	line, _ := cp.MarshalLine()
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	path := filepath.Join(dir, "bench.jsonl.gz")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	aw, err := newArchiveWriter(bw, ArchiveHeader{FirstSeq: 1, LastSeq: n, PrevHash: GenesisHash(), CheckpointLine: string(line[:len(line)-1]),
		CheckpointKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), Created: t0.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	prev = GenesisHash()
	for seq := int64(1); seq <= n; seq++ {
		r := rec(seq, prev)
		if err := aw.record(r); err != nil {
			b.Fatal(err)
		}
		prev = r.Hash
	}
	if err := aw.finish(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	return path, &key.PublicKey
}

// BenchmarkSearchArchiveFile: one pass over an archive file of 200,000
// records (verified whole), keeping the --limit newest matches: a search
// every tenth record matches, with the largest limit.
func BenchmarkSearchArchiveFile(b *testing.B) {
	const n = 200_000
	path, pub := benchArchive(b, b.TempDir(), n)
	q := Query{Actor: "citizen:rare", Limit: MaxFindLimit}
	b.ResetTimer()
	for b.Loop() {
		best := newBestRecords(q.Limit+1, false)
		if _, err := searchArchiveFile(b.Context(), path, pub, q, best); err != nil {
			b.Fatal(err)
		}
		if got := best.sorted(); len(got) != q.Limit+1 || got[0].Seq != n {
			b.Fatalf("%d records kept, the first %d", len(got), got[0].Seq)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerifyArchiveFile is the verification of the same file alone
// (thiqa audit verify --archive): what BenchmarkSearchArchiveFile adds
// to it is the search.
func BenchmarkVerifyArchiveFile(b *testing.B) {
	const n = 200_000
	path, pub := benchArchive(b, b.TempDir(), n)
	b.ResetTimer()
	for b.Loop() {
		if _, err := readArchiveFile(path, pub); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
