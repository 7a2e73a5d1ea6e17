package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/enrol/est"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestESTRefusals: plain HTTP is refused; a body that is not a base64
// CSR, a CSR whose signature fails, a missing or wrong credential and a
// re-enrolment without a client certificate are refused with their HTTP
// status, audited, issuing nothing; simpleenroll with the enrolment's
// secret answers a certs-only SignedData holding the certificate.
func TestESTRefusals(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, svc, mux := newESTServer(t, d, nil)
			plain := httptest.NewServer(mux)
			t.Cleanup(plain.Close)
			ts := httptest.NewTLSServer(mux)
			t.Cleanup(ts.Close)

			if resp, err := http.Get(plain.URL + "/.well-known/est/cacerts"); err != nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("cacerts over plain HTTP: %v %v", resp, err)
			}
			c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
			good := base64.StdEncoding.EncodeToString(csr)
			broken := append([]byte(nil), csr...)
			broken[len(broken)-2] ^= 0xff
			post := func(path, body, user, pass string) (int, []byte) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/.well-known/est/"+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/pkcs10")
				if user != "" {
					req.SetBasicAuth(user, pass)
				}
				resp, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, b
			}
			refused := func() int { return storetest.AuditCount(t, db, enrol.ActionRefused, "refused") }
			for _, tc := range []struct {
				what, path, body, user, pass string
				want                         int
			}{
				{"not base64", "simpleenroll", "%%%", c.Reference, c.Secret, 400},
				{"not a CSR", "simpleenroll", base64.StdEncoding.EncodeToString([]byte("hello")), c.Reference, c.Secret, 400},
				{"bad CSR signature", "simpleenroll", base64.StdEncoding.EncodeToString(broken), c.Reference, c.Secret, 400},
				{"no credentials", "simpleenroll", good, "", "", 401},
				{"wrong secret", "simpleenroll", good, c.Reference, "AAAAAAAAAAAAAAAAAAAAAAAAAA", 401},
				{"unknown reference", "simpleenroll", good, "AAAAAAAAAAAAAAAA", c.Secret, 401},
				{"a user name that is no reference, 2 KiB long", "simpleenroll", good, strings.Repeat("x", 2048), c.Secret, 401},
				{"another profile", "organisation-seal/simpleenroll", good, c.Reference, c.Secret, 403},
				{"re-enrol without a certificate", "simplereenroll", good, "", "", 401},
			} {
				before := refused()
				if st, body := post(tc.path, tc.body, tc.user, tc.pass); st != tc.want {
					t.Fatalf("%s: %d %s", tc.what, st, body)
				}
				if refused() != before+1 {
					t.Fatalf("%s: not audited", tc.what)
				}
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued by refused requests", n)
			}
			st, body := post("simpleenroll", good, c.Reference, c.Secret)
			if st != http.StatusOK {
				t.Fatalf("simpleenroll: %d %s", st, body)
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
			if err != nil {
				t.Fatal(err)
			}
			var ci struct {
				Type    asn1.ObjectIdentifier
				Content asn1.RawValue `asn1:"explicit,tag:0"`
			}
			if _, err := asn1.Unmarshal(der, &ci); err != nil {
				t.Fatal(err)
			}
			var sd struct {
				Version      int
				Digests      asn1.RawValue
				Encap        asn1.RawValue
				Certificates asn1.RawValue `asn1:"tag:0"`
				Signers      asn1.RawValue
			}
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(sd.Certificates.Bytes)
			if err != nil || !strings.Contains(cert.Subject.String(), "IDCOM-12345678") {
				t.Fatalf("certificate in the answer: %v %v", cert, err)
			}
			if st, _ := post("simpleenroll", good, c.Reference, c.Secret); st != http.StatusForbidden {
				t.Fatalf("replayed secret: %d", st)
			}
		})
	}
}

// newESTServer is an EST server over an enrolment service on a fresh store
// of dialect d, with a CA hierarchy; wrap, when set, stands between the
// enrolment service and its audit log.
func newESTServer(t *testing.T, d storetest.Dialect, wrap func(enrol.Auditor) enrol.Auditor) (*store.DB, *enrol.Service, *http.ServeMux) {
	t.Helper()
	db, svc, mux, _ := newESTServerPKI(t, d, wrap)
	return db, svc, mux
}

// newESTServerPKI is newESTServer that also returns the CA hierarchy.
func newESTServerPKI(t *testing.T, d storetest.Dialect, wrap func(enrol.Auditor) enrol.Auditor) (*store.DB, *enrol.Service, *http.ServeMux, *catest.PKI) {
	t.Helper()
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	var auditor enrol.Auditor = log
	if wrap != nil {
		auditor = wrap(log)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: auditor, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := est.New(est.Config{Enrol: svc, Issuer: pki.Authority, CACertificates: []*x509.Certificate{pki.CAs["citizen"]}, Root: pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	return db, svc, mux, pki
}
