package ca

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// expiringPKI is the test PKI with an authority whose clock reads at,
// registering its metrics on reg.
func expiringPKI(t *testing.T, at func() time.Time, reg prometheus.Registerer) (*testPKI, *Authority) {
	t.Helper()
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	var list []*Issuer
	for _, is := range pki.issuers {
		list = append(list, is)
	}
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: pki.authority.profiles, Store: pki.store,
		Auditor: pki.audit, Now: at, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	return pki, a
}

// TestIssuerExpiring: a CA whose notAfter is closer than a profile's
// validity refuses that profile with an *IssuerExpiringError that names
// the CA, its notAfter and the profile, consumes no serial, audits the
// refusal as the service's failure, and still issues shorter profiles;
// IssuableUntil is exactly the last moment issuance succeeds.
func TestIssuerExpiring(t *testing.T) {
	var now time.Time
	pki, a := expiringPKI(t, func() time.Time { return now }, nil)
	citizen := pki.issuers[policies.IssuerCitizen].Certificate()
	signing, _ := a.profiles.Get(policies.ProfileCitizenSigning)
	now = citizen.NotAfter.Add(-signing.Validity / 2)
	ctx := context.Background()
	req := func() Request {
		return Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"}
	}

	_, err := a.Issue(ctx, req())
	var ee *IssuerExpiringError
	if !errors.As(err, &ee) || !errors.Is(err, ErrIssuerExpiring) {
		t.Fatalf("issue %d days before the CA expires: %v, want an *IssuerExpiringError", int(citizen.NotAfter.Sub(now).Hours()/24), err)
	}
	if ee.CA != "citizen" || ee.Issuer != "citizen" || ee.Generation != 1 || !ee.NotAfter.Equal(citizen.NotAfter) ||
		ee.Profile != policies.ProfileCitizenSigning || ee.Validity != signing.Validity {
		t.Fatalf("error fields %+v", ee)
	}
	for _, want := range []string{"issuing CA citizen", citizen.NotAfter.UTC().Format(time.RFC3339), policies.ProfileCitizenSigning, "thiqa ca rollover --name citizen"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if IsRefusal(err) {
		t.Error("the CA's own end of validity counted as the caller's fault")
	}
	if intents, _ := pki.store.counts(); intents != 0 {
		t.Fatalf("%d serials consumed by a refusal", intents)
	}
	e := pki.audit.last()
	if e.Action != string(policies.ActionIssueCertificate) || e.Outcome != audit.OutcomeFailure || e.Object != "profile:"+policies.ProfileCitizenSigning ||
		!strings.Contains(detail(e, "error"), "rollover") {
		t.Fatalf("audit record %+v", e)
	}
	if err := a.CheckRequest(req()); !errors.Is(err, ErrIssuerExpiring) {
		t.Fatalf("CheckRequest: %v", err)
	}
	// A short profile still fits.
	if _, err := a.Issue(ctx, Request{Profile: policies.ProfileOCSPResponder, Subject: subjectFor(policies.ProfileOCSPResponder),
		PublicKey: p384(t).Public(), KeyGeneratedByService: true, RequestedBy: "thiqa-serve"}); err != nil {
		t.Fatalf("OCSP responder: %v", err)
	}

	until, ok := a.IssuableUntil("citizen", policies.ProfileCitizenSigning)
	if !ok || !until.Equal(citizen.NotAfter.Add(-signing.Validity+time.Second+time.Minute)) || !until.Equal(ee.IssuableUntil) {
		t.Fatalf("IssuableUntil %s %v; error says %s", until, ok, ee.IssuableUntil)
	}
	now = until
	got, err := a.Issue(ctx, req())
	if err != nil {
		t.Fatalf("issue at IssuableUntil: %v", err)
	}
	if !got.Certificate.NotAfter.Equal(citizen.NotAfter) {
		t.Fatalf("the last full-length certificate ends %s, the CA %s", got.Certificate.NotAfter, citizen.NotAfter)
	}
	now = until.Add(time.Second)
	if _, err := a.Issue(ctx, req()); !errors.Is(err, ErrIssuerExpiring) {
		t.Fatalf("issue a second after IssuableUntil: %v", err)
	}
	if _, ok := a.IssuableUntil("citizen", policies.ProfileOrganisationSeal); ok {
		t.Fatal("IssuableUntil for a profile the CA may not issue")
	}
}

// gauges returns the values of the gauges named name by their labels
// (name=value pairs joined with commas, in label order).
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			out[labelKey(m.GetLabel())] = m.GetGauge().GetValue()
		}
	}
	return out
}

