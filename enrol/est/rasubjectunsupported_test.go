package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store/storetest"
)

// An RA's simpleenroll whose CSR names what the certificate would not
// carry is refused (400 naming it and saying what the profiles carry,
// nothing issued, the CA's refusal audited): an OU and an L in the
// subject, a keyUsage extension asked for by openssl req -addext. They
// used to be dropped without a word. A CSR from openssl req with the
// citizen's subject and nothing else is certified, with an email in its
// subjectAltName too.
func TestESTRASubjectUnsupportedRefused(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	dir := t.TempDir()
	// opensslCSR is openssl req's DER CSR for the citizen, with -addext's,
	// for a new key.
	opensslCSR := func(addext ...string) []byte {
		t.Helper()
		key := filepath.Join(dir, "k.pem")
		if out, err := exec.Command(openssl, "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key).CombinedOutput(); err != nil {
			t.Fatalf("openssl ecparam: %v\n%s", err, out)
		}
		out := filepath.Join(dir, "r.der")
		args := []string{"req", "-new", "-key", key, "-subj", "/C=OM/serialNumber=IDCOM-12345678/GN=Aisha/SN=Al Harthy/CN=Aisha Al Harthy",
			"-outform", "DER", "-out", out}
		for _, e := range addext {
			args = append(args, "-addext", e)
		}
		if msg, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl req: %v\n%s", err, msg)
		}
		der, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, post := raServer(t, d)
			withOUandL := pkix.Name{CommonName: "Aisha Al Harthy", Country: []string{"OM"}, OrganizationalUnit: []string{"Finance"},
				Locality: []string{"Muscat"}, ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"},
					{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Al Harthy"}, {Type: oidSerialNumber, Value: "IDCOM-12345678"}}}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: withOUandL}, k)
			if err != nil {
				t.Fatal(err)
			}
			st, body := post(csr)
			for _, says := range []string{`subject field \"OU\": the request's subject names OU (2.5.4.11), which the certificate would not carry`,
				"names L (2.5.4.7)", "the CA's profiles put only C, serialNumber, organizationIdentifier, O, givenName, surname and CN"} {
				if st != http.StatusBadRequest || !strings.Contains(body, says) {
					t.Fatalf("RA simpleenroll with OU and L: %d %s, want 400 saying %q", st, body, says)
				}
			}
			if st, body := post(opensslCSR("keyUsage=critical,digitalSignature")); st != http.StatusBadRequest ||
				!strings.Contains(body, "asks for the keyUsage extension") {
				t.Fatalf("RA simpleenroll with openssl req -addext keyUsage: %d %s, want 400 naming keyUsage", st, body)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "refused"); n != 2 {
				t.Fatalf("%d certificate.issue refusals audited, want 2", n)
			}
			if st, body := post(opensslCSR()); st != http.StatusOK {
				t.Fatalf("RA simpleenroll with openssl req's plain CSR: %d %s", st, body)
			}
			if st, body := post(opensslCSR("subjectAltName=email:aisha@example.om")); st != http.StatusOK {
				t.Fatalf("RA simpleenroll with openssl req -addext subjectAltName=email: %d %s", st, body)
			}
		})
	}
}
