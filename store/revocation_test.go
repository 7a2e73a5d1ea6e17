package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// seedCert inserts a certificate row directly, as the CA would leave it.
func seedCert(t testing.TB, db *store.DB, serial *big.Int, issuer, state string, partition int) {
	t.Helper()
	key := sha256.Sum256(serial.Bytes())
	err := db.ExecTx(context.Background(), `INSERT INTO certificates
	(serial, ca, profile, state, tbs_hash, key_hash, requested_by, not_after, crl_partition, created_at)
	VALUES (?, ?, 'citizen-signing', ?, ?, ?, 'test', ?, ?, ?)`,
		store.SerialKey(serial), issuer, state, key[:], key[:], time.Now().Add(time.Hour).Unix(), partition, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
}

func serialN(i int64) *big.Int {
	return new(big.Int).Add(big.NewInt(i), new(big.Int).Lsh(big.NewInt(1), 70))
}

func TestRevocationStore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			rs := db.Revocations()
			good, other, intent := serialN(1), serialN(2), serialN(3)
			seedCert(t, db, good, "citizen", "issued", 0)
			seedCert(t, db, other, "organisation", "issued", 0)
			seedCert(t, db, intent, "citizen", "intent", 0)

			st := func(issuer string, s *big.Int) ocsp.Status {
				t.Helper()
				v, err := rs.Status(ctx, issuer, s)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			for _, c := range []struct {
				issuer string
				serial *big.Int
				want   ocsp.State
			}{
				{"citizen", good, ocsp.Good},
				{"citizen", other, ocsp.Unknown},  // another CA's certificate
				{"citizen", intent, ocsp.Unknown}, // never signed
				{"citizen", serialN(99), ocsp.Unknown},
				{"organisation", other, ocsp.Good},
				{"citizen", big.NewInt(0), ocsp.Unknown},
			} {
				if got := st(c.issuer, c.serial).State; got != c.want {
					t.Errorf("%s %x: %s, want %s", c.issuer, c.serial, got, c.want)
				}
			}

			before := time.Now().Truncate(time.Second)
			rv, err := rs.Revoke(ctx, strings.ToUpper(store.SerialKey(good)), crl.ReasonKeyCompromise, "officer-1", time.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rv.CA != "citizen" || rv.Serial != store.SerialKey(good) || rv.RevokedAt.Before(before) || rv.RevokedAt.Nanosecond() != 0 {
				t.Fatalf("revocation %+v", rv)
			}
			s := st("citizen", good)
			if s.State != ocsp.Revoked || !s.RevokedAt.Equal(rv.RevokedAt) || s.Reason != crl.ReasonKeyCompromise {
				t.Fatalf("after revocation: %+v", s)
			}
			if got := st("organisation", good).State; got != ocsp.Unknown {
				t.Fatalf("revoked citizen certificate asked of organisation CA: %s", got)
			}

			// Refusals change nothing; they name the revocation service's
			// reasons too (revocation.Store).
			for _, c := range []struct {
				serial     string
				reason     int
				want, also error
			}{
				{store.SerialKey(good), crl.ReasonSuperseded, store.ErrConflict, revocation.ErrAlreadyRevoked},
				{store.SerialKey(serialN(99)), crl.ReasonSuperseded, store.ErrNotFound, revocation.ErrNotFound},
				{store.SerialKey(intent), crl.ReasonSuperseded, store.ErrNotFound, revocation.ErrNotFound},
				{"zz", crl.ReasonSuperseded, store.ErrNotFound, revocation.ErrNotFound},
				{store.SerialKey(other), crl.ReasonCertificateHold, store.ErrBadReason, store.ErrBadReason},
				{store.SerialKey(other), 7, store.ErrBadReason, store.ErrBadReason},
			} {
				if _, err := rs.Revoke(ctx, c.serial, c.reason, "officer-2", time.Now(), nil); !errors.Is(err, c.want) || !errors.Is(err, c.also) {
					t.Errorf("revoke %s reason %d: %v, want %v and %v", c.serial, c.reason, err, c.want, c.also)
				}
			}
			if n, err := db.QueryInt64(ctx, `SELECT count(*) FROM revocations`); err != nil || n != 1 {
				t.Fatalf("revocations after refusals: %d %v", n, err)
			}
			again, err := rs.Revocation(ctx, store.SerialKey(good))
			if err != nil || again.RevokedBy != "officer-1" || again.Reason != crl.ReasonKeyCompromise {
				t.Fatalf("revocation kept: %+v %v", again, err)
			}
			if _, err := rs.Revocation(ctx, store.SerialKey(other)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("revocation of a good certificate: %v", err)
			}

			var entries []crl.RevokedEntry
			if err := rs.RevokedCertificates(ctx, "citizen", 0, func(e crl.RevokedEntry) error {
				entries = append(entries, e)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Serial.Cmp(good) != 0 || entries[0].Reason != crl.ReasonKeyCompromise {
				t.Fatalf("CRL entries %+v", entries)
			}

			all := map[string]ocsp.State{}
			if err := rs.AllStatuses(ctx, "citizen", func(s *big.Int, st ocsp.Status) error {
				all[store.SerialKey(s)] = st.State
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 || all[store.SerialKey(good)] != ocsp.Revoked {
				t.Fatalf("all statuses %v", all)
			}

			recent, err := rs.RecordedSince(ctx, before.Add(-time.Second), 10)
			if err != nil || len(recent) != 1 || recent[0].Serial != store.SerialKey(good) {
				t.Fatalf("recorded since: %+v %v", recent, err)
			}
			if recent, err := rs.RecordedSince(ctx, time.Now().Add(time.Second), 10); err != nil || len(recent) != 0 {
				t.Fatalf("recorded since the future: %+v %v", recent, err)
			}
		})
	}
}

func TestConcurrentRevocationIsFinal(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			cfg := d.NewConfig(t)
			a, b := storetest.Open(t, cfg), storetest.Open(t, cfg)
			s := serialN(7)
			seedCert(t, a, s, "citizen", "issued", 0)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var ok, conflict int
			for i := range 8 {
				db := a
				if i%2 == 1 {
					db = b
				}
				wg.Go(func() {
					_, err := db.Revocations().Revoke(ctx, store.SerialKey(s), crl.ReasonSuperseded, fmt.Sprint("officer-", i), time.Now(), nil)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, store.ErrConflict):
						conflict++
					default:
						t.Errorf("revoke: %v", err)
					}
				})
			}
			wg.Wait()
			if ok != 1 || conflict != 7 {
				t.Fatalf("%d revocations succeeded, %d conflicts", ok, conflict)
			}
		})
	}
}