func labelKey(ls []*dto.LabelPair) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// TestExpiryMetrics: the root's and every generation's notAfter, and for
// the current generation of each CA and each profile it issues, the last
// moment it can issue a full-length certificate.
func TestExpiryMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	gen2 := secondGeneration(t, pki)
	var list []*Issuer
	for _, is := range pki.issuers {
		list = append(list, is)
	}
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: append(list, gen2), Profiles: pki.authority.profiles, Store: pki.store,
		Auditor: pki.audit, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	notAfter := gauges(t, reg, "thiqa_ca_certificate_not_after_seconds")
	want := map[string]float64{
		"ca=root,issuer=root":                 float64(pki.root.NotAfter.Unix()),
		"ca=citizen,issuer=citizen":           float64(pki.issuers["citizen"].Certificate().NotAfter.Unix()),
		"ca=citizen,issuer=citizen_2":         float64(gen2.Certificate().NotAfter.Unix()),
		"ca=organisation,issuer=organisation": float64(pki.issuers["organisation"].Certificate().NotAfter.Unix()),
		"ca=tsa,issuer=tsa":                   float64(pki.issuers["tsa"].Certificate().NotAfter.Unix()),
	}
	if len(notAfter) != len(want) {
		t.Errorf("thiqa_ca_certificate_not_after_seconds: %v, want %v", notAfter, want)
	}
	for k, v := range want {
		if notAfter[k] != v {
			t.Errorf("thiqa_ca_certificate_not_after_seconds{%s} = %v, want %v", k, notAfter[k], v)
		}
	}
	until := gauges(t, reg, "thiqa_ca_issuable_until_seconds")
	n := 0
	for _, name := range a.profiles.Names() {
		p, _ := a.profiles.Get(name)
		for _, ca := range []string{"citizen", "organisation", "tsa"} {
			if !p.AllowsIssuer(ca) {
				continue
			}
			n++
			cur := a.issuers[ca]
			key := "ca=" + ca + ",issuer=" + cur.Name() + ",profile=" + name
			want := float64(cur.Certificate().NotAfter.Add(-p.Validity + time.Second + time.Minute).Unix())
			if got, ok := until[key]; !ok || got != want {
				t.Errorf("thiqa_ca_issuable_until_seconds{%s} = %v (%v), want %v", key, got, ok, want)
			}
		}
	}
	if n == 0 || len(until) != n {
		t.Errorf("thiqa_ca_issuable_until_seconds has %d series, want %d (the current generations only): %v", len(until), n, until)
	}
	if _, ok := until["ca=citizen,issuer=citizen,profile="+policies.ProfileCitizenSigning]; ok {
		t.Error("the first generation, no longer current, has an issuable-until series")
	}
}

