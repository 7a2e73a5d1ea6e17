package portal

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
)

// certAuth is a real Authenticator whose client CA is a fresh test CA; it
// refuses the certificates in revoked (by serial) as revoked. issue makes
// a citizen's client certificate of the CA valid until notAfter (its
// chain, leaf first).
func certAuth(t *testing.T, now func() time.Time, revoked map[string]bool) (*auth.Authenticator, func(notAfter time.Time) []*x509.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := now().Add(-24 * time.Hour)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Client CA"},
		NotBefore: start, NotAfter: now().AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	path := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{MTLS: auth.MTLSConfig{ClientCAFiles: []string{path}}}, auth.Options{Now: now,
		CheckCertificate: func(_ context.Context, chain []*x509.Certificate) error {
			if revoked[chain[0].SerialNumber.String()] {
				return fmt.Errorf("%w: revoked", auth.ErrCertificateRefused)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	serial := int64(1)
	issue := func(notAfter time.Time) []*x509.Certificate {
		serial++
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "Citizen", SerialNumber: "IDCOM-12345678"},
			NotBefore: start, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		return []*x509.Certificate{leaf, ca}
	}
	return a, issue
}

// TestPhoneCertificateSignIn: a phone whose browser presents a citizen's
// client certificate at /my/approve is signed in by it; the sign-in is
// recorded (web.login) before its session exists, as a token's is, and
// while it cannot be recorded no session is opened. A certificate that
// verified but is refused (revoked, expired) names who presented it: each
// such visit is recorded, past the address's budget of anonymous refusals
// too, answered 401 on the sign-in page, and opens no session.
func TestPhoneCertificateSignIn(t *testing.T) {
	revoked := map[string]bool{}
	var issue func(time.Time) []*x509.Certificate
	f := newFixtureWith(t, func(o *Options) {
		var a *auth.Authenticator
		a, issue = certAuth(t, o.Now, revoked)
		o.Authenticate = a.Authenticate
	})
	visit := func(chain []*x509.Certificate) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/my/approve?lang=en", nil)
		r.RemoteAddr = "198.51.100.30:4000"
		r.TLS = &tls.ConnectionState{PeerCertificates: chain, VerifiedChains: [][]*x509.Certificate{chain}}
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w
	}
	// opened: the page is a signed-in citizen's (a session was opened).
	opened := func(w *httptest.ResponseRecorder) bool { return strings.Contains(w.Body.String(), "Signed in as") }
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[]`))
	}
	good := issue(f.clock.Add(365 * 24 * time.Hour))
	f.audit.setDown(true)
	if w := visit(good); w.Code != http.StatusInternalServerError || opened(w) {
		t.Fatalf("sign-in by certificate while the log is down: %d (signed in: %v), want 500 and no session", w.Code, opened(w))
	}
	f.audit.setDown(false)
	if w := visit(good); w.Code != http.StatusOK || !opened(w) {
		t.Fatalf("sign-in by certificate: %d (signed in: %v)\n%s", w.Code, opened(w), w.Body.String())
	}
	if got := f.audit.actions(); len(got) != 1 || got[0] != "web.login:success:12345678" {
		t.Fatalf("records %v, want the sign-in by certificate", got)
	}

	// The address's budget of anonymous refusals spent on forged CSRF
	// tokens; then a revoked and an expired certificate, 15 visits each.
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	for range 12 {
		c.do("POST", "/my/approve/login", url.Values{"csrf": {token + "x"}, "token": {"forged"}})
	}
	bad := issue(f.clock.Add(365 * 24 * time.Hour))
	revoked[bad[0].SerialNumber.String()] = true
	expired := issue(f.clock.Add(-time.Hour))
	before := len(f.audit.actions())
	for _, chain := range [][]*x509.Certificate{bad, expired} {
		for i := range 15 {
			if w := visit(chain); w.Code != http.StatusUnauthorized || opened(w) {
				t.Fatalf("certificate %s, visit %d: %d (signed in: %v), want 401 and no session", chain[0].SerialNumber, i+1, w.Code, opened(w))
			}
		}
	}
	got := f.audit.actions()[before:]
	if len(got) != 30 {
		t.Fatalf("%d records of 30 visits with refused certificates, want 30: %v", len(got), got)
	}
	for _, a := range got {
		if !strings.HasPrefix(a, "web.login:refused:") {
			t.Fatalf("records %v, want refused sign-ins", got)
		}
	}
}
