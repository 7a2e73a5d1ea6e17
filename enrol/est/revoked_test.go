package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestESTIssuerRevoked: once the root CRL revokes the issuing CA,
// simpleenroll from it is answered 409 with the CA's problem type
// (issuing-ca-revoked), no Retry-After and a detail that says what the
// operators must do; the CA audits the failure once, nothing is issued,
// and no new enrolment for it is created.
func TestESTIssuerRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, svc, mux, pki := newESTServerPKI(t, d, nil)
			ts := httptest.NewTLSServer(mux)
			t.Cleanup(ts.Close)
			c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
			enroll := func() (*http.Response, []byte) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/.well-known/est/simpleenroll", strings.NewReader(base64.StdEncoding.EncodeToString(csr)))
				req.Header.Set("Content-Type", "application/pkcs10")
				req.SetBasicAuth(c.Reference, c.Secret)
				resp, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, b
			}
			pki.RevokeCA(t, "citizen")
			// No enrolment is created that the CA could not honour.
			if _, err := svc.Create(t.Context(), "officer-1", "citizen-auth", c.Subject, 0); !errors.Is(err, ca.ErrIssuerRevoked) {
				t.Fatalf("creating an enrolment the CA cannot honour: %v", err)
			}
			resp, body := enroll()
			var pd struct{ Type, Title, Detail string }
			_ = json.Unmarshal(body, &pd)
			if resp.StatusCode != http.StatusConflict || pd.Type != ca.ProblemIssuerRevoked ||
				!strings.Contains(pd.Detail, "issuing CA citizen") || !strings.Contains(pd.Detail, "thiqa ca rollover --name citizen") || !strings.Contains(pd.Detail, "revoked by the root") {
				t.Fatalf("simpleenroll: %d %s", resp.StatusCode, body)
			}
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				t.Fatalf("Retry-After %q: no retry helps before a rollover", ra)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "failure"); n != 1 {
				t.Fatalf("%d failed issuances audited, want 1", n)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
		})
	}
}