// secondGeneration certifies a second generation of the citizen CA (5 years).
func secondGeneration(t *testing.T, pki *testPKI) *Issuer {
	t.Helper()
	key := p384(t)
	csr, err := CreateIssuingCARequest(key, IssuingCAConfig{Name: "citizen", CommonName: "Thiqa Test citizen CA G2", Organization: "Thiqa Test", Country: "OM"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := CertifyIssuingCA(pki.root, pki.rootKey, IssuingCARequest{CSR: csr, BaseURL: testBaseURL,
		Policies: IssuingCAPolicies(pki.authority.profiles, "citizen"), Validity: 5 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	gen2, err := NewIssuer(cert, key, IssuerOptions{Name: "citizen_2", CA: "citizen", Generation: 2, BaseURL: testBaseURL})
	if err != nil {
		t.Fatal(err)
	}
	return gen2
}

// fakeRenewals is a RenewalStore with no successors nor first
// certification on record.
type fakeRenewals struct{}

func (fakeRenewals) Successor(context.Context, string) (string, error) { return "", nil }
func (fakeRenewals) FirstCertified(context.Context, [32]byte) (time.Time, error) {
	return time.Time{}, nil
}
func (fakeRenewals) PendingRenewals(context.Context, int) ([]CertificateRecord, error) {
	return nil, nil
}
func (fakeRenewals) RenewalPending(context.Context, string) (bool, error)     { return false, nil }
func (fakeRenewals) CompleteRenewal(context.Context, string, time.Time) error { return nil }
func (fakeRenewals) WithdrawRenewal(context.Context, string, time.Time) error { return nil }
func (fakeRenewals) Expiring(context.Context, time.Time, time.Time, int) ([]CertificateRecord, error) {
	return nil, nil
}
func (fakeRenewals) CountExpiring(context.Context, time.Time, time.Time) (map[string]int, error) {
	return nil, nil
}

// TestHTTPIssuerExpiring: issuance (by CSR and keyInHSM) and renewal of a
// profile the CA can no longer issue answer 500 with their own problem
// type, no Retry-After and a detail that says what the operators must do;
// no key is made on the token for it.
func TestHTTPIssuerExpiring(t *testing.T) {
	// The wire value, pinned here and in web/portal's tests.
	if ProblemIssuerExpiring != "urn:thiqa:problem:issuing-ca-expiring" {
		t.Fatalf("problem type %q", ProblemIssuerExpiring)
	}
	var now time.Time
	pki, a := expiringPKI(t, func() time.Time { return now }, nil)
	citizen := pki.issuers[policies.IssuerCitizen].Certificate()
	now = time.Now()
	// A certificate to renew, issued while the CA could.
	old, err := a.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning),
		CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"})
	if err != nil {
		t.Fatal(err)
	}
	rn, err := NewRenewer(RenewerConfig{Authority: a, Store: fakeRenewals{}})
	if err != nil {
		t.Fatal(err)
	}
	kg := &fakeKeyGen{keys: map[string]crypto.Signer{}}
	api := NewAPI(a, HandlerOptions{Caller: func(*http.Request) string { return "officer-1" }, KeyGenerator: kg})
	mux := http.NewServeMux()
	open := func(policies.Action) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler { return h }
	}
	api.Register(mux, open)
	rn.Register(mux, open, api)
	officer := &auth.Principal{Subject: "officer-1", Roles: []policies.Role{policies.RoleRegistrationOfficer}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), officer)))
	}))
	defer srv.Close()

	signing, _ := a.profiles.Get(policies.ProfileCitizenSigning)
	now = citizen.NotAfter.Add(-signing.Validity / 2)
	check := func(what string, resp *http.Response, body []byte) {
		t.Helper()
		var pd struct {
			Type, Title, Detail string
			Status              int
		}
		_ = json.Unmarshal(body, &pd)
		if resp.StatusCode != http.StatusInternalServerError || pd.Status != 500 || pd.Type != ProblemIssuerExpiring ||
			!strings.Contains(pd.Detail, "thiqa ca rollover --name citizen") || !strings.Contains(pd.Detail, citizen.NotAfter.UTC().Format(time.RFC3339)) {
			t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			t.Fatalf("%s: Retry-After %q: no retry helps before a rollover", what, ra)
		}
	}
	resp, body := post(t, srv.URL, IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: string(newCSR(t, p384(t)))})
	check("issue", resp, body)
	resp, body = post(t, srv.URL, IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), KeyInHSM: true})
	check("keyInHSM", resp, body)
	if len(kg.keys) != 0 {
		t.Fatalf("%d keys made on the token for a certificate the CA cannot issue", len(kg.keys))
	}
	if e := pki.audit.last(); e.Outcome != audit.OutcomeFailure || !strings.Contains(detail(e, "error"), "rollover") {
		t.Fatalf("keyInHSM refusal audited as %+v", e)
	}
	r, err := http.Post(srv.URL+"/api/v1/certificates/"+old.Serial+"/renew", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, r)
	check("renew", r, body)
	if e := pki.audit.last(); e.Action != string(policies.ActionIssueCertificate) || e.Outcome != audit.OutcomeFailure || detail(e, "replaces") != old.Serial {
		t.Fatalf("renewal refusal audited as %+v", e)
	}
}

func readAll(t *testing.T, r *http.Response) []byte {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// detail returns an audit entry's detail key as a string.
func detail(e audit.Entry, key string) string {
	m, _ := e.Details.(map[string]any)
	s, _ := m[key].(string)
	return s
}
