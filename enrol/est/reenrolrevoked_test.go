package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/enrol/est"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestESTReenrolRefusesRevoked on SQLite and PostgreSQL: simplereenroll
// with a revoked current certificate (affiliationChanged) is refused 403
// and audited, and nothing is issued: as POST
// /api/v1/certificates/{serial}/renew, EST renews no revoked certificate.
func TestESTReenrolRefusesRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			renewer, err := ca.NewRenewer(ca.RenewerConfig{Authority: pki.Authority, Store: db.Certificates(nil)})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
				Status: revocation.NewChecker(db.Certificates(nil), time.Nanosecond, nil), Audit: log, SecretKey: key,
				Renewer: enrol.CARenewer{Renewals: renewer}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			e, err := svc.CheckSecret(t.Context(), c.Reference, c.Secret)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
			got, err := svc.Enrol(t.Context(), e, "est:test", enrol.Key{CSR: csr}, "est")
			if err != nil {
				t.Fatal(err)
			}
			serial := hex.EncodeToString(got.Certificate.SerialNumber.Bytes())
			if _, err := db.Revocations().Revoke(t.Context(), serial, crl.ReasonAffiliationChanged, "officer-1", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			srv, err := est.New(est.Config{Enrol: svc, Issuer: pki.Authority, CACertificates: []*x509.Certificate{pki.CAs["citizen"]}, Root: pki.Root})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			srv.Register(mux)
			ts := httptest.NewUnstartedServer(mux)
			pool := x509.NewCertPool()
			pool.AddCert(pki.CAs["citizen"])
			ts.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
			ts.StartTLS()
			t.Cleanup(ts.Close)
			client := ts.Client()
			client.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{got.Certificate.Raw}, PrivateKey: k}}

			issued := storetest.AuditCount(t, db, "certificate.issue", "success")
			refused := storetest.AuditCount(t, db, enrol.ActionRefused, "refused")
			nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr2, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, nk)
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/.well-known/est/simplereenroll", strings.NewReader(base64.StdEncoding.EncodeToString(csr2)))
			req.Header.Set("Content-Type", "application/pkcs10")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "revoked") {
				t.Fatalf("simplereenroll with a revoked certificate: %d %s, want 403", resp.StatusCode, body)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != issued {
				t.Fatalf("%d certificates issued for a revoked certificate", n-issued)
			}
			if n := storetest.AuditCount(t, db, enrol.ActionRefused, "refused"); n != refused+1 {
				t.Fatalf("%d refusals audited, want 1", n-refused)
			}
		})
	}
}
