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
// subject, a keyUsage, extKeyUsage or basicConstraints other than the
// profile's, an issuerAltName, asked for by openssl req -addext. They used
// to be dropped without a word. A CSR from openssl req with the citizen's
// subject and nothing else is certified, with an email in its
// subjectAltName too, and so is one asking for the profile's keyUsage,
// extKeyUsage, basicConstraints CA:FALSE and its key's identifier.
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
			// A keyUsage, extKeyUsage or basicConstraints other than the
			// profile's (citizen-auth: digitalSignature, clientAuth, CA:FALSE).
			for _, c := range []struct{ addext, says string }{
				{"keyUsage=critical,digitalSignature,keyEncipherment", "the request's keyUsage extension is not the one profile citizen-auth puts in the certificate (bits 000000101, the profile's 000000001)"},
				{"extendedKeyUsage=serverAuth", "extKeyUsage extension is not the one profile citizen-auth puts in the certificate (purposes [1.3.6.1.5.5.7.3.1], the profile's [1.3.6.1.5.5.7.3.2])"},
				{"basicConstraints=critical,CA:TRUE", "basicConstraints extension is not the one profile citizen-auth puts in the certificate (a CA or a path length"},
				{"issuerAltName=email:ra@example.om", "asks for the issuerAltName extension, which the CA does not take from a request"},
			} {
				if st, body := post(opensslCSR(c.addext)); st != http.StatusBadRequest || !strings.Contains(body, c.says) {
					t.Fatalf("RA simpleenroll with openssl req -addext %s: %d %s, want 400 saying %q", c.addext, st, body, c.says)
				}
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "refused"); n != 5 {
				t.Fatalf("%d certificate.issue refusals audited, want 5", n)
			}
			if st, body := post(opensslCSR()); st != http.StatusOK {
				t.Fatalf("RA simpleenroll with openssl req's plain CSR: %d %s", st, body)
			}
			if st, body := post(opensslCSR("subjectAltName=email:aisha@example.om")); st != http.StatusOK {
				t.Fatalf("RA simpleenroll with openssl req -addext subjectAltName=email: %d %s", st, body)
			}
			// What the certificate carries anyway is asked for without harm:
			// Windows certreq, keytool, step and cfssl CSRs ask for some of
			// it (subjectKeyIdentifier=hash is RFC 5280's SHA-1 of the key).
			profile := []string{"keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth", "basicConstraints=CA:FALSE",
				"subjectKeyIdentifier=hash"}
			if st, body := post(opensslCSR(profile...)); st != http.StatusOK {
				t.Fatalf("RA simpleenroll with openssl req -addext %v: %d %s", profile, st, body)
			}
		})
	}
}
