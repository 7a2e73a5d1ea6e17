package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkIssuanceWrites measures the store's part of an issuance
// (look-up, intent, certificate) from 8 goroutines on each dialect.
func BenchmarkIssuanceWrites(b *testing.B) {
	benchIssuanceWrites(b, false)
}

// BenchmarkIssuanceWritesAudited is BenchmarkIssuanceWrites with each
// certificate's certificate.issue record, committed with it.
func BenchmarkIssuanceWritesAudited(b *testing.B) {
	benchIssuanceWrites(b, true)
}

func benchIssuanceWrites(b *testing.B, audited bool) {
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			certs := db.Certificates(nil)
			log := audit.New(db, nil, nil, audit.Options{})
			defer log.Close()
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			type item struct {
				in  ca.Intent
				rec ca.CertificateRecord
			}
			items := make([]item, b.N)
			now := time.Now()
			for i := range items {
				serial := new(big.Int).SetUint64(uint64(i) + 1<<62)
				tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: now, NotAfter: now.Add(time.Hour)}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
				if err != nil {
					b.Fatal(err)
				}
				c, _ := x509.ParseCertificate(der)
				kh := sha256.Sum256(append([]byte{byte(i)}, byte(i>>8), byte(i>>16), byte(i>>24)))
				s := hex.EncodeToString(serial.Bytes())
				items[i] = item{
					in: ca.Intent{Serial: s, CA: "citizen", Profile: "citizen-auth", TBSHash: sha256.Sum256(c.RawTBSCertificate), KeyHash: kh,
						RequestedBy: "bench", NotAfter: c.NotAfter, Created: now},
					rec: ca.CertificateRecord{Serial: s, CA: "citizen", Profile: "citizen-auth", DER: der, KeyHash: kh, RequestedBy: "bench",
						NotBefore: c.NotBefore, NotAfter: c.NotAfter},
				}
			}
			var next atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					it := items[next.Add(1)-1]
					if s, err := certs.FindIssued(ctx, it.in.Profile, it.in.KeyHash, now); err != nil || s != "" {
						b.Error(s, err)
						return
					}
					if err := certs.InsertIntent(ctx, it.in); err != nil {
						b.Error(err)
						return
					}
					var seal audit.Sealer
					if audited {
						var err error
						seal, err = log.Prepare(audit.Entry{Actor: "bench", Action: "certificate.issue", Object: it.rec.Serial, Outcome: audit.OutcomeSuccess,
							Details: map[string]any{"profile": it.rec.Profile, "ca": it.rec.CA, "subject": "CN=bench"}})
						if err != nil {
							b.Error(err)
							return
						}
					}
					if err := certs.InsertCertificate(ctx, it.rec, seal); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
