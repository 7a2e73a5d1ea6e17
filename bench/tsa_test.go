package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// nopRecorder records nothing: the ceiling recording is compared with.
type nopRecorder struct{}

func (nopRecorder) Record(context.Context, timestamp.TokenRecord) error { return nil }

// benchUnit returns an in-process P-256 unit key and its certificate
// (critical timeStamping EKU) under a throwaway CA.
func benchUnit(b testing.TB) (*ecdsa.PrivateKey, *x509.Certificate, *x509.Certificate) {
	b.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench TSA CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "bench TSA unit"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert, caCert
}

// BenchmarkTSARecording issues tokens in process (in-memory P-256 key, so
// that the recorder is a larger share than with the HSM) with no recorder
// and with the group-committing audit log on SQLite and PostgreSQL, from
// 8×GOMAXPROCS goroutines. Recording does not cap throughput when the
// audited rates stay well above the HSM-bound rate of POST /tsa.
func BenchmarkTSARecording(b *testing.B) {
	key, cert, caCert := benchUnit(b)
	openLog := func(b *testing.B, cfg store.Config) timestamp.Recorder {
		db, err := store.Open(context.Background(), cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		log := audit.New(db, nil, nil, audit.Options{})
		b.Cleanup(func() { log.Close(); db.Close() })
		rec, err := timestamp.NewAuditRecorder(log, "02")
		if err != nil {
			b.Fatal(err)
		}
		return rec
	}
	recorders := []struct {
		name string
		make func(b *testing.B) timestamp.Recorder
	}{
		{"none", func(*testing.B) timestamp.Recorder { return nopRecorder{} }},
		{"audit-sqlite", func(b *testing.B) timestamp.Recorder {
			return openLog(b, store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(b.TempDir(), "thiqa.db")})
		}},
		{"audit-postgres", func(b *testing.B) timestamp.Recorder {
			return openLog(b, store.Config{Driver: store.DriverPostgres, DSN: testenv.PostgresDSN(b)})
		}},
	}
	var reqs [][]byte
	for i := range 1024 {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		r := tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, HashedMessage: d[:]}, Nonce: big.NewInt(int64(i + 1)), CertReq: true}
		der, err := r.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, der)
	}
	for _, rc := range recorders {
		b.Run(rc.name, func(b *testing.B) {
			serials, _ := timestamp.NewBlockAllocator(memBlocks(), "bench", 0)
			a, err := timestamp.New(timestamp.Config{}, timestamp.Options{
				Certificate: cert, Chain: []*x509.Certificate{caCert}, Signer: key, Serials: serials,
				Recorder: rc.make(b), Clock: timestamp.NewStaticChecker(true),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := a.Issue(context.Background(), reqs[i%len(reqs)], "bench"); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
			// CPU of the whole process (the PostgreSQL server is another
			// process) per token: steadier than rates on a shared machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/token")
		})
	}
}

// memBlocks is an in-memory SerialBlockStore.
func memBlocks() timestamp.SerialBlockStore { return &memCounter{next: 1} }

type memCounter struct {
	mu   sync.Mutex
	next int64
}

func (m *memCounter) ReserveBlock(_ context.Context, _ string, size int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.next
	m.next += size
	return f, nil
}

// benchParallelism × GOMAXPROCS goroutines issue at once in
// BenchmarkTSARecording: a token waits for its group commit, so the batch
// size, and the audited rate, grow with the requests in flight.
const benchParallelism = 32
