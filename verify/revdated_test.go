package verify

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/path"
)

// TestCRLReadBeforeValidationTimeDatesLaterEntries: a CRL issued before
// the validation time and no longer current at it, but fresh because it
// was issued after the proven signing time, is read at its nextUpdate;
// an entry it lists dated after that and before the validation time
// still counts (it used to be taken as dated after the time read: the
// signer the CRL itself shows revoked or on hold was good).
func TestCRLReadBeforeValidationTimeDatesLaterEntries(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: now})
	chain := []*x509.Certificate{p.root, p.leaf}
	for _, c := range []struct {
		name   string
		reason int
		want   func(*path.Error) bool
	}{
		{"revoked", 1, func(e *path.Error) bool { return e != nil && e.Sub == path.Revoked }},
		{"on hold", 6, func(e *path.Error) bool { return e != nil && e.Suspended() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			der := holdCRLValid(t, p, 3, now.Add(-50*time.Minute), now.Add(-40*time.Minute),
				x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-30 * time.Minute), ReasonCode: c.reason})
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			rd := &revocationData{crls: []*x509.RevocationList{crl}, memo: &ocspMemo{}, sigTime: now.Add(-time.Hour)}
			if err := rd.CheckRevocation(chain, 1, now, v); !c.want(err) {
				t.Fatalf("want %s, got %v", c.name, err)
			}
		})
	}
}
