package cmp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// An RA's request for a citizen whose serialNumber is not IDC<C>-<number>
// (a passport number, PAS of EN 319 412-1 §5.1.3; a lower-case country)
// is refused badCertTemplate with a statusString naming the serialNumber,
// in a p10cr's CSR as in an ir's template (it used to say "civilNumber:
// missing"); a template whose serialNumber is an OCTET STRING, or whose
// Name is empty, is refused too, never certified and never a panic.
func TestCMPRASubjectOddSerialNumberRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f, ra := newRAFixture(t, d)
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			octets := raSubjectName("")
			octets.ExtraNames[2].Value = []byte("IDCOM-12345678")
			refusals := 0
			for _, c := range []struct {
				name    string
				subject pkix.Name
				says    string
			}{
				{"serialNumber PASOM-", raSubjectName("PASOM-12345678"), `serialNumber "PASOM-12345678" is not a national identity number IDC<C>-<civil number>`},
				{"serialNumber IDCom-", raSubjectName("IDCom-12345678"), `serialNumber "IDCom-12345678"`},
				{"serialNumber OCTET STRING", octets, `subject field "civilNumber": the request's serialNumber attribute is not a string the CA can read`},
				{"empty Name", pkix.Name{}, "missing"},
			} {
				refusals += raRefused(t, f, ra, c.name, certReqBodySubject(t, k, c.subject), &x509.CertificateRequest{Subject: c.subject}, k, c.says)
			}
			if n := f.count(t, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := f.count(t, "certificate.issue", "refused"); n != refusals {
				t.Fatalf("%d certificate.issue refusals audited, want %d", n, refusals)
			}
		})
	}
}
