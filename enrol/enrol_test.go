package enrol_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

func citizen() map[string]string {
	return map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
}

// TestEnrolmentRecords: the profile and subject are checked when the
// enrolment is made, the secret is derived (the same from the same token
// key, checked in constant time, never stored), a wrong secret is
// refused, validity is bounded, every outcome audited; a key whose
// signatures are not deterministic cannot derive secrets.
func TestEnrolmentRecords(t *testing.T) {
	d := storetest.Dialects()[0]
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	cfg := enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: key,
		Profiles: []string{policies.ProfileCitizenAuth}}
	svc, err := enrol.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c, err := svc.Create(ctx, "officer-1", "citizen-auth", citizen(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Reference) != 16 || len(c.Secret) != 26 || time.Until(c.Expires) < 6*24*time.Hour {
		t.Fatalf("created %+v", c)
	}
	again, _ := enrol.New(cfg)
	if again.Secret(c.Reference) != c.Secret {
		t.Fatal("the secret is not derived from the reference and the key")
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	cfg2 := cfg
	cfg2.SecretKey = other
	moved, _ := enrol.New(cfg2)
	if _, err := moved.Lookup(ctx, c.Reference); err == nil {
		t.Fatal("another token key accepted the enrolment")
	}
	if _, err := svc.CheckSecret(ctx, c.Reference, c.Secret); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CheckSecret(ctx, c.Reference, strings.ToLower(c.Secret)); err != nil {
		t.Fatalf("the secret is case-insensitive base32: %v", err)
	}
	if _, err := svc.CheckSecret(ctx, c.Reference, "AAAAAAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, enrol.ErrBadSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := svc.CheckSecret(ctx, "nope", c.Secret); !errors.Is(err, enrol.ErrNotFound) {
		t.Fatalf("unknown reference: %v", err)
	}
	for name, try := range map[string]func() error{
		"bad subject": func() error {
			_, err := svc.Create(ctx, "o", "citizen-auth", map[string]string{"commonName": "x"}, 0)
			return err
		},
		"closed profile": func() error { _, err := svc.Create(ctx, "o", "tsa-unit", citizen(), 0); return err },
		"too long":       func() error { _, err := svc.Create(ctx, "o", "citizen-auth", citizen(), 365*24*time.Hour); return err },
		"too short":      func() error { _, err := svc.Create(ctx, "o", "citizen-auth", citizen(), time.Second); return err },
		"unknown profile": func() error {
			cfg3 := cfg
			cfg3.Profiles = nil
			s, _ := enrol.New(cfg3)
			_, err := s.Create(ctx, "o", "nope", citizen(), 0)
			return err
		},
	} {
		if err := try(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := storetest.AuditCount(t, db, enrol.ActionCreate, "success"); n != 1 {
		t.Fatalf("%d successful creations audited", n)
	}
	if n := storetest.AuditCount(t, db, enrol.ActionCreate, "refused"); n != 5 {
		t.Fatalf("%d refused creations audited, want 5", n)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg.SecretKey = ec
	if _, err := enrol.New(cfg); err == nil {
		t.Fatal("an ECDSA key (randomised signatures) was accepted to derive secrets")
	}
}

// TestHolderProfiles: CMP and EST enrol the key holders' certificates of
// citizens and agencies, in the order a refusal lists them, and no
// service certificate (TSA unit, OCSP responder).
func TestHolderProfiles(t *testing.T) {
	got := enrol.HolderProfiles()
	if strings.Join(got, ", ") != "citizen-auth, citizen-signing, organisation-seal" {
		t.Fatalf("HolderProfiles = %v", got)
	}
	set, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range got {
		if _, err := set.Get(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if slices.Contains(got, policies.ProfileTSAUnit) || slices.Contains(got, policies.ProfileOCSPResponder) {
		t.Fatal("a service certificate is open to enrolment")
	}
}