func TestCRLNumbersStrictlyIncrease(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			cfg := d.NewConfig(t)
			a, b := storetest.Open(t, cfg), storetest.Open(t, cfg)
			const per = 25
			results := make([][]int64, 4)
			var wg sync.WaitGroup
			for w := range results {
				db := a
				if w%2 == 1 {
					db = b // a second instance on the same database
				}
				wg.Go(func() {
					for range per {
						n, err := db.Revocations().NextCRLNumber(ctx, "citizen")
						if err != nil {
							t.Error(err)
							return
						}
						results[w] = append(results[w], n.Int64())
					}
				})
			}
			wg.Wait()
			var all []int64
			for _, r := range results {
				if !slices.IsSorted(r) {
					t.Fatalf("one caller saw numbers go backwards: %v", r)
				}
				all = append(all, r...)
			}
			slices.Sort(all)
			for i, n := range all {
				if n != int64(i+1) {
					t.Fatalf("numbers handed out: %v", all)
				}
			}
			// Another issuer counts on its own; a reopened store continues.
			if n, err := a.Revocations().NextCRLNumber(ctx, "tsa"); err != nil || n.Int64() != 1 {
				t.Fatalf("tsa's first number: %v %v", n, err)
			}
			a.Close()
			c := storetest.Open(t, cfg)
			if n, err := c.Revocations().NextCRLNumber(ctx, "citizen"); err != nil || n.Int64() != int64(len(all)+1) {
				t.Fatalf("after reopening: %v %v", n, err)
			}
			// LastCRLNumber: the last handed out, 0 for an issuer without one.
			if n, err := c.Revocations().LastCRLNumber(ctx, "citizen"); err != nil || n.Int64() != int64(len(all)+1) {
				t.Fatalf("last citizen number: %v %v", n, err)
			}
			if n, err := c.Revocations().LastCRLNumber(ctx, "root"); err != nil || n.Sign() != 0 {
				t.Fatalf("last root number, none handed out: %v %v", n, err)
			}
		})
	}
}

