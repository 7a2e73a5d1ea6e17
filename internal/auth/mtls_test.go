package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// testNotBefore starts the test certificates' validity before the fake
// clock's time (helpers_test.go), since certificates are checked against it.
var testNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key := newECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Thiqa Test"}, Country: []string{"OM"}},
		NotBefore:             testNotBefore,
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) writePEM(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (ca *testCA) issue(t *testing.T, subject pkix.Name) tls.Certificate {
	t.Helper()
	key := newECKey(t, elliptic.P256())
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    testNotBefore,
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func agencySubject(orgID string) pkix.Name {
	return pkix.Name{
		CommonName:   "Ministry of Health",
		Organization: []string{"Ministry of Health"},
		Country:      []string{"OM"},
		ExtraNames:   []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: orgID}},
	}
}

// mtlsServer starts a TLS server configured by a.ServerTLSConfig whose
// handler reports the principal Authenticate finds (or the error).
func mtlsServer(t *testing.T, a *Authenticator) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			w.Header().Set("X-Auth-Error", err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(struct {
			Subject, OrganizationIdentifier, CivilNumber, Method, Issuer string
			Roles                                                        []policies.Role
			Expires                                                      time.Time
		}{p.Subject, p.OrganizationIdentifier, p.CivilNumber, p.Method, p.Issuer, p.Roles, p.Expires})
	}))
	srv.TLS = a.ServerTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

type mtlsResult struct {
	Subject, OrganizationIdentifier, CivilNumber, Method, Issuer string
	Roles                                                        []policies.Role
	Expires                                                      time.Time
	status                                                       int
	authErr                                                      string
}

func callWithCert(t *testing.T, srv *httptest.Server, cert *tls.Certificate, token string) (mtlsResult, error) {
	t.Helper()
	client := srv.Client()
	tr := client.Transport.(*http.Transport).Clone()
	if cert != nil {
		// Always send the certificate, even when its issuer is not among the
		// server's acceptable CAs (Go's client would otherwise send none).
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return mtlsResult{}, err
	}
	defer resp.Body.Close()
	res := mtlsResult{status: resp.StatusCode, authErr: resp.Header.Get("X-Auth-Error")}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
	}
	return res, nil
}

