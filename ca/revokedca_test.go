package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// rootCRL has the test root sign a CRL listing entries.
func rootCRL(t *testing.T, pki *testPKI, number int64, entries ...x509.RevocationListEntry) *x509.RevocationList {
	t.Helper()
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(30 * 24 * time.Hour), RevokedCertificateEntries: entries}, pki.root, pki.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// TestApplyRootCRL: a root CRL that lists no issuing CA changes nothing; one
// that lists the citizen CA has every authority sharing the state refuse
// citizen issuance (Issue and CheckRequest) with an *IssuerRevokedError,
// audited as the service's failure, no serial consumed, while the
// organisation CA issues; the gauge says which; a CRL not signed by the
// root is refused and changes nothing; a later CRL that no longer lists it
// (a hold lifted) lets it issue again.
func TestApplyRootCRL(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	ctx := t.Context()
	var list []*Issuer
	for _, is := range pki.issuers {
		list = append(list, is)
	}
	shared := new(RevokedIssuers)
	reg := prometheus.NewPedanticRegistry()
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: pki.authority.profiles, Store: pki.store, Auditor: pki.audit,
		Metrics: reg, Revoked: shared})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: pki.authority.profiles, Store: pki.store, Auditor: pki.audit, Revoked: shared})
	if err != nil {
		t.Fatal(err)
	}
	citizenReq := func() Request {
		return Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"}
	}
	gauge := func(issuer string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "thiqa_issuing_ca_revoked" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "issuer" && l.GetValue() == issuer {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		t.Fatalf("no thiqa_issuing_ca_revoked series of %s", issuer)
		return 0
	}
	citizen := pki.issuers[policies.IssuerCitizen].Certificate()

	// Not listed: unchanged.
	if err := a.ApplyRootCRL(ctx, rootCRL(t, pki, 1, x509.RevocationListEntry{SerialNumber: big.NewInt(4242), RevocationTime: time.Now()})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Issue(ctx, citizenReq()); err != nil {
		t.Fatalf("issuance with a root CRL that lists no issuing CA: %v", err)
	}
	if gauge("citizen") != 0 || a.RevokedWarning() != "" {
		t.Fatalf("gauge %v warning %q with no CA revoked", gauge("citizen"), a.RevokedWarning())
	}

	// Listed.
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if err := a.ApplyRootCRL(ctx, rootCRL(t, pki, 2, x509.RevocationListEntry{SerialNumber: citizen.SerialNumber, RevocationTime: at, ReasonCode: 1})); err != nil {
		t.Fatal(err)
	}
	intents, _ := pki.store.counts()
	for _, au := range []*Authority{a, other} {
		_, err := au.Issue(ctx, citizenReq())
		var re *IssuerRevokedError
		if !errors.As(err, &re) || !errors.Is(err, ErrIssuerRevoked) || re.CA != "citizen" || re.Reason != 1 || !re.RevokedAt.Equal(at) || re.CRLNumber != "2" {
			t.Fatalf("citizen issuance after the root revoked its CA: %v (%+v)", err, re)
		}
		if IsRefusal(err) {
			t.Fatal("the CA's revocation counted as the caller's fault")
		}
		e := pki.audit.last()
		if e.Action != string(policies.ActionIssueCertificate) || e.Outcome != audit.OutcomeFailure || !strings.Contains(detail(e, "error"), "revoked by the root") {
			t.Fatalf("audit record %+v", e)
		}
	}
	if err := a.CheckRequest(citizenReq()); !errors.Is(err, ErrIssuerRevoked) {
		t.Fatalf("CheckRequest: %v", err)
	}
	if n, _ := pki.store.counts(); n != intents {
		t.Fatalf("%d serials consumed by the refusals", n-intents)
	}
	if _, err := a.Issue(ctx, Request{Profile: policies.ProfileOrganisationSeal, Subject: subjectFor(policies.ProfileOrganisationSeal),
		CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"}); err != nil {
		t.Fatalf("the organisation CA after the citizen CA was revoked: %v", err)
	}
	// The CA's own OCSP responder is still certified: OCSP goes on.
	if _, err := a.Issue(ctx, Request{Profile: policies.ProfileOCSPResponder, Issuer: "citizen", Subject: subjectFor(policies.ProfileOCSPResponder),
		PublicKey: p384(t).Public(), KeyGeneratedByService: true, RequestedBy: "thiqa-serve"}); err != nil {
		t.Fatalf("the revoked CA's OCSP responder: %v", err)
	}
	// Not one a caller asks for with a key of its own: it would answer
	// for the revoked CA's certificates.
	if _, err := a.Issue(ctx, Request{Profile: policies.ProfileOCSPResponder, CA: "citizen", Subject: subjectFor(policies.ProfileOCSPResponder),
		CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"}); !errors.Is(err, ErrIssuerRevoked) {
		t.Fatalf("an officer's ocsp-responder CSR to the revoked CA: %v", err)
	}
	if gauge("citizen") != 1 || gauge("organisation") != 0 || !strings.Contains(a.RevokedWarning(), "citizen") {
		t.Fatalf("gauge citizen %v organisation %v, warning %q", gauge("citizen"), gauge("organisation"), a.RevokedWarning())
	}

	// The HTTP answer: 409 with its type.
	body, err := json.Marshal(map[string]any{"profile": policies.ProfileCitizenSigning, "subject": subjectFor(policies.ProfileCitizenSigning),
		"csr": string(newCSR(t, p384(t)))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	NewHandler(a, HandlerOptions{}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/certificates", bytes.NewReader(body)))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), ProblemIssuerRevoked) || w.Header().Get("Retry-After") != "" {
		t.Fatalf("HTTP answer: %d %v %s", w.Code, w.Header(), w.Body)
	}

	// Another key's CRL: refused, nothing changes.
	stranger := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	if err := a.ApplyRootCRL(ctx, rootCRL(t, stranger, 9)); err == nil {
		t.Fatal("a CRL of another root applied")
	}
	if !errors.Is(other.CheckRequest(citizenReq()), ErrIssuerRevoked) {
		t.Fatal("a refused CRL lifted the revocation")
	}

	// An older CRL applied after it (an authority opened while the reload
	// read the new one, applying the CRL it read before): nothing changes.
	if err := other.ApplyRootCRL(ctx, rootCRL(t, pki, 1)); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(a.CheckRequest(citizenReq()), ErrIssuerRevoked) || gauge("citizen") != 1 {
		t.Fatal("an older root CRL applied after the one revoking the CA lifted the revocation")
	}

	// No longer listed (a hold lifted): issues again.
	if err := other.ApplyRootCRL(ctx, rootCRL(t, pki, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Issue(ctx, citizenReq()); err != nil || gauge("citizen") != 0 {
		t.Fatalf("after a CRL that no longer lists the CA: %v, gauge %v", err, gauge("citizen"))
	}
}

// TestRootCRLUnknown: while the node cannot read or apply the root CRL
// (RootCRLUnknown) it fails closed: every issuance from a CA the root
// certified is refused with an *IssuerStateUnknownError (answered as a
// revoked CA: 409 issuing-ca-revoked), no serial consumed, the service's
// own OCSP responder still certified, /readyz warned; applying a root CRL
// or learning that none is imported (RootCRLNone) lifts it; once a CRL is
// applied, a failed read at open (onlyIfNone) changes nothing.
func TestRootCRLUnknown(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	ctx := t.Context()
	var list []*Issuer
	for _, is := range pki.issuers {
		list = append(list, is)
	}
	shared := new(RevokedIssuers)
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: pki.authority.profiles, Store: pki.store, Auditor: pki.audit, Revoked: shared})
	if err != nil {
		t.Fatal(err)
	}
	citizenReq := func() Request {
		return Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"}
	}
	cause := errors.New("database is locked")
	refused := func(what string) {
		t.Helper()
		intents, _ := pki.store.counts()
		_, err := a.Issue(ctx, citizenReq())
		var ue *IssuerStateUnknownError
		if !errors.As(err, &ue) || !errors.Is(err, ErrIssuerStateUnknown) || !errors.Is(err, ErrIssuerRevoked) || !errors.Is(err, cause) || ue.CA != "citizen" {
			t.Fatalf("%s: citizen issuance: %v", what, err)
		}
		if err := a.CheckRequest(citizenReq()); !errors.Is(err, ErrIssuerStateUnknown) {
			t.Fatalf("%s: CheckRequest: %v", what, err)
		}
		if n, _ := pki.store.counts(); n != intents {
			t.Fatalf("%s: %d serials consumed", what, n-intents)
		}
		if !strings.Contains(a.RevokedWarning(), "could not be read or applied") {
			t.Fatalf("%s: readiness warning %q", what, a.RevokedWarning())
		}
	}
	issues := func(what string) {
		t.Helper()
		if _, err := a.Issue(ctx, citizenReq()); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if a.RevokedWarning() != "" {
			t.Fatalf("%s: readiness warning %q", what, a.RevokedWarning())
		}
	}

	issues("no root CRL applied, none unreadable (online root, development)")
	shared.RootCRLUnknown(cause, true)
	refused("the root CRL unreadable at open")
	if _, err := a.Issue(ctx, Request{Profile: policies.ProfileOCSPResponder, Issuer: "citizen", Subject: subjectFor(policies.ProfileOCSPResponder),
		PublicKey: p384(t).Public(), KeyGeneratedByService: true, RequestedBy: "thiqa-serve"}); err != nil {
		t.Fatalf("the service's own OCSP responder while the state is unknown: %v", err)
	}
	body, err := json.Marshal(map[string]any{"profile": policies.ProfileCitizenSigning, "subject": subjectFor(policies.ProfileCitizenSigning),
		"csr": string(newCSR(t, p384(t)))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	NewHandler(a, HandlerOptions{}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/certificates", bytes.NewReader(body)))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), ProblemIssuerRevoked) || !strings.Contains(w.Body.String(), "unknown") {
		t.Fatalf("HTTP answer: %d %s", w.Code, w.Body)
	}

	shared.RootCRLNone()
	issues("after the store said no root CRL is imported")

	shared.RootCRLUnknown(cause, true)
	if err := a.ApplyRootCRL(ctx, rootCRL(t, pki, 1)); err != nil {
		t.Fatal(err)
	}
	issues("after the next reload applied the root CRL")
	shared.RootCRLUnknown(cause, true)
	issues("a failed read at open after a CRL was applied")
	shared.RootCRLUnknown(cause, false)
	refused("a newer root CRL that could not be applied")
	if err := a.ApplyRootCRL(ctx, rootCRL(t, pki, 2)); err != nil {
		t.Fatal(err)
	}
	issues("after the retry applied it")
}

// TestRootCRLUnknownAfterRevoked: once a root CRL revoking the citizen CA
// was applied, a newer one that cannot be applied leaves the state
// unknown: the organisation CA is refused too, and /readyz says both why
// (the unknown state) and which CA is revoked, not only the latter. A
// "none imported" read then (one begun before the import) lifts neither:
// an imported root CRL is never removed. The revocation stays throughout.
func TestRootCRLUnknownAfterRevoked(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	ctx := t.Context()
	var list []*Issuer
	for _, is := range pki.issuers {
		list = append(list, is)
	}
	shared := new(RevokedIssuers)
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: pki.authority.profiles, Store: pki.store, Auditor: pki.audit, Revoked: shared})
	if err != nil {
		t.Fatal(err)
	}
	citizen := pki.issuers[policies.IssuerCitizen].Certificate()
	if err := a.ApplyRootCRL(ctx, rootCRL(t, pki, 1, x509.RevocationListEntry{SerialNumber: citizen.SerialNumber, RevocationTime: time.Now().Add(-time.Hour), ReasonCode: 1})); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("database is locked")
	shared.RootCRLUnknown(cause, false)
	check := func(what string) {
		t.Helper()
		if w := a.RevokedWarning(); !strings.Contains(w, "could not be read or applied") || !strings.Contains(w, "revokes issuing CA citizen") {
			t.Fatalf("%s: readiness warning %q, want both the unknown state and the revoked CA", what, w)
		}
		if _, err := a.Issue(ctx, Request{Profile: policies.ProfileOrganisationSeal, Subject: subjectFor(policies.ProfileOrganisationSeal),
			CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"}); !errors.Is(err, ErrIssuerStateUnknown) {
			t.Fatalf("%s: organisation CA while the newer root CRL is not applied: %v", what, err)
		}
		var re *IssuerRevokedError
		if _, err := a.Issue(ctx, Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning),
			CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"}); !errors.As(err, &re) {
			t.Fatalf("%s: citizen CA revoked by the applied CRL: %v", what, err)
		}
	}
	check("a newer root CRL could not be applied")
	shared.RootCRLNone()
	check("a stale read found no root CRL imported")
}
