package ca

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// failingSigner is a CA key whose token fails every signature with err.
type failingSigner struct {
	crypto.Signer
	err error
}

func (f failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, f.err
}

// TestIssueSignerOutageIs503: when the CA key's token is unavailable for
// now (the HSM marks the error) issuing answers 503 with a Retry-After and
// audits the failure; any other signing failure stays a 500.
func TestIssueSignerOutageIs503(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
	}{
		{"token-unavailable", fmt.Errorf("hsm: signing with key %q: %w", "ca", outage.Mark(errors.New("pkcs11: 0x30: CKR_DEVICE_ERROR"))), http.StatusServiceUnavailable},
		{"other-failure", errors.New("hsm: signing with key \"ca\": pkcs11: 0x70: CKR_MECHANISM_INVALID"), http.StatusInternalServerError},
	} {
		t.Run(c.name, func(t *testing.T) {
			pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
			for _, is := range pki.issuers {
				is.signer = failingSigner{is.signer, c.err}
			}
			srv := httptest.NewServer(NewHandler(pki.authority, HandlerOptions{Caller: func(*http.Request) string { return "officer-7" }}))
			defer srv.Close()
			resp, body := post(t, srv.URL, IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: string(newCSR(t, p384(t)))})
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status == http.StatusServiceUnavailable {
				var p problem.Details
				if err := json.Unmarshal(body, &p); err != nil || p.Detail != problem.UnavailableDetail || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("problem %s (%v), Retry-After %q", body, err, resp.Header.Get("Retry-After"))
				}
			}
			if e := pki.audit.last(); e.Action != string(policies.ActionIssueCertificate) || e.Outcome != audit.OutcomeFailure {
				t.Fatalf("audit record %+v", e)
			}
		})
	}
}