func TestMTLS(t *testing.T) {
	ca := newTestCA(t, "Thiqa Test Client CA")
	operatorRule := MTLSRule{Subject: "CN=Operator One,O=Thiqa,C=OM", Role: policies.RoleOperator}
	rules := append([]MTLSRule{operatorRule}, DefaultMTLSRules()...)
	f := newFixture(t, nil)
	a, err := New(Config{
		Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSFile: f.jwks}},
		MTLS:    MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}, Rules: rules},
	}, Options{Logger: quietLogger(), Now: f.clock.Now, CheckCertificate: acceptAll})
	if err != nil {
		t.Fatal(err)
	}
	srv := mtlsServer(t, a)

	agency := ca.issue(t, agencySubject("NTROM-1234567"))
	res, err := callWithCert(t, srv, &agency, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 200 || res.Subject != "NTROM-1234567" || res.OrganizationIdentifier != "NTROM-1234567" ||
		res.Method != MethodMTLS || len(res.Roles) != 1 || res.Roles[0] != policies.RoleAgency || res.Issuer != ca.cert.Subject.String() ||
		!res.Expires.Equal(agency.Leaf.NotAfter) {
		t.Fatalf("agency: %+v", res)
	}

	citizen := ca.issue(t, pkix.Name{CommonName: "Aisha Al-Balushi", SerialNumber: "IDCOM-12345678", Country: []string{"OM"}})
	res, err = callWithCert(t, srv, &citizen, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 200 || res.Subject != "12345678" || res.CivilNumber != "12345678" || res.Roles[0] != policies.RoleCitizen {
		t.Fatalf("citizen: %+v", res)
	}

	operator := ca.issue(t, pkix.Name{CommonName: "Operator One", Organization: []string{"Thiqa"}, Country: []string{"OM"}})
	res, err = callWithCert(t, srv, &operator, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 200 || res.Subject != "CN=Operator One,O=Thiqa,C=OM" || res.Roles[0] != policies.RoleOperator {
		t.Fatalf("operator: %+v", res)
	}

	// A trusted certificate that matches no rule yields no principal.
	nobody := ca.issue(t, pkix.Name{CommonName: "Someone", SerialNumber: "PASOM-X1"})
	res, err = callWithCert(t, srv, &nobody, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.status != http.StatusUnauthorized {
		t.Fatalf("unmatched certificate: %+v", res)
	}

	// An untrusted certificate is refused by the TLS handshake.
	rogue := newTestCA(t, "Rogue CA").issue(t, agencySubject("NTROM-1234567"))
	if res, err = callWithCert(t, srv, &rogue, ""); err == nil {
		t.Fatalf("untrusted client certificate passed the handshake: %+v", res)
	}

	// No certificate and no token: no credentials.
	res, err = callWithCert(t, srv, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.status != http.StatusUnauthorized || res.authErr != ErrNoCredentials.Error() {
		t.Fatalf("no credentials: %+v", res)
	}

	// A bearer token takes precedence over the certificate.
	res, err = callWithCert(t, srv, &agency, f.sign(t, f.claims("12345678", "citizen")))
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 200 || res.Method != MethodJWT || res.Roles[0] != policies.RoleCitizen {
		t.Fatalf("token with certificate: %+v", res)
	}
}

func TestMTLSCertificateCheckAndChainAnchoring(t *testing.T) {
	ca := newTestCA(t, "Thiqa Test Client CA")
	revoked := fmt.Errorf("%w: certificate revoked", ErrCertificateRefused)
	unreachable := errors.New("database unreachable")
	a, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}}}, Options{
		Logger: quietLogger(),
		CheckCertificate: func(_ context.Context, chain []*x509.Certificate) error {
			if len(chain) < 2 || !chain[len(chain)-1].Equal(ca.cert) {
				return errors.New("chain not passed")
			}
			switch chain[0].Subject.SerialNumber {
			case "IDCOM-99999999":
				return revoked
			case "IDCOM-55555555":
				return unreachable
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := mtlsServer(t, a)
	good := ca.issue(t, pkix.Name{CommonName: "A", SerialNumber: "IDCOM-11111111"})
	if res, err := callWithCert(t, srv, &good, ""); err != nil || res.status != 200 {
		t.Fatalf("good citizen: %+v %v", res, err)
	}
	bad := ca.issue(t, pkix.Name{CommonName: "B", SerialNumber: "IDCOM-99999999"})
	if res, err := callWithCert(t, srv, &bad, ""); err != nil || res.status != 401 {
		t.Fatalf("revoked citizen: %+v %v", res, err)
	}
	// A status that cannot be learnt refuses too, but as unavailable.
	unknown := ca.issue(t, pkix.Name{CommonName: "C", SerialNumber: "IDCOM-55555555"})
	r0 := httptest.NewRequest(http.MethodGet, "/", nil)
	r0.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{unknown.Leaf},
		VerifiedChains: [][]*x509.Certificate{{unknown.Leaf, ca.cert}}}
	if _, err := a.Authenticate(r0); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("status unavailable: %v", err)
	}

	// Chains verified by a server with other client CAs are not trusted.
	other := newTestCA(t, "Other CA")
	leaf := other.issue(t, agencySubject("NTROM-1"))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Leaf},
		VerifiedChains: [][]*x509.Certificate{{leaf.Leaf, other.cert}}}
	if _, err := a.Authenticate(r); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("foreign chain: %v", err)
	}
	// An unverified certificate is refused.
	r.TLS.VerifiedChains = nil
	if _, err := a.Authenticate(r); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("unverified certificate: %v", err)
	}
}