// testCA is an in-process CA certificate and key for CRL generation.
func testCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Citizen CA", Country: []string{"OM"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * 365 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: []byte{1, 2, 3, 4},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestCRLFromStore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			rs := db.Revocations()
			const parts = 4
			revoked := map[int]int{}
			for i := range int64(40) {
				s := serialN(100 + i)
				p := crl.Partition(s, parts)
				seedCert(t, db, s, "citizen", "issued", p)
				if i%3 == 0 {
					if _, err := rs.Revoke(ctx, store.SerialKey(s), int(i%2), "officer", time.Now().Add(-time.Minute), nil); err != nil {
						t.Fatal(err)
					}
					revoked[p]++
				}
			}
			// A certificate issued before the CA had partitions names the
			// whole-CA CRL, partition 0, which stays published.
			legacy := serialN(99)
			seedCert(t, db, legacy, "citizen", "issued", 0)
			if _, err := rs.Revoke(ctx, store.SerialKey(legacy), crl.ReasonSuperseded, "officer", time.Now().Add(-time.Minute), nil); err != nil {
				t.Fatal(err)
			}
			revoked[0]++
			set, err := crl.Config{BaseURL: "http://pki.example.com", Partitions: parts}.Validate()
			if err != nil {
				t.Fatal(err)
			}
			cert, key := testCA(t)
			g, err := crl.NewGenerator(set, crl.Issuer{Name: "citizen", Cert: cert, Signer: key}, rs, rs)
			if err != nil {
				t.Fatal(err)
			}
			var last *big.Int
			for _, p := range g.PartitionNumbers() {
				c, err := g.Generate(ctx, p, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				rl, err := x509.ParseRevocationList(c.DER)
				if err != nil {
					t.Fatal(err)
				}
				if err := rl.CheckSignatureFrom(cert); err != nil {
					t.Fatal(err)
				}
				if len(rl.RevokedCertificateEntries) != revoked[p] || c.Entries != revoked[p] {
					t.Fatalf("partition %d: %d entries, want %d", p, len(rl.RevokedCertificateEntries), revoked[p])
				}
				for _, e := range rl.RevokedCertificateEntries {
					if p != 0 && crl.Partition(e.SerialNumber, parts) != p {
						t.Fatalf("serial %x on partition %d", e.SerialNumber, p)
					}
				}
				if last != nil && rl.Number.Cmp(last) <= 0 {
					t.Fatalf("CRL number %v after %v", rl.Number, last)
				}
				last = rl.Number
			}
		})
	}
}

// BenchmarkStatusAtScale loads THIQA_BENCH_ROWS certificates (default
// 100,000; 10,000,000 for the documented figures) of which
// THIQA_BENCH_REVOKED are revoked (default 1 %), then measures OCSP status
// lookups (p50/p99 over 20,000 random serials, half of them never issued)
// and the time to generate one CRL of every revoked entry. Run by hand:
//
//	THIQA_BENCH_ROWS=10000000 THIQA_BENCH_REVOKED=1000000 scripts/testenv.sh \
//	  go test -run '^$' -bench BenchmarkStatusAtScale -benchtime 1x -timeout 2h ./store/
func BenchmarkStatusAtScale(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_ROWS", 100_000)
	revoked := envInt(b, "THIQA_BENCH_REVOKED", rows/100)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			t0 := time.Now()
			loadRows(b, db, rows, revoked)
			b.Logf("%s: loaded %d certificates (%d revoked) in %s", d.Name, rows, revoked, time.Since(t0).Round(time.Second))
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE"); err != nil {
					b.Fatal(err)
				}
			}
			rs := db.Revocations()
			for b.Loop() {
				const lookups = 20_000
				lat := make([]time.Duration, 0, lookups)
				states := map[ocsp.State]int{}
				for range lookups {
					i := mrand.Int64N(int64(rows) * 2) // half never issued
					t := time.Now()
					st, err := rs.Status(ctx, "citizen", serialN(i))
					lat = append(lat, time.Since(t))
					if err != nil {
						b.Fatal(err)
					}
					states[st.State]++
				}
				slices.Sort(lat)
				p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
				b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
				b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
				b.Logf("%s: status lookup p50 %s p99 %s (good %d, revoked %d, unknown %d)", d.Name, p50, p99,
					states[ocsp.Good], states[ocsp.Revoked], states[ocsp.Unknown])

				set, err := crl.Config{BaseURL: "http://pki.example.com", LintSampleEntries: 1000}.Validate()
				if err != nil {
					b.Fatal(err)
				}
				cert, key := testCA(b)
				g, err := crl.NewGenerator(set, crl.Issuer{Name: "citizen", Cert: cert, Signer: key}, rs, rs)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				c, err := g.Generate(ctx, 0, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				el := time.Since(t0)
				b.ReportMetric(el.Seconds(), "crl-s")
				b.Logf("%s: CRL with %d entries (%d bytes) in %s", d.Name, c.Entries, len(c.DER), el.Round(time.Millisecond))
				if c.Entries != revoked {
					b.Fatalf("CRL has %d entries, want %d", c.Entries, revoked)
				}
			}
		})
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q", name, v)
	}
	return n
}

