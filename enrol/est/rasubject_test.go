package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
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
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// oidSerialNumber is the X.520 serialNumber attribute.
var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// An RA's simpleenroll takes the subject from its CSR: C for the
// country, serialNumber IDC<C>-<number> for the civil number. A CSR that
// names citizen IDCAE-12345678 under C=OM is refused (400 naming the
// serialNumber, nothing issued, the CA's refusal audited) where it used
// to be certified as IDCOM-12345678: another person, holding the AE
// citizen's key. A CSR whose C and serialNumber agree is certified.
func TestESTRASubjectSerialNumberAgreesWithCountry(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, enroll := raEnroll(t, d)

			person := func(serialNumber string) pkix.Name {
				return pkix.Name{CommonName: "Aisha Al Harthy", Country: []string{"OM"}, ExtraNames: []pkix.AttributeTypeAndValue{
					{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Al Harthy"},
					{Type: oidSerialNumber, Value: serialNumber}}}
			}

			st, body := enroll(person("IDCAE-12345678"))
			if st != http.StatusBadRequest || !strings.Contains(body, "serialNumber IDCAE-12345678") ||
				!strings.Contains(body, "country OM") {
				t.Fatalf("RA simpleenroll for C=OM, serialNumber IDCAE-12345678: %d %s, want 400 naming the serialNumber", st, body)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "refused"); n != 1 {
				t.Fatalf("%d certificate.issue refusals audited, want 1", n)
			}
			if st, body := enroll(person("IDCOM-12345678")); st != http.StatusOK {
				t.Fatalf("RA simpleenroll for C=OM, serialNumber IDCOM-12345678: %d %s", st, body)
			}
		})
	}
}

// An RA's simpleenroll whose CSR names two countries or two serialNumbers
// is refused (400 naming the attribute, nothing issued, the CA's refusal
// audited): it used to be certified with whichever came last.
func TestESTRASubjectRepeatedAttributesRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, enroll := raEnroll(t, d)

			oidC := asn1.ObjectIdentifier{2, 5, 4, 6}
			person := []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"},
				{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Al Harthy"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "Aisha Al Harthy"}}
			for _, c := range []struct {
				name  string
				names []pkix.AttributeTypeAndValue
				says  string
			}{
				{"two C", append([]pkix.AttributeTypeAndValue{{Type: oidC, Value: "AE"}, {Type: oidC, Value: "OM"},
					{Type: oidSerialNumber, Value: "IDCOM-12345678"}}, person...), "more than one C attribute"},
				{"two serialNumber", append([]pkix.AttributeTypeAndValue{{Type: oidC, Value: "OM"},
					{Type: oidSerialNumber, Value: "IDCOM-12345678"}, {Type: oidSerialNumber, Value: "IDCOM-87654321"}}, person...), "more than one serialNumber attribute"},
			} {
				if st, body := enroll(pkix.Name{ExtraNames: c.names}); st != http.StatusBadRequest || !strings.Contains(body, c.says) {
					t.Fatalf("RA simpleenroll with %s: %d %s, want 400 saying %q", c.name, st, body, c.says)
				}
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "refused"); n != 2 {
				t.Fatalf("%d certificate.issue refusals audited, want 2", n)
			}
		})
	}
}

// raEnroll starts an EST server over a fresh store of dialect d (its own
// test CA hierarchy and audit log) that takes every client as an RA
// (mTLS), and returns the store and a function that posts a CSR with
// subject and email addresses to citizen-auth's simpleenroll and answers
// the status and the body.
func raEnroll(t *testing.T, d storetest.Dialect) (*store.DB, func(subject pkix.Name, emails ...string) (int, string)) {
	t.Helper()
	db, post := raServer(t, d)
	return db, func(subject pkix.Name, emails ...string) (int, string) {
		t.Helper()
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject, EmailAddresses: emails}, k)
		if err != nil {
			t.Fatal(err)
		}
		return post(csr)
	}
}

// raServer is raEnroll's server: it returns the store and a function that
// posts a DER CSR to citizen-auth's simpleenroll as the RA.
func raServer(t *testing.T, d storetest.Dialect) (*store.DB, func(csr []byte) (int, string)) {
	t.Helper()
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	secretKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: secretKey})
	if err != nil {
		t.Fatal(err)
	}
	ra := func(*http.Request) (*auth.Principal, error) {
		return &auth.Principal{Subject: "ra-1", Roles: []policies.Role{policies.RoleRegistrationOfficer}, Method: auth.MethodMTLS}, nil
	}
	srv, err := est.New(est.Config{Enrol: svc, Issuer: pki.Authority, CACertificates: []*x509.Certificate{pki.CAs["citizen"]},
		Root: pki.Root, Authenticate: ra})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	ts := httptest.NewUnstartedServer(mux)
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	client := ts.Client()
	client.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{raCertificate(t)}
	return db, func(csr []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/.well-known/est/citizen-auth/simpleenroll",
			strings.NewReader(base64.StdEncoding.EncodeToString(csr)))
		req.Header.Set("Content-Type", "application/pkcs10")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
}

// raCertificate is a self-signed client certificate: the test's
// Authenticate makes its holder an RA whatever it says.
func raCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "RA 1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}
