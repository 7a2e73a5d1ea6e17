package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/policies"
)

// benchAuthority is a P-384 hierarchy with in-process keys and metrics on a
// private registry, so the benchmark can report the time share per phase.
func benchAuthority(b *testing.B) (*testPKI, *prometheus.Registry) {
	pki := newTestPKI(b, func(t testing.TB) crypto.Signer { return p384(t) })
	reg := prometheus.NewRegistry()
	profiles, _ := policies.DefaultProfiles(policies.DefaultsConfig{})
	var list []*Issuer
	for _, is := range pki.issuers {
		list = append(list, is)
	}
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: profiles, Store: pki.store, Auditor: pki.audit, Metrics: reg})
	if err != nil {
		b.Fatal(err)
	}
	pki.authority = a
	return pki, reg
}

// csrs prepares n P-256 CSRs in advance (the subject's work, not the CA's).
func csrs(b *testing.B, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = newCSR(b, k)
	}
	return out
}

// rawP384Rate measures in-process P-384 signatures per second right now, the
// ceiling the issuance rate is compared with (the machine is shared and noisy).
func rawP384Rate(b *testing.B) float64 {
	k := p384(b)
	digest := make([]byte, 48)
	const n = 200
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := k.Sign(rand.Reader, digest, crypto.SHA384); err != nil {
			b.Fatal(err)
		}
	}
	return n / time.Since(start).Seconds()
}

func reportPhases(b *testing.B, reg *prometheus.Registry, elapsed time.Duration, raw float64) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	sums := map[string]float64{}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "thiqa_ca_issue_phase_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sums[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleSum()
			total += m.GetHistogram().GetSampleSum()
		}
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "issues/s")
	b.ReportMetric(raw, "raw-p384-signs/s")
	b.ReportMetric(rate/raw, "x-raw")
	if total > 0 {
		for _, ph := range []string{"lint", "sign", "validate", "store"} {
			b.ReportMetric(100*sums[ph]/total, ph+"-%")
		}
	}
}

// BenchmarkIssue measures one goroutine issuing citizen-signing
// certificates from prepared P-256 CSRs with a P-384 in-process CA key,
// lint included; lint-% and sign-% are the shares of the instrumented time.
func BenchmarkIssue(b *testing.B) {
	pki, reg := benchAuthority(b)
	reqs := csrs(b, b.N)
	sub := subjectFor(policies.ProfileCitizenSigning)
	ctx := context.Background()
	raw := rawP384Rate(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := pki.authority.Issue(ctx, Request{Profile: policies.ProfileCitizenSigning, Subject: sub, CSR: reqs[i]}); err != nil {
			b.Fatal(err)
		}
	}
	reportPhases(b, reg, time.Since(start), raw)
}

// BenchmarkIssueParallel is BenchmarkIssue with GOMAXPROCS goroutines.
func BenchmarkIssueParallel(b *testing.B) {
	pki, reg := benchAuthority(b)
	reqs := csrs(b, b.N)
	sub := subjectFor(policies.ProfileCitizenSigning)
	var next atomic.Int64
	raw := rawP384Rate(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := pki.authority.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning, Subject: sub, CSR: reqs[i]}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportPhases(b, reg, time.Since(start), raw)
}
