package signer

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/testenv"
)

// hsmSigner generates a key on a fresh SoftHSM token and certifies it with
// the test CA.
func hsmSigner(t testing.TB, p *testPKI, kt hsm.KeyType) (*hsm.Token, string, crypto.Signer, []*x509.Certificate) {
	t.Helper()
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("sg")
	if err := hsm.InitToken(module, label, "so-pin-1234", "user-pin-5678"); err != nil {
		t.Fatal(err)
	}
	tok, err := hsm.Open(context.Background(), hsm.Config{ModulePath: module, TokenLabel: label, PIN: "user-pin-5678"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	keyLabel := "seal-" + kt.String()
	key, err := tok.GenerateKey(context.Background(), keyLabel, kt)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	leaf, err := create(&x509.Certificate{
		SerialNumber: p.next(), Subject: pkix.Name{CommonName: "Test Seal " + kt.String(), Organization: []string{"Test Agency"}, Country: []string{"OM"}},
		NotBefore: now, NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}, p.ca, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tok, keyLabel, key, []*x509.Certificate{leaf, p.ca}
}

// TestSignWithSoftHSM signs with keys on a SoftHSM token at B-T and B-LTA.
func TestSignWithSoftHSM(t *testing.T) {
	p := getPKI(t)
	for _, kt := range []hsm.KeyType{hsm.ECP256, hsm.RSA2048} {
		t.Run(kt.String(), func(t *testing.T) {
			_, _, key, chain := hsmSigner(t, p, kt)
			for _, level := range []Level{LevelBT, LevelBLTA} {
				o := Options{Level: level, Signer: key, Chain: chain, Name: "Test Agency", Validation: p.validation()}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				out, err := SignBytes(ctx, testPDF(1, 0), o)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				qpdfCheck(t, out)
				assertOpenSSL(t, p, out, true)
				assertPdfsig(t, p, out, 1)
			}
		})
	}
}

// BenchmarkSignHSM signs a ~100 KB PDF with a SoftHSM P-256 key and
// reports signatures per second next to the raw PKCS#11 rate (one goroutine).
func BenchmarkSignHSM(b *testing.B) {
	p := getPKI(b)
	tok, label, key, chain := hsmSigner(b, p, hsm.ECP256)
	in := testPDF(3, 100<<10)
	raw, err := hsm.RawSignRate(context.Background(), tok, label, 1, 500*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	for _, level := range []Level{LevelBB, LevelBT} {
		b.Run(level.String(), func(b *testing.B) {
			o := Options{Level: level, Signer: key, Chain: chain, Validation: p.validation()}
			for b.Loop() {
				if _, err := SignBytes(context.Background(), in, o); err != nil {
					b.Fatal(err)
				}
			}
			rate := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "sig/s")
			b.ReportMetric(raw, "raw-hsm-sig/s")
			b.ReportMetric(rate/raw, "ratio")
		})
	}
}
