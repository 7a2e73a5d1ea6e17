package portal

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestOfficerRevokeConfirmNamesTheHolder: the page that asks the officer to
// confirm a revocation names the holder field by field in the page's
// language (type, names, identifier), as the certificate's page does; it
// showed the raw distinguished name, with the given name and surname as
// OIDs and hex ("2.5.4.42=#1305…"), which no officer can check at the desk.
func TestOfficerRevokeConfirmNamesTheHolder(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{CommonName: "Aisha Al Balushi", Country: []string{"OM"}, SerialNumber: "IDCOM-12345678",
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Al Balushi"},
		}}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(0x0a1b), Subject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	f := newFixture(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"serial": "0a1b", "ca": "citizen", "profile": "citizen-auth", "status": "valid",
			"certificate": certPEM, "notBefore": tpl.NotBefore, "notAfter": tpl.NotAfter})
	}
	for lang, want := range map[string][]string{
		"en": {"Citizen authentication (mobile ID)", "<dt>Given name</dt><dd><bdi>Aisha</bdi>", "<dt>Family name</dt><dd><bdi>Al Balushi</bdi>", "IDCOM-12345678"},
		"ar": {"شهادة مصادقة للمواطن", "<dt>الاسم الأول</dt><dd><bdi>Aisha</bdi>", "<dt>اسم العائلة</dt><dd><bdi>Al Balushi</bdi>"},
	} {
		o := f.client()
		token := csrf(t, o.do("GET", "/ra/?lang="+lang, nil))
		o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
		token = csrf(t, o.do("GET", "/ra/certificate?serial=0a1b&lang="+lang, nil))
		w := o.do("POST", "/ra/revoke?lang="+lang, url.Values{"csrf": {token}, "serial": {"0a1b"}, "reason": {"keyCompromise"}})
		body := w.Body.String()
		if w.Code != http.StatusOK || !strings.Contains(body, `id="revoke-confirm"`) {
			t.Fatalf("%s: %d\n%s", lang, w.Code, body)
		}
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the confirmation lacks %q", lang, s)
			}
		}
		if strings.Contains(body, "2.5.4.") || strings.Contains(body, "=#13") {
			t.Errorf("%s: the confirmation shows the raw name:\n%s", lang, body)
		}
	}
}
