package signing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestRevokedCredentialSealsNothingAndIsListedSo on SQLite and PostgreSQL:
// once its certificate is revoked, a seal credential seals nothing by the
// operator's `thiqa seal` (OperatorSeal), as over the API; OperatorSeal
// loaded the credential without checking its certificate and sealed with
// a revoked one. GET /api/v1/credentials?owner=self lists the credential
// with certStatus revoked (valid before); it was listed as if usable.
func TestRevokedCredentialSealsNothingAndIsListedSo(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			ctx := context.Background()
			agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
			cred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
			pdf := samplePDF(t, 4096)
			open := func() (io.ReaderAt, int64, error) { return bytes.NewReader(pdf), int64(len(pdf)), nil }
			status := func() string {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/credentials?owner=self", nil)
				req.Header.Set("Authorization", "Bearer "+agency)
				resp, err := w.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var own signing.OwnCredentialsResponse
				if err := json.NewDecoder(resp.Body).Decode(&own); err != nil || resp.StatusCode != 200 || len(own.Credentials) != 1 {
					t.Fatalf("own credentials: %d %v %+v", resp.StatusCode, err, own)
				}
				return own.Credentials[0].CertStatus
			}
			var out bytes.Buffer
			if _, err := w.svc.OperatorSeal(ctx, "cli:operator", cred, signer.LevelBB, open, &out); err != nil {
				t.Fatalf("operator seal: %v", err)
			}
			if st := status(); st != "valid" {
				t.Fatalf("certStatus %q before the revocation, want valid", st)
			}
			if _, err := w.db.Revocations().Revoke(ctx, w.serials[cred], 1, "officer-7", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			if st := status(); st != "revoked" {
				t.Fatalf("certStatus %q after the revocation, want revoked", st)
			}
			// A "not revoked" answer is reused for a second.
			time.Sleep(1100 * time.Millisecond)
			out.Reset()
			_, err := w.svc.OperatorSeal(ctx, "cli:operator", cred, signer.LevelBB, open, &out)
			if !errors.Is(err, signing.ErrCertificateRevoked) || out.Len() != 0 {
				t.Fatalf("operator seal with a revoked certificate: %v, %d bytes written", err, out.Len())
			}
			if n := len(w.records(t, signing.ActionSeal, "refused", "cli:operator")); n != 1 {
				t.Fatalf("%d refused operator seal records, want 1", n)
			}
		})
	}
}

// TestNotYetValidCredentialIsListedSo on SQLite and PostgreSQL: a
// credential whose certificate is not valid yet (its notBefore after the
// service's clock: a node whose clock is behind the CA's) signs nothing,
// and GET /api/v1/credentials?owner=self says so (certStatus expired, as
// CSC credentials/info does); it was listed as valid.
func TestNotYetValidCredentialIsListedSo(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
			agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
			cred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
			if _, err := w.svc.Credential(context.Background(), cred, signing.OwnerAgency, "NTROM-1234567"); !errors.Is(err, signing.ErrCertificateNotValid) {
				t.Fatalf("a signature with a certificate not valid yet: %v", err)
			}
			req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/credentials?owner=self", nil)
			req.Header.Set("Authorization", "Bearer "+agency)
			resp, err := w.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var own signing.OwnCredentialsResponse
			if err := json.NewDecoder(resp.Body).Decode(&own); err != nil || resp.StatusCode != 200 || len(own.Credentials) != 1 {
				t.Fatalf("own credentials: %d %v %+v", resp.StatusCode, err, own)
			}
			if st := own.Credentials[0].CertStatus; st != "expired" {
				t.Fatalf("certStatus %q of a certificate not valid yet, want expired (it signs nothing)", st)
			}
		})
	}
}
