package ca

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// TestOfficerCannotRenewRevoked: a registration officer renewed a revoked
// certificate (201), certifying again the subject and attributes copied
// from a certificate revoked perhaps because they no longer held
// (affiliationChanged). POST /api/v1/certificates/{serial}/renew now
// refuses a revoked certificate for everyone and in every mode (same key,
// CSR re-key, re-key on the token): 409 not-renewable (400
// key-compromised, as before, for a keyCompromise revocation), the
// refusal recorded (certificate.renew) before the answer, no intent
// stored, no serial drawn, no key made on the token.
func TestOfficerCannotRenewRevoked(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	a := pki.authority
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

	revoked := func(reason int) string {
		t.Helper()
		got, err := a.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning),
			CSR: newCSR(t, p384(t)), RequestedBy: "officer-1"})
		if err != nil {
			t.Fatal(err)
		}
		pki.store.mu.Lock()
		rec := pki.store.certs[got.Serial]
		rec.Revoked, rec.RevocationReason = true, reason
		pki.store.certs[got.Serial] = rec
		pki.store.mu.Unlock()
		return got.Serial
	}
	counts := func() (int, int) {
		pki.store.mu.Lock()
		defer pki.store.mu.Unlock()
		return len(pki.store.certs), len(pki.store.intents)
	}
	for _, c := range []struct {
		what        string
		reason      int
		body        string
		status      int
		problemType string
	}{
		{"same key, affiliationChanged", 3, `{}`, http.StatusConflict, "urn:thiqa:problem:not-renewable"},
		{"CSR re-key, cessationOfOperation", 5, `{"csr": ` + jsonString(string(newCSR(t, p384(t)))) + `}`, http.StatusConflict, "urn:thiqa:problem:not-renewable"},
		{"re-key on the token, superseded", 4, `{"rekey": true}`, http.StatusConflict, "urn:thiqa:problem:not-renewable"},
		{"same key, keyCompromise", 1, `{}`, http.StatusBadRequest, "urn:thiqa:problem:key-compromised"},
		{"CSR re-key, keyCompromise", 1, `{"csr": ` + jsonString(string(newCSR(t, p384(t)))) + `}`, http.StatusBadRequest, "urn:thiqa:problem:key-compromised"},
	} {
		serial := revoked(c.reason)
		certs, intents := counts()
		records := len(pki.audit.entries)
		r, err := http.Post(srv.URL+"/api/v1/certificates/"+serial+"/renew", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, r)
		var pd struct{ Type, Detail string }
		_ = json.Unmarshal(body, &pd)
		if r.StatusCode != c.status || pd.Type != c.problemType || !strings.Contains(pd.Detail, "revoked") {
			t.Fatalf("%s: %d %s, want %d %s", c.what, r.StatusCode, body, c.status, c.problemType)
		}
		if nc, ni := counts(); nc != certs || ni != intents {
			t.Fatalf("%s: %d certificates and %d intents stored by a refused renewal", c.what, nc-certs, ni-intents)
		}
		if len(kg.keys) != 0 {
			t.Fatalf("%s: %d keys made on the token", c.what, len(kg.keys))
		}
		e := pki.audit.last()
		if len(pki.audit.entries) != records+1 || e.Action != ActionRenewCertificate || e.Outcome != audit.OutcomeRefused || e.Object != serial {
			t.Fatalf("%s: refusal audited as %+v (%d records)", c.what, e, len(pki.audit.entries)-records)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
