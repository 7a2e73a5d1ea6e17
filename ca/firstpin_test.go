package ca

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// TestIssueFirstPINActivation: the activation code the Issued hook returns
// is in the issuance's answer (shown once, not cached) and in no record;
// with FirstPINActivation the record of a keyInHSM citizen-signing
// issuance says its first PIN needs an activation code, and neither a
// seal's nor an issuance by CSR does. Without a code (the setting off, or
// the hook failed) the answer has no activationCode key at all.
func TestIssueFirstPINActivation(t *testing.T) {
	const code = "K7QM-2XWD-9HPA"
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var hookErr error
	hook := func(_ context.Context, got *Issued) (Registration, error) {
		if hookErr != nil {
			return Registration{}, hookErr
		}
		if got.Profile != policies.ProfileCitizenSigning {
			return Registration{}, nil
		}
		return Registration{ActivationCode: code, ActivationExpires: expires.In(time.FixedZone("GST", 4*3600))}, nil
	}
	for _, on := range []bool{true, false} {
		pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
		kg := &fakeKeyGen{keys: map[string]crypto.Signer{}}
		srv := httptest.NewServer(NewHandler(pki.authority, HandlerOptions{
			Caller: func(*http.Request) string { return "officer-7" }, KeyGenerator: kg, Issued: hook, FirstPINActivation: on,
		}))
		issue := func(what string, req IssueRequest) (*http.Response, map[string]any, audit.Entry) {
			t.Helper()
			resp, body := post(t, srv.URL, req)
			var m map[string]any
			if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &m) != nil {
				t.Fatalf("%v %s: %d %s", on, what, resp.StatusCode, body)
			}
			e := pki.audit.last()
			if e.Action != string(policies.ActionIssueCertificate) || e.Outcome != audit.OutcomeSuccess {
				t.Fatalf("%v %s: last record %+v", on, what, e)
			}
			if b, _ := json.Marshal(e); strings.Contains(string(b), code) {
				t.Fatalf("%v %s: the record holds the code: %s", on, what, b)
			}
			return resp, m, e
		}
		hookErr = nil
		resp, m, e := issue("keyInHSM citizen-signing", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), KeyInHSM: true})
		if m["activationCode"] != code || m["activationCodeExpiresAt"] != "2030-01-02T03:04:05Z" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%v: answer %v, Cache-Control %q", on, m, resp.Header.Get("Cache-Control"))
		}
		if got := detail(e, "firstPIN"); (got == "activationCode") != on {
			t.Fatalf("%v: the record's firstPIN is %v", on, got)
		}
		_, m, e = issue("keyInHSM seal", IssueRequest{Profile: policies.ProfileOrganisationSeal, Subject: subjectFor(policies.ProfileOrganisationSeal), KeyInHSM: true})
		if _, ok := m["activationCode"]; ok || detail(e, "firstPIN") != "" {
			t.Fatalf("%v: a seal's answer %v, record %+v", on, m, e.Details)
		}
		if _, ok := m["activationCodeExpiresAt"]; ok {
			t.Fatalf("%v: a seal's answer %v", on, m)
		}
		_, m, e = issue("citizen-signing by CSR", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: string(newCSR(t, p384(t)))})
		if _, ok := m["activationCode"]; ok || detail(e, "firstPIN") != "" {
			t.Fatalf("%v: a CSR's answer %v, record %+v", on, m, e.Details)
		}
		// The hook fails: the certificate stays issued, the answer has
		// no code (the signing service then refuses a first PIN without one).
		hookErr = errors.New("the store is down")
		resp, m, _ = issue("keyInHSM, the hook failing", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), KeyInHSM: true})
		if _, ok := m["activationCode"]; ok || m["credentialID"] == nil || resp.Header.Get("Cache-Control") == "no-store" {
			t.Fatalf("%v: answer after a failed hook %v", on, m)
		}
		srv.Close()
	}
}

// TestIssueFirstPINActivationRequestIDAgain: a second keyInHSM issuance
// with the request ID of the first (an officer's retry, or someone
// replaying it) is refused before the hook runs: its answer holds no
// activation code, neither a fresh one nor the first, and its key is
// removed; the first answer alone showed the code.
func TestIssueFirstPINActivationRequestIDAgain(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	kg := &fakeKeyGen{keys: map[string]crypto.Signer{}}
	var calls []string
	hook := func(_ context.Context, got *Issued) (Registration, error) {
		calls = append(calls, got.CredentialID)
		return Registration{ActivationCode: "CODE-" + got.CredentialID, ActivationExpires: time.Now().Add(time.Hour)}, nil
	}
	srv := httptest.NewServer(NewHandler(pki.authority, HandlerOptions{
		Caller: func(*http.Request) string { return "officer-7" }, KeyGenerator: kg, Issued: hook, FirstPINActivation: true,
	}))
	defer srv.Close()
	req := IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), KeyInHSM: true, RequestID: "desk-42"}
	resp, body := post(t, srv.URL, req)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"activationCode":"CODE-cred-1"`) {
		t.Fatalf("the first issuance: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, srv.URL, req)
	if resp.StatusCode == http.StatusCreated || strings.Contains(string(body), "activationCode") || strings.Contains(string(body), "CODE-") {
		t.Fatalf("the same request ID again: %d %s", resp.StatusCode, body)
	}
	if len(calls) != 1 || len(kg.deleted) != 1 || kg.deleted[0] != "cred-2" {
		t.Fatalf("hook calls %v, keys removed %v", calls, kg.deleted)
	}
}
