package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
)

// testPKI is a citizen CA with certificates made on demand.
type testPKI struct {
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	serial  int64
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Citizen CA", Country: []string{"OM"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	return &testPKI{root: root, rootKey: k, serial: 100}
}

// citizen issues a citizen-auth style certificate for civil with a fresh key.
func (p *testPKI) citizen(t testing.TB, civil string, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return p.citizenOf(t, "IDCOM-"+civil, notAfter)
}

// citizenOf is citizen for the subject serialNumber serialNumber.
func (p *testPKI) citizenOf(t testing.TB, serialNumber string, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	subj := pkix.Name{
		CommonName: "Aisha Al-Balushi", Country: []string{"OM"}, SerialNumber: serialNumber,
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Al-Balushi"},
		},
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: subj,
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, &k.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

// env is a provider over in-memory fakes behind an httptest server.
type env struct {
	t       testing.TB
	srv     *httptest.Server
	p       *Provider
	store   *memStore
	status  *memStatus
	dir     *memDirectory
	pins    *memPINs
	signing *memSigning
	audit   *memAudit
	pki     *testPKI
	reg     *prometheus.Registry
	client  *Client
	ckey    *ecdsa.PrivateKey // the client's private_key_jwt key
	browser *http.Client
	portal  *http.Client // the relying party's client at the token endpoint; nil: browser
	// signErr, when set, is the error of every signature by the
	// provider's token signing key (its HSM failing).
	signErr *atomic.Pointer[error]
}

// failingKey is a signing key that fails with *err while err is set.
type failingKey struct {
	crypto.Signer
	err *atomic.Pointer[error]
}

func (k failingKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if e := k.err.Load(); e != nil {
		return nil, *e
	}
	return k.Signer.Sign(r, digest, opts)
}

const (
	testCivil   = "12345678"
	testPIN     = "4711"
	testCredID  = "cred-1"
	testRedir   = "https://portal.example.om/cb"
	testVerifer = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier"
)

// newEnv starts a provider; tlsServer serves HTTPS asking for client
// certificates (mutual TLS).
func newEnv(t testing.TB, tlsServer bool) *env {
	t.Helper()
	return newEnvWith(t, tlsServer, nil)
}

// newEnvWith is newEnv with the provider's configuration changed by mod
// (when not nil) before New.
func newEnvWith(t testing.TB, tlsServer bool, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, store: newMemStore(), status: &memStatus{profiles: map[string]string{}, revoked: map[string]bool{}, onToken: map[string]bool{}},
		dir:  &memDirectory{creds: map[string]*RemoteCredential{}, keys: map[string]crypto.Signer{}},
		pins: &memPINs{pins: map[string]string{}, fails: map[string]int{}}, audit: &memAudit{}, pki: newTestPKI(t), reg: prometheus.NewRegistry(),
		signing: newMemSigning(), signErr: new(atomic.Pointer[error])}
	cert, key := e.pki.citizen(t, testCivil, time.Now().Add(24*time.Hour))
	e.status.profiles[cert.SerialNumber.String()] = ProfileCitizenAuth
	e.status.onToken[cert.SerialNumber.String()] = true // a mobile ID's key is on the token
	e.dir.creds[testCivil] = &RemoteCredential{ID: testCredID, Certificate: cert}
	e.dir.keys[testCredID] = key
	e.pins.pins[testCredID] = testPIN

	mux := http.NewServeMux()
	if tlsServer {
		e.srv = httptest.NewUnstartedServer(mux)
		e.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		e.srv.StartTLS()
	} else {
		e.srv = httptest.NewServer(mux)
	}
	t.Cleanup(e.srv.Close)
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	roots := x509.NewCertPool()
	roots.AddCert(e.pki.root)
	cfg := Config{
		Issuer: e.srv.URL, Signer: failingKey{signKey, e.signErr}, PairwiseSecret: []byte(strings.Repeat("s", 32)), CitizenRoots: roots,
		Store: e.store, Status: e.status, Directory: e.dir, Keys: e.dir, PINs: e.pins, Audit: e.audit, Registerer: e.reg,
		PhoneAuth: fakePhoneAuth, Caller: fakeCaller,
		Signing: &SigningConfig{Audience: testSigningAudience, Credentials: e.signing, MaxHashes: 4},
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Register(mux)
	e.p = p
	e.client, e.ckey = e.addClient("portal-1", false)
	e.browser = e.srv.Client()
	e.browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return e
}

// addClient registers a private_key_jwt client.
func (e *env) addClient(id string, civil bool) (*Client, *ecdsa.PrivateKey) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	c := &Client{ID: id, Name: "Portal " + id, RedirectURIs: []string{testRedir}, AllowCivilNumber: civil, AuthMethod: AuthPrivateKeyJWT, JWKS: set, Created: time.Now()}
	e.store.clients[id] = c
	return c, k
}

func challengeOf(verifier string) string {
	s := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// authQuery returns a valid authorization request for the env's client.
func (e *env) authQuery() url.Values {
	return url.Values{
		"client_id": {e.client.ID}, "redirect_uri": {testRedir}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"st-1"}, "nonce": {"n-1"}, "code_challenge": {challengeOf(testVerifer)}, "code_challenge_method": {"S256"},
	}
}