func TestServerTLSConfig(t *testing.T) {
	ca := newTestCA(t, "CA")
	a, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}}}, Options{CheckCertificate: acceptAll})
	if err != nil {
		t.Fatal(err)
	}
	// Mutual TLS without a status check is refused: every path that
	// accepts a client certificate checks its status.
	if _, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}}}, Options{}); err == nil {
		t.Fatal("mutual TLS configured without a certificate status check")
	}
	base := &tls.Config{ServerName: "x"}
	cfg := a.ServerTLSConfig(base)
	if cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs == nil || cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "x" {
		t.Fatalf("config %+v", cfg)
	}
	if base.ClientAuth != tls.NoClientCert {
		t.Fatal("base modified")
	}
	if a.ClientCAPool() == nil {
		t.Fatal("no client CA pool")
	}
	plain, _ := New(Config{}, Options{})
	if c := plain.ServerTLSConfig(nil); c.ClientAuth != tls.NoClientCert || plain.ClientCAPool() != nil {
		t.Fatal("mTLS enabled without client CAs")
	}
	// Client CA files must hold CA certificates.
	leaf := ca.issue(t, pkix.Name{CommonName: "leaf"})
	p := filepath.Join(t.TempDir(), "leaf.pem")
	_ = os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}), 0o644)
	if _, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{p}}}, Options{CheckCertificate: acceptAll}); err == nil {
		t.Fatal("leaf certificate accepted as client CA")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(empty, []byte("nothing"), 0o644)
	if _, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{empty}}}, Options{CheckCertificate: acceptAll}); err == nil {
		t.Fatal("file without certificates accepted")
	}
}

// acceptAll is a certificate status check that finds nothing to refuse.
func acceptAll(context.Context, []*x509.Certificate) error { return nil }

func TestCivilNumber(t *testing.T) {
	for in, want := range map[string]string{
		"IDCOM-12345678": "12345678",
		"IDCAE-784-1990": "784-1990",
		"IDCOM-":         "",
		"IDCom-123":      "",
		"PASOM-123":      "",
		"IDC-OM-123":     "",
		"12345678":       "",
		"IDCOM-12 34":    "",
		"":               "",
	} {
		if got := CivilNumber(in); got != want {
			t.Errorf("CivilNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

// Recheck asks again what Authenticate asked of a client certificate: a
// certificate revoked after the sign-in, or past its end, no longer holds;
// one whose status cannot be learnt is unavailable, not refused.
func TestRecheckClientCertificate(t *testing.T) {
	ca := newTestCA(t, "Thiqa Test Client CA")
	status := map[string]error{}
	now := time.Now()
	a, err := New(Config{MTLS: MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}}}, Options{
		Logger: quietLogger(),
		Now:    func() time.Time { return now },
		CheckCertificate: func(_ context.Context, chain []*x509.Certificate) error {
			if len(chain) < 2 || !chain[len(chain)-1].Equal(ca.cert) {
				return errors.New("chain not passed")
			}
			return status[chain[0].Subject.SerialNumber]
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	card := ca.issue(t, pkix.Name{CommonName: "A", SerialNumber: "IDCOM-11111111"})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{card.Leaf},
		VerifiedChains: [][]*x509.Certificate{{card.Leaf, ca.cert}}}
	p, err := a.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Recheck(t.Context(), p); err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	status["IDCOM-11111111"] = errors.New("database unreachable")
	if err := a.Recheck(t.Context(), p); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("status unavailable: %v", err)
	}
	status["IDCOM-11111111"] = fmt.Errorf("%w: certificate revoked", ErrCertificateRefused)
	if err := a.Recheck(t.Context(), p); !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, ErrCertificateRefused) {
		t.Fatalf("revoked after the sign-in: %v", err)
	}
	delete(status, "IDCOM-11111111")
	now = card.Leaf.NotAfter.Add(time.Second)
	if err := a.Recheck(t.Context(), p); !errors.Is(err, ErrCertificateExpired) {
		t.Fatalf("past its end: %v", err)
	}
	// A principal no Authenticator made has nothing to recheck.
	if err := a.Recheck(t.Context(), &Principal{Subject: "x", Method: "oidc"}); err != nil {
		t.Fatalf("a principal of another kind: %v", err)
	}
}
