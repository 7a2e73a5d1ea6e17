package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
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
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/enrol/est"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// An enrolment for a citizen of another country (IDCAE-<n>), recorded
// while the CA still issued to any country, is refused when used after
// the CA of an OM deployment issues to OM only: simpleenroll answers 400
// naming the country, issues and stores nothing, and the CA audits the
// refusal.
func TestESTRefusesOtherCountry(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			service := func(issuer *ca.Authority) *enrol.Service {
				svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: issuer, Certificates: db.Certificates(nil),
					Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: key})
				if err != nil {
					t.Fatal(err)
				}
				return svc
			}
			// Before: the CA issued to any country.
			c, err := service(pki.Authority).Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "AE"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Now: the same CA as hierarchy.OpenAuthority builds it for OM.
			profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
			if err != nil {
				t.Fatal(err)
			}
			var issuers []*ca.Issuer
			for _, name := range []string{policies.IssuerCitizen, policies.IssuerOrganisation, policies.IssuerTSA} {
				is, err := ca.NewIssuer(pki.CAs[name], pki.Keys[name], ca.IssuerOptions{Name: name, BaseURL: "http://pki.thiqa.test"})
				if err != nil {
					t.Fatal(err)
				}
				issuers = append(issuers, is)
			}
			home, err := ca.NewAuthority(ca.AuthorityConfig{Root: pki.Root, Issuers: issuers, Profiles: profiles.WithHomeCountry("OM"),
				Store: db.Certificates(nil), Auditor: log})
			if err != nil {
				t.Fatal(err)
			}
			srv, err := est.New(est.Config{Enrol: service(home), Issuer: home, CACertificates: []*x509.Certificate{pki.CAs["citizen"]}, Root: pki.Root})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			srv.Register(mux)
			ts := httptest.NewTLSServer(mux)
			t.Cleanup(ts.Close)

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
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "country AE") ||
				!strings.Contains(string(body), "OM only") || !strings.Contains(string(body), "ca.profiles.countries") {
				t.Fatalf("simpleenroll for IDCAE-12345678: %d %s", resp.StatusCode, body)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			spki, _ := x509.MarshalPKIXPublicKey(k.Public())
			if serial, err := db.Certificates(nil).FindIssued(t.Context(), "citizen-auth", sha256.Sum256(spki), time.Now()); err != nil || serial != "" {
				t.Fatalf("certificate %q stored for the refused key (%v)", serial, err)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "refused"); n != 1 {
				t.Fatalf("%d certificate.issue refusals audited, want 1", n)
			}
		})
	}
}

// A certificate of another country's citizen (IDCAE-<n>), issued while
// the CA issued to any country, is not re-enrolled (simplereenroll) once
// the CA of an OM deployment issues to OM only: 400 naming the country,
// the one allowed and ca.profiles.countries; nothing issued, the CA's
// refusal audited, and the current certificate stays valid.
func TestESTReenrolRefusesOtherCountry(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			// Before: the CA issued to any country.
			before, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
				Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: key})
			if err != nil {
				t.Fatal(err)
			}
			c, err := before.Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "AE"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			e, err := before.CheckSecret(t.Context(), c.Reference, c.Secret)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
			got, err := before.Enrol(t.Context(), e, "est:test", enrol.Key{CSR: csr}, "est")
			if err != nil || got.Certificate.Subject.SerialNumber != "IDCAE-12345678" {
				t.Fatalf("enrolment of IDCAE-12345678 before the rule: %v", err)
			}

			// Now: the same CA as hierarchy.OpenAuthority builds it for OM,
			// re-enrolling through its Renewer as `thiqa serve` wires it.
			profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
			if err != nil {
				t.Fatal(err)
			}
			var issuers []*ca.Issuer
			for _, name := range []string{policies.IssuerCitizen, policies.IssuerOrganisation, policies.IssuerTSA} {
				is, err := ca.NewIssuer(pki.CAs[name], pki.Keys[name], ca.IssuerOptions{Name: name, BaseURL: "http://pki.thiqa.test"})
				if err != nil {
					t.Fatal(err)
				}
				issuers = append(issuers, is)
			}
			home, err := ca.NewAuthority(ca.AuthorityConfig{Root: pki.Root, Issuers: issuers, Profiles: profiles.WithHomeCountry("OM"),
				Store: db.Certificates(nil), Auditor: log})
			if err != nil {
				t.Fatal(err)
			}
			renewer, err := ca.NewRenewer(ca.RenewerConfig{Authority: home, Store: db.Certificates(nil)})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: home, Certificates: db.Certificates(nil),
				Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: key,
				Renewer: enrol.CARenewer{Renewals: renewer}})
			if err != nil {
				t.Fatal(err)
			}
			srv, err := est.New(est.Config{Enrol: svc, Issuer: home, CACertificates: []*x509.Certificate{pki.CAs["citizen"]}, Root: pki.Root})
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
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("simplereenroll of IDCAE-12345678 after the rule: %d %s, want 400", resp.StatusCode, body)
			}
			for _, want := range []string{"country AE", "OM only", "ca.profiles.countries"} {
				if !strings.Contains(string(body), want) {
					t.Errorf("simplereenroll refusal %s does not say %q", body, want)
				}
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != issued {
				t.Fatalf("%d certificates issued by the refused re-enrolment", n-issued)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "refused"); n != 1 {
				t.Fatalf("%d certificate.issue refusals audited, want 1", n)
			}
			rec, err := db.Certificates(nil).GetCertificate(t.Context(), hex.EncodeToString(got.Certificate.SerialNumber.Bytes()))
			if err != nil || rec.Revoked {
				t.Fatalf("the current certificate after the refused re-enrolment: revoked %v (%v)", rec != nil && rec.Revoked, err)
			}
		})
	}
}
