package signer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// BenchmarkSign signs a ~100 KB PDF with an in-process P-256 key and
// reports signatures per second, with the raw ECDSA sign rate of the same
// run for comparison (B-T includes the in-process TSA's own signature).
func BenchmarkSign(b *testing.B) {
	p := getPKI(b)
	in := testPDF(3, 100<<10)
	for _, level := range []Level{LevelBB, LevelBT, LevelBLT} {
		b.Run(level.String(), func(b *testing.B) {
			o := signOpts(p, false, level)
			o.Validation.Cache = NewCache() // as the signing service runs it
			var out bytes.Buffer
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				if _, err := Sign(context.Background(), Bytes(in), int64(len(in)), &out, o); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
		})
	}
	b.Run("raw-P256", func(b *testing.B) {
		d := sha256.Sum256([]byte("x"))
		k := p.ecKey.(*ecdsa.PrivateKey)
		for b.Loop() {
			if _, err := k.Sign(rand.Reader, d[:], nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
	})
}
