package crl

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// recordedEntry is a revocation and when it was recorded.
type recordedEntry struct {
	RevokedEntry
	recorded time.Time
}

// memRecent is an in-memory RevokedSource and DeltaSource for one partition.
type memRecent struct {
	mu      sync.Mutex
	entries []recordedEntry
}

func (m *memRecent) add(serial int64, at time.Time, reason int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, recordedEntry{RevokedEntry{Serial: big.NewInt(serial), RevokedAt: at, Reason: reason}, at})
}

func (m *memRecent) RevokedCertificates(_ context.Context, _ string, _ int, fn func(RevokedEntry) error) error {
	return m.RevokedSince(context.Background(), "", 0, time.Time{}, fn)
}

func (m *memRecent) RevokedSince(_ context.Context, _ string, _ int, since time.Time, fn func(RevokedEntry) error) error {
	m.mu.Lock()
	es := append([]recordedEntry(nil), m.entries...)
	m.mu.Unlock()
	for _, e := range es {
		if !e.recorded.Before(since) {
			if err := fn(e.RevokedEntry); err != nil {
				return err
			}
		}
	}
	return nil
}

func deltaSettings(t *testing.T) Settings {
	t.Helper()
	s, err := Config{Validity: 24 * time.Hour, RegenerateEvery: time.Hour, BaseURL: "http://pki.thiqa.test", Deltas: true}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDeltaCRLs: the complete CRL names its delta (freshestCRL); the delta
// has a critical deltaCRLIndicator naming the complete CRL's number, the
// same critical IDP and a higher number, and lists only what was revoked
// since. openssl verify -use_deltas finds a certificate revoked after the
// complete CRL on the delta, and without the delta does not.
func TestDeltaCRLs(t *testing.T) {
	h := newHierarchy(t)
	set := deltaSettings(t)
	src := &memRecent{}
	now := time.Now().Truncate(time.Second)
	src.add(0x1001, now.Add(-time.Hour), ReasonSuperseded)
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, src)
	if err != nil {
		t.Fatal(err)
	}
	base, err := g.Generate(context.Background(), 0, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	src.add(0x2002, now.Add(-time.Second), ReasonKeyCompromise)
	delta, err := g.GenerateDelta(context.Background(), base, now)
	if err != nil {
		t.Fatal(err)
	}
	if delta.Name != "citizen-delta.crl" || delta.Entries != 1 || delta.BaseNumber.Cmp(base.Number) != 0 || delta.Number.Cmp(base.Number) <= 0 {
		t.Fatalf("delta %+v (base number %v)", delta, base.Number)
	}
	dir := t.TempDir()
	baseText := runOpenSSL(t, "crl", "-inform", "DER", "-in", writeFile(t, dir, "citizen.crl", base.DER), "-noout", "-text")
	deltaText := runOpenSSL(t, "crl", "-inform", "DER", "-in", writeFile(t, dir, "citizen-delta.crl", delta.DER), "-noout", "-text")
	for _, want := range []string{"X509v3 Freshest CRL", "URI:http://pki.thiqa.test/crl/citizen-delta.crl", "X509v3 Issuing Distribution Point: critical"} {
		if !strings.Contains(baseText, want) {
			t.Errorf("complete CRL lacks %q:\n%s", want, baseText)
		}
	}
	for _, want := range []string{"X509v3 Delta CRL Indicator: critical", "X509v3 Issuing Distribution Point: critical",
		"URI:http://pki.thiqa.test/crl/citizen.crl", "2002"} {
		if !strings.Contains(deltaText, want) {
			t.Errorf("delta CRL lacks %q:\n%s", want, deltaText)
		}
	}
	if strings.Contains(deltaText, "Freshest CRL") || strings.Contains(deltaText, "1001") {
		t.Errorf("the delta names a delta, or lists an old revocation:\n%s", deltaText)
	}
	if rl, err := x509.ParseRevocationList(delta.DER); err != nil || rl.CheckSignatureFrom(h.ca) != nil {
		t.Fatalf("delta does not parse or verify: %v", err)
	}
	chain := writePEM(t, dir, "chain.pem", "CERTIFICATE", h.root.Raw, h.ca.Raw)
	basePEM := writePEM(t, dir, "base.pem", "X509 CRL", base.DER)
	deltaPEM := writePEM(t, dir, "delta.pem", "X509 CRL", delta.DER)
	late := writePEM(t, dir, "late.pem", "CERTIFICATE", h.leaf(t, big.NewInt(0x2002), URL(set.BaseURL, "citizen", 0)).Raw)
	if out := runOpenSSL(t, "verify", "-crl_check", "-use_deltas", "-CAfile", chain, "-CRLfile", basePEM, "-CRLfile", deltaPEM, late); !strings.Contains(out, "certificate revoked") {
		t.Fatalf("with the delta: %s", out)
	}
	if out := runOpenSSL(t, "verify", "-crl_check", "-CAfile", chain, "-CRLfile", basePEM, late); !strings.Contains(out, late+": OK") {
		t.Fatalf("complete CRL alone: %s", out)
	}
	// A delta needs a complete CRL as base, and a source of recent revocations.
	if _, err := g.GenerateDelta(context.Background(), delta, now); err == nil {
		t.Error("a delta relative to a delta")
	}
	if _, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, &allPartitions{}); !errors.Is(err, ErrConfig) {
		t.Errorf("deltas without a DeltaSource: %v", err)
	}
}

// TestPublisherDeltas: with deltas on, a revocation regenerates the delta
// (seconds later) and leaves the complete CRL a relying party holds as it
// is; the schedule regenerates both.
func TestPublisherDeltas(t *testing.T) {
	h := newHierarchy(t)
	set := deltaSettings(t)
	src := &memRecent{}
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.PublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	base, _ := p.Latest("citizen.crl")
	first, _ := p.Latest("citizen-delta.crl")
	if base == nil || first == nil || first.Entries != 0 || first.BaseNumber.Cmp(base.Number) != 0 {
		t.Fatalf("published %+v %+v", base, first)
	}
	src.add(0x3003, time.Now().Add(-time.Second), ReasonKeyCompromise)
	if err := p.PublishDeltas(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	still, _ := p.Latest("citizen.crl")
	next, _ := p.Latest("citizen-delta.crl")
	if still.Number.Cmp(base.Number) != 0 || next.Entries != 1 || next.Number.Cmp(first.Number) <= 0 || next.BaseNumber.Cmp(base.Number) != 0 {
		t.Fatalf("after a revocation: complete %v (was %v), delta %+v", still.Number, base.Number, next)
	}
	if err := p.PublishCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	if nb, _ := p.Latest("citizen.crl"); nb.Number.Cmp(base.Number) <= 0 || nb.Entries != 1 {
		t.Fatalf("scheduled complete CRL %+v", nb)
	}
}
