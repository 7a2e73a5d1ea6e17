package signing_test

// The world the signing service runs in, built for the tests from the real
// parts: a fresh SoftHSM token holding every key (the CAs', the OCSP
// responders', the TSA unit's and the credentials'), a fresh store of one
// dialect, the CA issuing into it, the OCSP responder and the CRLs over it
// and an RFC 3161 TSA, all served by one httptest server whose URL the
// certificates name; the service and its CSC API are mounted on the same
// mux behind the real authenticator, as `thiqa serve` mounts them.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/samplepdf"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer/pdftext"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/csc"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// world is a running signing service and everything around it.
type world struct {
	db        *store.DB
	tok       *hsm.Token
	authority *ca.Authority
	svc       *signing.Service
	srv       *httptest.Server
	minter    *josesigner.Signer
	// idp signs delegated access tokens (the digital ID's CSC OAuth2
	// authorization server); api is the CSC API it activates credentials of.
	idp *josesigner.Signer
	api *csc.API
	// keyType is the type of the credentials' keys.
	keyType hsm.KeyType
	// tmp holds the test's files; nss the NSS database trusting the root.
	tmp, nss string
	root     *x509.Certificate
	// svcTemp is the service's Config.TempDir.
	svcTemp  string
	cas      map[string]*x509.Certificate // issuing CAs by name
	serials  map[string]string            // credential ID → certificate serial
	sealCred string
	// auditGate, when down, makes the signing service's audit appends
	// fail (the authentication layer's still work).
	auditGate *audittest.Gate
	// keysDown, when set, makes every credential key fail as a token that
	// cannot be used for now (an error marked by outage.Mark, as hsm's).
	keysDown *atomic.Bool
	// mobilePINs are the mobile IDs' login PINs (worldOptions.mobileIDs).
	mobilePINs *pin.Manager
}

// worldOptions vary the world.
type worldOptions struct {
	// keyType of the credentials' keys; ECP256 when zero.
	keyType hsm.KeyType
	// tsaURL, when set, is the TSA the service asks instead of the world's.
	tsaURL string
	// timeout bounds each call to the TSA and the revocation services;
	// 10s when zero.
	timeout time.Duration
	// pinClock, when set, is the clock of the PINs' activation codes.
	pinClock func() time.Time
	// now, when set, is the signing service's clock (SAD expiry).
	now func() time.Time
	// country is the deployment's (signing.Options.Country).
	country string
	// mobileIDs serves the identity store's mobile IDs (world.mobilePINs
	// their login PINs) at the credential endpoints, as cmd/thiqa does.
	mobileIDs bool
	// firstPINActivation is signing.pinPolicy.firstPINActivation.
	firstPINActivation bool
	// issuers is signing.Options.IssuerRevocations.
	issuers signing.IssuerRevocations
}

// testPIN is the credentials' signing PIN in these tests.
const testPIN = "482916"

