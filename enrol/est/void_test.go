package est_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestSimpleEnrollAfterVoid on both stores: once an officer voided an
// enrolment, simpleenroll with its reference and secret is refused as
// under a used one (403), issues nothing, and the refusal record says
// void.
func TestSimpleEnrollAfterVoid(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, svc, mux := newESTServer(t, d, nil)
			ts := httptest.NewTLSServer(mux)
			t.Cleanup(ts.Close)
			c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Void(t.Context(), "officer-2", c.Reference, "secret leaked"); err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/.well-known/est/simpleenroll", strings.NewReader(base64.StdEncoding.EncodeToString(csr)))
			req.Header.Set("Content-Type", "application/pkcs10")
			req.SetBasicAuth(c.Reference, c.Secret)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("simpleenroll after a void: %d %s", resp.StatusCode, body)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued under a void enrolment", n)
			}
			var said []string
			_ = db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
				if r.Action == enrol.ActionRefused && r.Object == "est:/.well-known/est/simpleenroll" {
					var d struct{ Error string }
					_ = json.Unmarshal(r.Details, &d)
					said = append(said, d.Error)
				}
				return nil
			})
			if len(said) != 1 || !strings.Contains(said[0], "void") {
				t.Fatalf("refusal records: %q", said)
			}
		})
	}
}
