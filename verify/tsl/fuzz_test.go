package tsl_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

// FuzzCheck: whatever the bytes, Check returns a verdict (never a panic),
// and a list it passes was signed by the configured signer. Seeds: a list
// built here and the files in testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	fx := newList(f, ecKey(f), nil)
	f.Add(fx.raw)
	f.Add([]byte(`<TrustServiceStatusList xmlns="` + tsl.NSTSL + `"><SchemeInformation><TSLVersionIdentifier>5</TSLVersionIdentifier></SchemeInformation></TrustServiceStatusList>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := tsl.Check(raw, tsl.CheckOptions{Signers: []*x509.Certificate{fx.signer}, At: t0.Add(time.Hour), Limits: tsl.Limits{MaxBytes: 1 << 20}})
		switch r.Indication {
		case report.TotalPassed:
			if r.Signer == nil || !r.Signer.Equal(fx.signer) || r.List == nil {
				t.Fatalf("passed without the configured signer: %+v", r)
			}
		case report.TotalFailed, report.Indeterminate:
			if len(r.Errors) == 0 {
				t.Fatalf("%s without a reason", r.Indication)
			}
		default:
			t.Fatalf("indication %q", r.Indication)
		}
	})
}
