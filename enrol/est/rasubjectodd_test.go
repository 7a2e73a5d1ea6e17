package est_test

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/http"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// A hostile RA's simpleenroll with a subject the CA cannot read as one
// person is refused with a 400 that says why, never certified with what
// the CA happened to keep, and never a panic or a 500: a serialNumber of
// another identity type (PAS, EN 319 412-1 §5.1.3) or with a lower-case
// country (it used to read "civilNumber: missing", which does not say
// why), two email addresses in the subjectAltName (the first alone used
// to be certified), a serialNumber or a C of a string type Go does not
// read (OCTET STRING, UniversalString: named as not a string, where it
// used to read "civilNumber: missing"), an empty CN (named as empty,
// where it used to read "missing"), a lower-case C.
func TestESTRASubjectOddAttributesRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, post := raEnroll(t, d)

			oidC, oidCN := asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 3}
			given := pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"}
			sur := pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Al Harthy"}
			cn := pkix.AttributeTypeAndValue{Type: oidCN, Value: "Aisha Al Harthy"}
			om := pkix.AttributeTypeAndValue{Type: oidC, Value: "OM"}
			sn := func(v any) pkix.AttributeTypeAndValue {
				return pkix.AttributeTypeAndValue{Type: oidSerialNumber, Value: v}
			}
			// UniversalString (tag 28), UCS-4: "OM".
			universal := asn1.RawValue{Class: asn1.ClassUniversal, Tag: 28, Bytes: []byte{0, 0, 0, 'O', 0, 0, 0, 'M'}}
			enroll := func(names []pkix.AttributeTypeAndValue, emails ...string) (int, string) {
				t.Helper()
				return post(pkix.Name{ExtraNames: names}, emails...)
			}
			refused := 0
			for _, c := range []struct {
				name   string
				names  []pkix.AttributeTypeAndValue
				emails []string
				says   []string
			}{
				{"serialNumber PASOM-", []pkix.AttributeTypeAndValue{om, given, sur, sn("PASOM-12345678"), cn}, nil,
					[]string{`serialNumber \"PASOM-12345678\" is not a national identity number IDC\u003cC\u003e-\u003ccivil number\u003e`}},
				{"serialNumber IDCom-", []pkix.AttributeTypeAndValue{om, given, sur, sn("IDCom-12345678"), cn}, nil,
					[]string{`serialNumber \"IDCom-12345678\" is not a national identity number`}},
				{"serialNumber with a space", []pkix.AttributeTypeAndValue{om, given, sur, sn("IDCOM-1234 5678"), cn}, nil,
					[]string{`serialNumber \"IDCOM-1234 5678\"`}},
				{"two email addresses", []pkix.AttributeTypeAndValue{om, given, sur, sn("IDCOM-12345678"), cn},
					[]string{"aisha@example.om", "other@example.ae"}, []string{"more than one email address"}},
				{"serialNumber OCTET STRING", []pkix.AttributeTypeAndValue{om, given, sur, sn([]byte("IDCOM-12345678")), cn}, nil,
					[]string{`civilNumber`, "the request's serialNumber attribute is not a string the CA can read"}},
				{"C UniversalString", []pkix.AttributeTypeAndValue{{Type: oidC, Value: universal}, given, sur, sn("IDCOM-12345678"), cn}, nil,
					[]string{`country`, "the request's C attribute is not a string the CA can read"}},
				{"empty CN", []pkix.AttributeTypeAndValue{om, given, sur, sn("IDCOM-12345678"), {Type: oidCN, Value: ""}}, nil,
					[]string{`commonName`, "the request's CN attribute is empty, which the certificate would not carry"}},
				{"lower-case C", []pkix.AttributeTypeAndValue{{Type: oidC, Value: "om"}, given, sur, sn("IDCom-12345678"), cn}, nil,
					[]string{`serialNumber \"IDCom-12345678\"`}},
			} {
				st, body := enroll(c.names, c.emails...)
				if st != http.StatusBadRequest {
					t.Errorf("RA simpleenroll with %s: %d %s, want 400", c.name, st, body)
					continue
				}
				refused++
				for _, w := range c.says {
					if !strings.Contains(body, w) {
						t.Errorf("RA simpleenroll with %s: %s, want it to say %s", c.name, body, w)
					}
				}
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := storetest.AuditCount(t, db, "certificate.issue", "refused"); n != refused {
				t.Fatalf("%d certificate.issue refusals audited, want %d", n, refused)
			}
			if st, body := enroll([]pkix.AttributeTypeAndValue{om, given, sur, sn("IDCOM-12345678"), cn}, "aisha@example.om"); st != http.StatusOK {
				t.Fatalf("RA simpleenroll with one email address: %d %s", st, body)
			}
		})
	}
}
