package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/policies"
)

// A page's in-process call carries the signed-in person: Require lets it
// through as that person when the role allows the action, and refuses and
// audits it like any caller when not; a session beats request headers.
func TestRequireSessionPrincipal(t *testing.T) {
	rec := &memAudit{}
	a, err := New(Config{}, Options{Logger: quietLogger(), Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	var seen *Principal
	h := a.Require(policies.ActionSign)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	citizen := &Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}, Method: "oidc"}
	r := httptest.NewRequest(http.MethodPost, "/api/v1/sign", nil)
	r.Header.Set("Authorization", "Bearer forged")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(WithSession(r.Context(), citizen)))
	if w.Code != http.StatusNoContent || seen == nil || seen.CivilNumber != "12345678" || seen.Method != MethodSession {
		t.Fatalf("citizen session: %d %+v", w.Code, seen)
	}
	if citizen.Method != "oidc" {
		t.Fatal("WithSession changed the caller's principal")
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("allowed call audited as a refusal: %+v", got)
	}

	officer := &Principal{Subject: "officer-1", Roles: []policies.Role{policies.RoleRegistrationOfficer}}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(WithSession(r.Context(), officer)))
	if w.Code != http.StatusForbidden {
		t.Fatalf("officer signing: %d", w.Code)
	}
	got := rec.take()
	if len(got) != 1 || got[0].Actor != "officer-1" {
		t.Fatalf("refusal records: %+v", got)
	}

	// Without a session the request's own credentials count.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("no session, forged token: %d", w.Code)
	}
}