// loadRows inserts rows issued citizen certificates with serialN(0 …
// rows-1) in multi-row INSERTs; every (rows/revoked)-th one is revoked.
func loadRows(b *testing.B, db *store.DB, rows, revoked int) {
	ctx := context.Background()
	const batch = 1000
	every := 0
	if revoked > 0 {
		every = rows / revoked
	}
	now := time.Now()
	nRevoked := 0
	for start := 0; start < rows; start += batch {
		end := min(start+batch, rows)
		var cq, rq strings.Builder
		var cargs, rargs []any
		cq.WriteString(`INSERT INTO certificates (serial, ca, profile, state, tbs_hash, key_hash, requested_by, not_after, crl_partition, created_at) VALUES `)
		rq.WriteString(`INSERT INTO revocations (serial, ca, crl_partition, revoked_at, reason, revoked_by, recorded_at) VALUES `)
		for i := start; i < end; i++ {
			if i > start {
				cq.WriteString(",")
			}
			key := make([]byte, 8)
			binary.BigEndian.PutUint64(key, uint64(i))
			serial := store.SerialKey(serialN(int64(i)))
			cq.WriteString("(?, 'citizen', 'citizen-signing', 'issued', ?, ?, 'bench', ?, 0, ?)")
			cargs = append(cargs, serial, key, key, now.Add(time.Hour).Unix(), now.UnixNano())
			if every > 0 && i%every == 0 && nRevoked < revoked {
				if len(rargs) > 0 {
					rq.WriteString(",")
				}
				rq.WriteString("(?, 'citizen', 0, ?, 1, 'bench', ?)")
				at := now.Add(-time.Hour).Truncate(time.Second).UnixNano()
				rargs = append(rargs, serial, at, at)
				nRevoked++
			}
		}
		err := db.WriteTx(ctx, func(exec func(q string, args ...any) error) error {
			if err := exec(cq.String(), cargs...); err != nil {
				return err
			}
			if len(rargs) > 0 {
				return exec(rq.String(), rargs...)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeltaCRLFromStore: the delta CRL of a partition lists the
// revocations of that partition recorded since shortly before its complete
// CRL (RevokedSince), on SQLite and PostgreSQL.
func TestDeltaCRLFromStore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			rs := db.Revocations()
			const parts = 2
			var early, late, otherPartition *big.Int
			for i := int64(0); early == nil || late == nil || otherPartition == nil; i++ {
				s := serialN(500 + i)
				switch p := crl.Partition(s, parts); {
				case p == 1 && early == nil:
					early = s
				case p == 1 && late == nil:
					late = s
				case p == 2 && otherPartition == nil:
					otherPartition = s
				default:
					continue
				}
				seedCert(t, db, s, "citizen", "issued", crl.Partition(s, parts))
			}
			if _, err := rs.Revoke(ctx, store.SerialKey(early), crl.ReasonSuperseded, "officer", time.Now().Add(-time.Hour), nil); err != nil {
				t.Fatal(err)
			}
			// Recorded an hour ago.
			if err := db.ExecTx(ctx, `UPDATE revocations SET recorded_at = ? WHERE serial = ?`, time.Now().Add(-time.Hour).UnixNano(), store.SerialKey(early)); err != nil {
				t.Fatal(err)
			}
			set, err := crl.Config{BaseURL: "http://pki.example.com", Partitions: parts, Deltas: true}.Validate()
			if err != nil {
				t.Fatal(err)
			}
			cert, key := testCA(t)
			g, err := crl.NewGenerator(set, crl.Issuer{Name: "citizen", Cert: cert, Signer: key}, rs, rs)
			if err != nil {
				t.Fatal(err)
			}
			base, err := g.Generate(ctx, 1, time.Now().Add(-time.Second))
			if err != nil || base.Entries != 1 {
				t.Fatalf("complete CRL: %+v %v", base, err)
			}
			for _, s := range []*big.Int{late, otherPartition} {
				if _, err := rs.Revoke(ctx, store.SerialKey(s), crl.ReasonKeyCompromise, "officer", time.Now().Add(-time.Second), nil); err != nil {
					t.Fatal(err)
				}
			}
			delta, err := g.GenerateDelta(ctx, base, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			rl, err := x509.ParseRevocationList(delta.DER)
			if err != nil || rl.CheckSignatureFrom(cert) != nil {
				t.Fatalf("delta: %v", err)
			}
			if len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].SerialNumber.Cmp(late) != 0 || delta.Name != "citizen-1-delta.crl" {
				t.Fatalf("delta %s lists %d entries", delta.Name, len(rl.RevokedCertificateEntries))
			}
		})
	}
}
