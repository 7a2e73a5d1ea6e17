package signing

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

// revocationStore answers CertificateRevoked only.
type revocationStore struct {
	Store
	revoked bool
	reads   int
}

func (r *revocationStore) CertificateRevoked(context.Context, string) (bool, error) {
	r.reads++
	return r.revoked, nil
}

// A credential found not revoked skips the look-up for revocationRecheck;
// a clock stepped back after that must not stretch the skip, or a
// certificate revoked meanwhile keeps signing until the clock catches up.
func TestRevocationRecheckSurvivesBackwardClockStep(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	st := &revocationStore{}
	s := &Service{store: st, now: func() time.Time { return now }}
	c := &Credential{rec: &CredentialRecord{ID: "c1"}, chain: []*x509.Certificate{{NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(1, 0, 0)}}}
	ctx := context.Background()
	if err := s.usable(ctx, c); err != nil || st.reads != 1 {
		t.Fatalf("first use: %v (reads %d)", err, st.reads)
	}
	if err := s.usable(ctx, c); err != nil || st.reads != 1 {
		t.Fatalf("use within revocationRecheck: %v (reads %d), want the answer reused", err, st.reads)
	}
	// The clock steps back an hour; the certificate is revoked.
	now = now.Add(-time.Hour)
	st.revoked = true
	if err := s.usable(ctx, c); !errors.Is(err, ErrCertificateRevoked) {
		t.Fatalf("use after a backward step and a revocation: %v (reads %d), want revoked", err, st.reads)
	}
}
