package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/thiqa/thiqa/policies"
)

// POST /api/v1/certificates takes the subject from the request's JSON
// alone, validated by the profile: a CSR whose own subject names another
// person (C=AE and C=OM, serialNumber IDCAE-…, another CN, two email
// addresses) changes nothing in the certificate. So this path needs
// neither Request.SerialNumber nor Request.SubjectRepeats, which check
// a subject the CA reads from a CSR or a CMP template (EST and CMP RAs,
// renewals).
func TestHTTPIssueSubjectFromJSONNotCSR(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	srv := httptest.NewServer(NewHandler(pki.authority, HandlerOptions{}))
	defer srv.Close()
	oidC, oidSN := asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 5}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "Mallory", ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidC, Value: "AE"}, {Type: oidC, Value: "OM"},
			{Type: oidSN, Value: "IDCAE-99999999"}}},
		EmailAddresses: []string{"mallory@example.ae", "other@example.ae"}}, p384(t))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON := subjectFor(policies.ProfileCitizenSigning)
	resp, body := post(t, srv.URL, IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: fromJSON,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("issue: %d %s", resp.StatusCode, body)
	}
	var ir IssueResponse
	if err := json.Unmarshal(body, &ir); err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(ir.Certificate))
	if blk == nil {
		t.Fatalf("no certificate in %s", body)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s := cert.Subject
	if !slices.Equal(s.Country, []string{"OM"}) || s.SerialNumber != "IDCOM-"+fromJSON["civilNumber"] || s.CommonName != fromJSON["commonName"] ||
		!slices.Equal(cert.EmailAddresses, []string{fromJSON["email"]}) || len(SubjectRepeats(cert)) != 0 {
		t.Fatalf("certificate subject %s, emails %v: not the JSON's %v", s, cert.EmailAddresses, fromJSON)
	}
}
