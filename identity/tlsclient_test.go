package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestTLSClientAuth: a portal authenticating with its TLS client
// certificate (RFC 8705 tls_client_auth), verified by the TLS layer.
func TestTLSClientAuth(t *testing.T) {
	e := newEnv(t, false)
	// A portal certificate from the test CA.
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(999), Subject: pkix.Name{CommonName: "portal.example.om", Organization: []string{"Ministry"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.pki.root, &pk.PublicKey, e.pki.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	portalCert, _ := x509.ParseCertificate(der)
	e.store.clients["tls-portal"] = &Client{ID: "tls-portal", Name: "TLS portal", RedirectURIs: []string{testRedir}, AllowCivilNumber: true,
		AuthMethod: AuthTLSClient, TLSSubject: portalCert.Subject.String()}

	// A second provider instance behind a TLS server verifying client certificates.
	pool := x509.NewCertPool()
	pool.AddCert(e.pki.root)
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, err := New(Config{Issuer: srv.URL, Signer: signKey, PairwiseSecret: make([]byte, 32), Store: e.store, Status: e.status,
		Directory: e.dir, Keys: e.dir, PINs: e.pins, Audit: e.audit, Registerer: prometheus.NewRegistry(),
		PhoneAuth: fakePhoneAuth, Caller: fakeCaller})
	if err != nil {
		t.Fatal(err)
	}
	p.Register(mux)
	e.srv, e.p = srv, p

	q := e.authQuery()
	q.Set("client_id", "tls-portal")
	e.client = e.store.clients["tls-portal"]
	e.browser = srv.Client()
	e.browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	code := func() string {
		s, k, c := e.startMobile(q, testCivil)
		e.approve(s, c, testPIN)
		rq, _ := e.complete(s, k)
		return rq.Get("code")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedir}, "code_verifier": {testVerifer}, "client_id": {"tls-portal"}}
	// Without the certificate: invalid_client.
	if st, out := e.exchange(form); st != 401 || out["error"] != "invalid_client" {
		t.Fatalf("no certificate: %d %v", st, out)
	}
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: pk}}
	e.portal = &http.Client{Transport: tr}
	form.Set("code", code())
	st, out := e.exchange(form)
	if st != 200 {
		t.Fatalf("tls_client_auth: %d %v", st, out)
	}
	ic := e.parseIDToken(out["id_token"].(string))
	if ic.Subject != testCivil {
		t.Fatalf("client allowed the civil number got sub %q", ic.Subject)
	}
	// A certificate with another subject: invalid_client.
	e.store.clients["tls-portal"].TLSSubject = "CN=someone else"
	form.Set("code", code())
	if st, out := e.exchange(form); st != 401 || !strings.Contains(out["error_description"].(string), "subject") {
		t.Fatalf("wrong subject: %d %v", st, out)
	}
}