var (
	reCode    = regexp.MustCompile(`id="verification_code">(\d{4})<`)
	reSession = regexp.MustCompile(`name="login" value="([^"]+)"`)
	reKey     = regexp.MustCompile(`name="key" value="([^"]+)"`)
)

// startMobile posts the civil number and returns session, browser key and code.
func (e *env) startMobile(q url.Values, civil string) (session, key, code string) {
	e.t.Helper()
	return e.startMobileAt(PathAuthorize, q, civil)
}

// startMobileAt is startMobile at the authorization endpoint path.
func (e *env) startMobileAt(path string, q url.Values, civil string) (session, key, code string) {
	e.t.Helper()
	f := url.Values{}
	for k, v := range q {
		f[k] = v
	}
	f.Set("civil_number", civil)
	resp, err := e.browser.PostForm(e.srv.URL+path, f)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readBody(e.t, resp)
	if resp.StatusCode != 200 {
		e.t.Fatalf("start mobile: %d %s", resp.StatusCode, body)
	}
	m1, m2, m3 := reSession.FindStringSubmatch(body), reKey.FindStringSubmatch(body), reCode.FindStringSubmatch(body)
	if m1 == nil || m2 == nil || m3 == nil {
		e.t.Fatalf("wait page lacks session, key or code: %s", body)
	}
	return m1[1], m2[1], m3[1]
}

// approve posts the phone's approval with testCivil's credentials and
// returns the HTTP status.
func (e *env) approve(session, code, pin string) int {
	e.t.Helper()
	return e.approveAs(citizenCredential(testCivil), session, code, pin)
}

// approveAs posts the phone's approval with the given Authorization header
// value ("" for none) and returns the HTTP status.
func (e *env) approveAs(authz, session, code, pin string) int {
	e.t.Helper()
	b, _ := json.Marshal(ApproveRequest{Session: session, VerificationCode: code, PIN: pin})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathMobileApprove, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	readBody(e.t, resp)
	return resp.StatusCode
}

// listAs asks for the pending sessions with the given Authorization header
// value ("" for none) and query; it returns the status and the sessions.
func (e *env) listAs(authz, query string) (int, []PendingSession) {
	e.t.Helper()
	u := e.srv.URL + PathMobileList
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readBody(e.t, resp)
	var out []PendingSession
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			e.t.Fatalf("pending sessions: %v %s", err, body)
		}
	}
	return resp.StatusCode, out
}

// complete posts the browser's "continue" and returns the redirect query
// (nil when the answer is not a redirect) and the status.
func (e *env) complete(session, key string) (url.Values, int) {
	e.t.Helper()
	resp, err := e.browser.PostForm(e.srv.URL+PathComplete, url.Values{"login": {session}, "key": {key}})
	if err != nil {
		e.t.Fatal(err)
	}
	readBody(e.t, resp)
	return redirectQuery(e.t, resp), resp.StatusCode
}

func redirectQuery(t testing.TB, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		return nil
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.String(), testRedir) {
		t.Fatalf("redirected to %s, not the registered redirect URI", u)
	}
	return u.Query()
}

// mobileLogin runs a whole mobile login and returns the code.
func (e *env) mobileLogin() string {
	e.t.Helper()
	s, k, c := e.startMobile(e.authQuery(), testCivil)
	if st := e.approve(s, c, testPIN); st != 200 {
		e.t.Fatalf("approve: %d", st)
	}
	q, st := e.complete(s, k)
	if q == nil || q.Get("code") == "" {
		e.t.Fatalf("complete: status %d, query %v", st, q)
	}
	if q.Get("state") != "st-1" || q.Get("iss") != e.srv.URL {
		e.t.Fatalf("redirect lacks state or iss: %v", q)
	}
	return q.Get("code")
}

// assertion builds a private_key_jwt client assertion.
func (e *env) assertion(clientID string, key *ecdsa.PrivateKey, mod func(*jwt.Claims)) string {
	e.t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now()
	c := jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{e.srv.URL + PathToken},
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: randomToken(12)}
	if mod != nil {
		mod(&c)
	}
	s, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// exchange posts a token request and returns status and decoded JSON.
func (e *env) exchange(form url.Values) (int, map[string]any) {
	e.t.Helper()
	hc := e.browser
	if e.portal != nil {
		hc = e.portal
	}
	resp, err := hc.PostForm(e.srv.URL+PathToken, form)
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(readBody(e.t, resp)), &out)
	return resp.StatusCode, out
}

// tokenForm is a valid token request for code.
func (e *env) tokenForm(code string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedir}, "code_verifier": {testVerifer},
		"client_assertion_type": {clientAssertionType}, "client_assertion": {e.assertion(e.client.ID, e.ckey, nil)},
	}
}

func (e *env) userinfo(at string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, e.srv.URL+PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(readBody(e.t, resp)), &out)
	return resp.StatusCode, out
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseIDToken verifies an ID token with the provider's key.
func (e *env) parseIDToken(raw string) idClaims {
	e.t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		e.t.Fatal(err)
	}
	var c idClaims
	if err := tok.Claims(e.p.PublicJWK().Key, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func jwtPart(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func encPart(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
