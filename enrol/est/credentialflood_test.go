package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestESTWrongCredentialsBounded on SQLite and PostgreSQL: over TLS, a
// request with an unknown reference or a wrong secret is answered 401 and
// recorded, but anyone may send them: past the address's budget (10 at
// once, shared with the plain-HTTP refusals) only the first refusal of
// each run is recorded, every one still answered 401. Another address has
// its own budget.
func TestESTWrongCredentialsBounded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, svc, mux := newESTServer(t, d, nil)
			c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
			body := base64.StdEncoding.EncodeToString(csr)
			post := func(remote, user, pass string) int {
				t.Helper()
				req := httptest.NewRequest(http.MethodPost, "https://est.thiqa.test/.well-known/est/simpleenroll", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/pkcs10")
				req.SetBasicAuth(user, pass)
				req.RemoteAddr = remote
				req.TLS = &tls.ConnectionState{HandshakeComplete: true}
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				return w.Code
			}
			refused := func() int { return storetest.AuditCount(t, db, enrol.ActionRefused, "refused") }
			before := refused()
			for i := range 50 {
				user, pass := c.Reference, "wrong-secret"
				if i%2 == 1 {
					user, pass = "AAAAAAAAAAAAAAAA", c.Secret // unknown reference
				}
				if st := post("198.51.100.9:4000", user, pass); st != http.StatusUnauthorized {
					t.Fatalf("request %d: %d, want 401", i+1, st)
				}
			}
			if n := refused() - before; n != 11 {
				t.Fatalf("%d records for 50 wrong credentials from one address, want 11 (10, then the first of the run)", n)
			}
			if st := post("192.0.2.5:4000", c.Reference, "wrong-secret"); st != http.StatusUnauthorized || refused()-before != 12 {
				t.Fatalf("another address: %d, %d records, want 401 recorded", st, refused()-before)
			}
		})
	}
}

// TestESTWrongCredentialRecordedAfterAuditFailure: when the record of the
// first wrong credential past an address's budget could not be written
// (answered 500), the run's next refusal is recorded in its place
// (ratelimit.Refusal.Undo), not left out with the rest of the run.
func TestESTWrongCredentialRecordedAfterAuditFailure(t *testing.T) {
	var gate *audittest.Gate
	db, svc, mux := newESTServer(t, storetest.Dialects()[0], func(log enrol.Auditor) enrol.Auditor { gate = audittest.New(log); return gate })
	c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
		map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
	body := base64.StdEncoding.EncodeToString(csr)
	post := func() int {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "https://est.thiqa.test/.well-known/est/simpleenroll", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/pkcs10")
		req.SetBasicAuth(c.Reference, "wrong-secret")
		req.RemoteAddr = "198.51.100.9:4000"
		req.TLS = &tls.ConnectionState{HandshakeComplete: true}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	for i := range ratelimit.AnonymousBurst { // the address's budget
		if st := post(); st != http.StatusUnauthorized {
			t.Fatalf("refusal %d: %d", i+1, st)
		}
	}
	gate.Down.Store(true)
	if st := post(); st != http.StatusInternalServerError {
		t.Fatalf("the run's first refusal, unrecorded: %d, want 500", st)
	}
	gate.Down.Store(false)
	refused := func() int { return storetest.AuditCount(t, db, enrol.ActionRefused, "refused") }
	before := refused()
	for i := range 3 {
		if st := post(); st != http.StatusUnauthorized {
			t.Fatalf("refusal %d after the failure: %d", i+1, st)
		}
	}
	if n := refused() - before; n != 1 {
		t.Fatalf("%d records of the run's refusals after the failed one, want 1", n)
	}
}
