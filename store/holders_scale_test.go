package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// benchCertDER makes a certificate of about a citizen certificate's size
// (1.1 kB: policies, distribution points, a padding extension) naming
// civil in its serialNumber.
func benchCertDER(tb testing.TB, civil string) ([]byte, string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	subject := pkix.Name{SerialNumber: "IDCOM-" + civil, CommonName: "Citizen " + civil, Country: []string{"OM"}}
	pad, _ := asn1.Marshal(make([]byte, 420))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: subject, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		CRLDistributionPoints: []string{"http://pki.example.com/crl/citizen-3.crl"},
		OCSPServer:            []string{"http://pki.example.com/ocsp"},
		IssuingCertificateURL: []string{"http://pki.example.com/ca/citizen.cer"},
		PolicyIdentifiers:     []asn1.ObjectIdentifier{{0, 4, 0, 194112, 1, 2}, {2, 16, 512, 1, 1, 1}},
		ExtraExtensions:       []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: pad}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	return der, subject.String()
}

// BenchmarkHoldingsAtScale times a citizen's holdings (what every view of
// GET /api/v1/me/activity and /my/activity reads first) among
// THIQA_BENCH_CERT_ROWS certificates (default 1,000,000) of 700,000
// citizens: Holdings through certificates_holder, against the statement
// it ran before migration 0020 (store.Activity.PreHolderHoldings, a LIKE over every subject),
// p50 and p99; then the same certificates as an upgrade finds them
// (holder_civil NULL): Holdings while nothing is filled, the backfill's
// time, and Holdings after it. Run by hand:
//
//	scripts/testenv.sh go test -v -count=1 -run '^$' -bench BenchmarkHoldingsAtScale -benchtime 1x -timeout 1h ./store/
func BenchmarkHoldingsAtScale(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_CERT_ROWS", 1_000_000)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			const civil = "99999999"
			otherDER, otherSubject := benchCertDER(b, "10000001")
			mineDER, mineSubject := benchCertDER(b, civil)
			b.Logf("%s: certificates of %d bytes", d.Name, len(otherDER))
			t0 := time.Now()
			r := mrand.New(mrand.NewPCG(1, 2))
			base := time.Now().Add(-24 * time.Hour)
			for start := 0; start < rows; start += 500 {
				end := min(start+500, rows)
				var q strings.Builder
				var args []any
				q.WriteString(`INSERT INTO certificates (serial, ca, profile, state, tbs_hash, key_hash, requested_by, not_after, created_at,
					der, subject, not_before, issued_at, holder_civil) VALUES `)
				for i := start; i < end; i++ {
					if i > start {
						q.WriteString(",")
					}
					key := make([]byte, 8)
					binary.BigEndian.PutUint64(key, uint64(i))
					der, subject, holder := otherDER, otherSubject, fmt.Sprintf("%08d", 10_000_000+r.IntN(700_000))
					if i%(rows/3) == rows/3-1 { // three of the bench citizen's, spread over the table
						der, subject, holder = mineDER, mineSubject, civil
					} else {
						subject = strings.Replace(subject, "10000001", holder, 2)
					}
					at := base.Add(time.Duration(i) * time.Millisecond)
					q.WriteString("(?, 'citizen', 'citizen-signing', 'issued', ?, ?, 'bench', ?, ?, ?, ?, ?, ?, ?)")
					args = append(args, fmt.Sprintf("0b%010x", i), key, key, at.Add(365*24*time.Hour).Unix(), at.UnixNano(),
						der, subject, at.Unix(), at.UnixNano(), holder)
				}
				if err := db.ExecTx(ctx, q.String(), args...); err != nil {
					b.Fatal(err)
				}
			}
			b.Logf("%s: filled %d certificates in %s", d.Name, rows, time.Since(t0).Round(time.Second))
			analyse := func() {
				if d.Name == store.DriverPostgres {
					if err := db.ExecTx(ctx, "ANALYZE certificates"); err != nil {
						b.Fatal(err)
					}
				}
			}
			analyse()
			a := db.Activity()
			holdings := func(civil string) func(int) error {
				return func(int) error {
					got, err := a.Holdings(ctx, civil, 100)
					if err == nil && civil == "99999999" && len(got) != 3 {
						err = fmt.Errorf("%d holdings, want 3", len(got))
					}
					return err
				}
			}
			before := func(civil string) func(int) error {
				return func(int) error {
					got, err := db.Activity().PreHolderHoldings(ctx, civil, 100)
					n := len(got)
					if err == nil && civil == "99999999" && n != 3 {
						err = fmt.Errorf("%d holdings before 0020, want 3", n)
					}
					return err
				}
			}
			if auth.CivilNumber("IDCOM-"+civil) != civil {
				b.Fatal("the bench civil number is not one")
			}
			for b.Loop() {
				report := func(what string, k int, fn func(int) error) {
					p50, p99 := latencies(b, k, fn)
					b.Logf("%s: %s: p50 %s, p99 %s (%d reads)", d.Name, what, p50.Round(time.Microsecond), p99.Round(time.Microsecond), k)
				}
				report("holdings by certificates_holder, 3 certificates", 200, holdings(civil))
				report("holdings by certificates_holder, a citizen with none", 200, holdings("00000001"))
				report("before 0020 (LIKE over every subject), 3 certificates", 20, before(civil))
				report("before 0020 (LIKE over every subject), a citizen with none", 20, before("00000001"))

				// As an upgrade from a release before 0020 finds them.
				t1 := time.Now()
				if err := db.ExecTx(ctx, "UPDATE certificates SET holder_civil = NULL"); err != nil {
					b.Fatal(err)
				}
				analyse()
				b.Logf("%s: holder_civil set to NULL in %s", d.Name, time.Since(t1).Round(time.Second))
				report("holdings before the backfill (all NULL), 3 certificates", 20, holdings(civil))
				t2 := time.Now()
				n, err := db.FillHolders(ctx)
				if err != nil || n != rows {
					b.Fatalf("backfill: %d of %d, %v", n, rows, err)
				}
				b.Logf("%s: backfill of %d certificates: %s", d.Name, n, time.Since(t2).Round(time.Second))
				report("holdings after the backfill, 3 certificates", 200, holdings(civil))
			}
		})
	}
}