func newWorld(t *testing.T, d storetest.Dialect, o worldOptions) *world {
	t.Helper()
	ctx := context.Background()
	if o.keyType == 0 {
		o.keyType = hsm.ECP256
	}
	if o.timeout == 0 {
		o.timeout = 10 * time.Second
	}
	w := &world{keysDown: new(atomic.Bool), keyType: o.keyType, tmp: t.TempDir(), svcTemp: t.TempDir(), cas: map[string]*x509.Certificate{}, serials: map[string]string{}}
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("sg")
	if err := hsm.InitToken(module, label, "so-pin-1234", "user-pin-5678"); err != nil {
		t.Fatal(err)
	}
	tok, err := hsm.Open(ctx, hsm.Config{ModulePath: module, TokenLabel: label, PIN: "user-pin-5678"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	w.tok = tok
	w.db = storetest.Open(t, d.NewConfig(t))
	logger := slog.New(slog.DiscardHandler)
	log := audit.New(w.db, logger, nil, audit.Options{})
	w.auditGate = audittest.New(log)
	t.Cleanup(log.Close)

	mux := http.NewServeMux()
	var ocspGET http.Handler
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// GET /ocsp/{base64} bypasses the mux, which would clean a "//".
		if strings.HasPrefix(r.URL.Path, "/ocsp/") && r.Method == http.MethodGet {
			ocspGET.ServeHTTP(rw, r)
			return
		}
		mux.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.srv.Close)
	base := w.srv.URL

	// The CA hierarchy, every key on the token.
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const year = 365 * 24 * time.Hour
	rootKey := w.generateKey(t, "root-ca", hsm.ECP384)
	if w.root, err = ca.CreateRoot(rootKey, ca.RootConfig{CommonName: "Thiqa Test Root CA", Organization: "Thiqa Test",
		OrganizationIdentifier: "NTROM-0000000", Country: "OM", Validity: 20 * year}); err != nil {
		t.Fatal(err)
	}
	names := []string{policies.IssuerCitizen, policies.IssuerOrganisation, policies.IssuerTSA}
	caKeys := map[string]crypto.Signer{}
	var issuers []*ca.Issuer
	for _, name := range names {
		key := w.generateKey(t, name+"-ca", hsm.ECP384)
		cert, err := ca.CreateIssuingCA(w.root, rootKey, key, ca.IssuingCAConfig{Name: name, CommonName: "Thiqa Test " + name + " CA",
			Organization: "Thiqa Test", OrganizationIdentifier: "NTROM-0000000", Country: "OM", Validity: 10 * year,
			BaseURL: base, Policies: ca.IssuingCAPolicies(profiles, name)})
		if err != nil {
			t.Fatal(err)
		}
		is, err := ca.NewIssuer(cert, key, ca.IssuerOptions{Name: name, BaseURL: base})
		if err != nil {
			t.Fatal(err)
		}
		w.cas[name], caKeys[name] = cert, key
		issuers = append(issuers, is)
	}
	if w.authority, err = ca.NewAuthority(ca.AuthorityConfig{Root: w.root, Issuers: issuers, Profiles: profiles,
		Store: w.db.Certificates(nil), Auditor: log}); err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /certs/{file}", ca.NewHandler(w.authority, ca.HandlerOptions{}))

	// OCSP: a delegated responder per issuing CA.
	var responders []ocsp.Issuer
	for _, name := range names {
		key := w.generateKey(t, "ocsp-"+name, hsm.ECP256)
		cert := w.issue(t, policies.ProfileOCSPResponder, name, serviceSubject("OCSP Responder "+name), key, "")
		responders = append(responders, ocsp.Issuer{Name: name, Cert: w.cas[name], Responder: ocsp.ResponderCert{Cert: cert, Signer: key}})
	}
	ocspSet, err := ocsp.Config{}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	responder, err := ocsp.New(ocspSet, responders, w.db.Revocations(), ocsp.NewCache(ocspSet.CacheEntries), logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("POST /ocsp", responder)
	ocspGET = responder

	// CRLs: the root's (for the issuing CAs) and each issuing CA's.
	crlSet, err := crl.Config{BaseURL: base}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	rs := w.db.Revocations()
	gen, err := crl.NewGenerator(crlSet, crl.Issuer{Name: "root", Cert: w.root, Signer: rootKey, CACerts: true}, rs, rs)
	if err != nil {
		t.Fatal(err)
	}
	gens := []*crl.Generator{gen}
	for _, name := range names {
		if gen, err = crl.NewGenerator(crlSet, crl.Issuer{Name: name, Cert: w.cas[name], Signer: caKeys[name]}, rs, rs); err != nil {
			t.Fatal(err)
		}
		gens = append(gens, gen)
	}
	publisher, err := crl.NewPublisher(crlSet, logger, nil, gens...)
	if err != nil {
		t.Fatal(err)
	}
	if err := publisher.PublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /crl/{file}", publisher)

	// The TSA, its unit certified by the tsa CA.
	unitKey := w.generateKey(t, "tsa-unit", hsm.ECP256)
	unit := w.issue(t, policies.ProfileTSAUnit, policies.IssuerTSA, serviceSubject("Thiqa Test TSA"), unitKey, "tsa-unit")
	serials, err := timestamp.NewBlockAllocator(w.db.SerialBlocks(), "tsa", 64)
	if err != nil {
		t.Fatal(err)
	}
	tsa, err := timestamp.New(timestamp.Config{}, timestamp.Options{Certificate: unit, Chain: []*x509.Certificate{w.cas[policies.IssuerTSA]},
		Signer: unitKey, Serials: serials, Recorder: nopRecorder{}, Clock: timestamp.NewStaticChecker(true), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("POST /tsa", tsa.Handler(func(*http.Request) string { return "test" }))
	if o.tsaURL == "" {
		o.tsaURL = base + "/tsa"
	}

	// Authentication: bearer tokens of a development issuer.
	devKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if w.minter, err = josesigner.New(devKey, "test"); err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(w.tmp, "jwks.json")
	if err := auth.WriteJWKS(jwks, *w.minter.Public()); err != nil {
		t.Fatal(err)
	}
	idpKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if w.idp, err = josesigner.New(idpKey, ""); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{Issuers: []auth.IssuerConfig{auth.DevIssuerConfig(jwks)}}, auth.Options{Logger: logger, Audit: log,
		Delegated: []auth.DelegatedIssuer{{Issuer: testDelegatedIssuer, Audience: base + "/csc/v2", Keys: []jose.JSONWebKey{*w.idp.Public()},
			Scopes: []string{auth.ScopeService, auth.ScopeCredential}, Role: policies.RoleCitizen, Actions: []policies.Action{policies.ActionSign}}}})
	if err != nil {
		t.Fatal(err)
	}

	// The service, as cmd/thiqa wires it.
	client := &http.Client{Timeout: o.timeout}
	tsc, err := timestamp.NewClient(o.tsaURL, timestamp.ClientOptions{HTTPClient: client, Timeout: o.timeout})
	if err != nil {
		t.Fatal(err)
	}
	pp := pin.DefaultParams()
	pp.MemoryKiB, pp.Time = 64, 1 // cheap hashes: the tests try many PINs
	pp.Clock = o.pinClock
	reg := prometheus.NewRegistry()
	cas := []*x509.Certificate{w.root}
	var signingCAs []signing.IssuingCA
	for _, name := range names {
		cas = append(cas, w.cas[name])
		signingCAs = append(signingCAs, signing.IssuingCA{Name: name, Cert: w.cas[name]})
	}
	dejaVu, err := pdftext.LoadFont("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
	if err != nil {
		t.Fatalf("%v (install fonts-dejavu-core: scripts/install-deps.sh)", err)
	}
	muscat, err := time.LoadLocation("Asia/Muscat")
	if err != nil {
		t.Fatal(err)
	}
	var mobileIDs signing.MobileIDs
	if o.mobileIDs {
		mobileIDs = w.db.SigningMobileIDs()
		if w.mobilePINs, err = pin.New(w.db.Identity(), pp); err != nil {
			t.Fatal(err)
		}
	}
	w.svc, err = signing.New(signing.Options{
		Config: signing.Config{Timeout: o.timeout, MaxDocumentBytes: 64 << 20, MaxBatchDocuments: 100, SADLifetime: 5 * time.Minute,
			MaxHashesPerSAD: 100, TempDir: w.svcTemp, PIN: pp, FirstPINActivation: o.firstPINActivation,
			Appearance: signing.AppearanceConfig{Fonts: pdftext.Fonts{dejaVu}, VerifyURL: base + "/verify", Location: muscat}},
		Store: w.db.SigningCredentials(),
		Keys: func(ctx context.Context, label, _ string) (crypto.Signer, error) {
			k, err := tok.FindKey(ctx, label)
			if err != nil {
				return nil, err
			}
			return gatedKey{k, w.keysDown}, nil
		},
		Root: w.root, Issuers: signingCAs, TSA: tsc, Revocation: signing.NewRevocationFetcher(client, cas, time.Now),
		Audit: w.auditGate, Logger: logger, Registerer: reg, Now: o.now, Country: o.country, MobileIDs: mobileIDs, MobilePINs: w.mobilePINs,
		IssuerRevocations: o.issuers,
		Verifier: verify.New(verify.Options{TrustAnchors: []*x509.Certificate{w.root}, AllowOnline: true, FetchTimeout: o.timeout,
			Fetcher: &verify.HTTPFetcher{Client: client, TTL: time.Minute}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.svc.Register(mux, authn.Require)
	w.api = csc.New(w.svc).WithOAuth2(testDelegatedIssuer + "/csc/v2")
	w.api.Register(mux, authn.Require)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// The root in PEM and in an NSS database, for the independent verifiers.
	w.writePEM(t, "root.pem", w.root)
	for _, name := range names {
		w.writePEM(t, name+".pem", w.cas[name])
	}
	w.nss = filepath.Join(w.tmp, "nss")
	if err := os.MkdirAll(w.nss, 0o700); err != nil {
		t.Fatal(err)
	}
	certutil := testenv.Tool(t, "certutil")
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + w.nss, "--empty-password"},
		{"-A", "-n", "thiqa-root", "-t", "CT,C,C", "-i", w.path("root.pem"), "-d", "sql:" + w.nss},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return w
}

// generateKey makes a key on the world's token.
func (w *world) generateKey(t *testing.T, label string, kt hsm.KeyType) crypto.Signer {
	t.Helper()
	key, err := w.tok.GenerateKey(context.Background(), label, kt)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue certifies key with profile from the issuing CA caName.
func (w *world) issue(t *testing.T, profile, caName string, subject map[string]string, key crypto.Signer, credentialID string) *x509.Certificate {
	t.Helper()
	got, err := w.authority.Issue(context.Background(), ca.Request{Profile: profile, CA: caName, Subject: subject, PublicKey: key.Public(),
		KeyGeneratedByService: true, CredentialID: credentialID, RequestedBy: "officer-7"})
	if err != nil {
		t.Fatalf("issuing %s: %v", profile, err)
	}
	return got.Certificate
}

// credential generates a key on the token and certifies it for profile
// (keyInHSM, as POST /api/v1/certificates does); it returns the credential ID.
func (w *world) credential(t *testing.T, profile string, subject map[string]string) (string, *x509.Certificate) {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "cred-" + hex.EncodeToString(b[:])
	cert := w.issue(t, profile, "", subject, w.generateKey(t, id, w.keyType), id)
	w.serials[id] = hex.EncodeToString(cert.SerialNumber.Bytes())
	return id, cert
}

func serviceSubject(cn string) map[string]string {
	return map[string]string{policies.FieldCommonName: cn, policies.FieldOrganizationName: "Thiqa Test", policies.FieldCountry: "OM"}
}

func citizenSubject() map[string]string {
	return map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
}

func orgSubject() map[string]string {
	return map[string]string{"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "Ministry of Health Seal", "country": "OM"}
}

// token mints a bearer token for subject with role.
func (w *world) token(t *testing.T, subject string, role policies.Role) string {
	t.Helper()
	tok, err := auth.MintToken(w.minter, auth.MintClaims{Subject: subject, Roles: []policies.Role{role}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (w *world) path(name string) string { return filepath.Join(w.tmp, name) }

func (w *world) writePEM(t *testing.T, name string, c *x509.Certificate) {
	t.Helper()
	if err := os.WriteFile(w.path(name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// send posts body to path with a bearer token and extra headers.
func (w *world) send(t *testing.T, path, token, ctype string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// csc posts body as JSON and decodes the JSON answer.
func (w *world) csc(t *testing.T, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	code, _, b := w.send(t, path, token, "application/json", raw, nil)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %d %s", path, code, b)
	}
	return code, m
}

// metrics returns the service's metrics in the text format.
func (w *world) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(w.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// records returns the audit records of action with outcome whose actor
// starts with actorPrefix.
func (w *world) records(t *testing.T, action, outcome, actorPrefix string) []audit.Record {
	t.Helper()
	var out []audit.Record
	err := w.db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		if r.Action == action && r.Outcome == outcome && strings.HasPrefix(r.Actor, actorPrefix) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyAudit checks the whole hash chain of the audit log.
func (w *world) verifyAudit(t *testing.T) {
	t.Helper()
	rep, err := audit.Verify(context.Background(), w.db)
	if err != nil || rep.Break != nil {
		t.Fatalf("audit verify: %v %v", rep, err)
	}
}

func samplePDF(t *testing.T, size int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := samplepdf.Write(&b, size); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func wantStatus(t *testing.T, what string, code int, body []byte, status int, text string) {
	t.Helper()
	if code != status || !strings.Contains(string(body), text) {
		t.Fatalf("%s: got %d %s; want %d naming %q", what, code, body, status, text)
	}
}

// checkPDF runs pdfsig (valid and trusted, reading its text), qpdf --check
// and openssl cms -verify over the first signature's ByteRange, and the
// project's own verifier (TOTAL-PASSED at level).
func (w *world) checkPDF(t *testing.T, name string, pdf []byte, issuing, level string) {
	t.Helper()
	p := w.path(name)
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	br := regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`).FindSubmatch(pdf)
	if br == nil {
		t.Fatalf("%s: no ByteRange", name)
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(string(br[i+1]))
	}
	// pdfsig cannot validate document time-stamps (and then gives up on
	// every signature): check the first signature's own revision.
	first := p
	if bytes.Contains(pdf, []byte("/ETSI.RFC3161")) {
		first = w.path("rev1-" + name)
		if err := os.WriteFile(first, pdf[:n[2]+n[3]], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", "sql:"+w.nss, first).CombinedOutput()
	if !strings.Contains(string(out), "Signature is Valid.") || !strings.Contains(string(out), "Certificate is Trusted.") {
		t.Fatalf("%s: pdfsig:\n%s", name, out)
	}
	if out, err := exec.Command(testenv.Tool(t, "qpdf"), "--check", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors") {
		t.Fatalf("%s: qpdf --check: %v\n%s", name, err, out)
	}
	content := append(append([]byte(nil), pdf[n[0]:n[0]+n[1]]...), pdf[n[2]:n[2]+n[3]]...)
	hexSig := strings.Trim(string(pdf[n[0]+n[1]:n[2]]), "<> \n")
	der := make([]byte, len(hexSig)/2)
	if _, err := fmt.Sscanf(hexSig, "%x", &der); err != nil {
		t.Fatalf("%s: /Contents: %v", name, err)
	}
	var rv asn1.RawValue
	if _, err := asn1.Unmarshal(der, &rv); err != nil {
		t.Fatalf("%s: CMS: %v", name, err)
	}
	sigPath, contentPath := w.path(name+".p7s"), w.path(name+".content")
	_ = os.WriteFile(sigPath, rv.FullBytes, 0o600)
	_ = os.WriteFile(contentPath, content, 0o600)
	cms, err := exec.Command(testenv.Tool(t, "openssl"), "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath, "-content", contentPath,
		"-CAfile", w.path("root.pem"), "-certfile", w.path(issuing+".pem"), "-purpose", "any", "-out", os.DevNull).CombinedOutput()
	if err != nil || !strings.Contains(string(cms), "Verification successful") {
		t.Fatalf("%s: openssl cms -verify: %v\n%s", name, err, cms)
	}
	// The project's own verifier, fetching revocation data online.
	v := verify.New(verify.Options{TrustAnchors: []*x509.Certificate{w.root}, AllowOnline: true, FetchTimeout: 10 * time.Second,
		Revocation: verify.RevocationRequired, Fetcher: &verify.HTTPFetcher{Client: &http.Client{Timeout: 10 * time.Second}, TTL: 5 * time.Minute}})
	rep, err := v.VerifyPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)))
	if err != nil || rep.Indication != report.TotalPassed || len(rep.Signatures) == 0 ||
		rep.Signatures[0].Level != level || rep.Signatures[0].Indication != report.TotalPassed {
		js, _ := json.MarshalIndent(rep, "", "  ")
		t.Fatalf("%s: verify (want %s, TOTAL-PASSED): %v\n%.2000s", name, level, err, js)
	}
}

// nopRecorder keeps no token records: the TSA's own tests check them.
type nopRecorder struct{}

func (nopRecorder) Record(context.Context, timestamp.TokenRecord) error { return nil }

// gatedKey is a credential key that fails, while down is set, the way hsm
// fails when its token cannot be used for now.
type gatedKey struct {
	crypto.Signer
	down *atomic.Bool
}

func (k gatedKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.down.Load() {
		return nil, fmt.Errorf("hsm: signing with key: %w", outage.Mark(errors.New("pkcs11: 0x30: CKR_DEVICE_ERROR")))
	}
	return k.Signer.Sign(r, digest, opts)
}
