package revocation_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth/authtest"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// baseURL is the public base URL the certificates and CRLs name.
const baseURL = "http://pki.thiqa.test"

// malformedOCSP is the OCSPResponse {responseStatus malformedRequest}.
var malformedOCSP = []byte{0x30, 0x03, 0x0a, 0x01, 0x01}

// tokenKeys are the responder keys on a SoftHSM token (revocation.KeyStore,
// as keyring.Ring gives them); it counts the keys it generates.
type tokenKeys struct {
	tok       *hsm.Token
	mu        sync.Mutex
	generated int
}

func (k *tokenKeys) Key(ctx context.Context, label string) (crypto.Signer, error) {
	s, err := k.tok.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %w", err, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (k *tokenKeys) Labels(ctx context.Context) ([]string, error) {
	keys, err := k.tok.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	labels := make([]string, len(keys))
	for i, key := range keys {
		labels[i] = key.Label
	}
	return labels, nil
}

func (k *tokenKeys) GenerateKey(ctx context.Context, label string) (crypto.Signer, error) {
	s, err := k.tok.GenerateKey(ctx, label, hsm.ECP256)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.generated++
	k.mu.Unlock()
	return s, nil
}

// fixture is a store, a CA, the delegated responders on a SoftHSM token
// and, once started, the revocation service serving over HTTP with its
// CRL publisher, OCSP responder and poller running.
type fixture struct {
	dir    string // PEM files for openssl
	cfg    store.Config
	db     *store.DB
	log    *audit.Log
	pki    *catest.PKI
	keys   *tokenKeys
	rp     *revocation.Responders
	issuer *authtest.Issuer
	status *revocation.Checker

	base string // the running server's URL
	svc  *revocation.Service
	stop func()
}

func newFixture(t *testing.T, d storetest.Dialect) *fixture {
	t.Helper()
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("rev")
	if err := hsm.InitToken(module, label, "so-pin-1234", "user-pin-1234"); err != nil {
		t.Fatal(err)
	}
	tok, err := hsm.Open(t.Context(), hsm.Config{ModulePath: module, TokenLabel: label, PIN: "user-pin-1234"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	f := &fixture{dir: t.TempDir(), cfg: d.NewConfig(t), keys: &tokenKeys{tok: tok}}
	f.db = storetest.Open(t, f.cfg)
	f.log = audit.New(f.db, nil, nil, audit.Options{})
	t.Cleanup(f.log.Close)
	f.pki = catest.New(t, f.db.Certificates(nil), f.log, baseURL)
	f.rp = revocation.NewResponders(revocation.ResponderOptions{Dir: f.dir, Keys: f.keys, CA: f.pki.Authority,
		Subjects: map[string]revocation.ResponderSubject{"citizen": {Organization: "Thiqa Test"}}, Actor: "thiqa-init"})
	// What `thiqa init` does: a responder for every issuing CA.
	for _, name := range []string{"citizen", "organisation", "tsa"} {
		if _, renewed, err := f.rp.Ensure(t.Context(), name, 48*time.Hour); err != nil || !renewed {
			t.Fatalf("responder of %s: renewed %v, %v", name, renewed, err)
		}
		if cert, _ := f.rp.Paths(name); !fileExists(cert) {
			t.Fatalf("no responder certificate for %s at %s", name, cert)
		}
	}
	if _, renewed, err := f.rp.Ensure(t.Context(), "citizen", 48*time.Hour); err != nil || renewed {
		t.Fatalf("a valid responder was replaced: %v %v", renewed, err)
	}
	catest.WritePEM(t, f.dir, "root.pem", f.pki.Root)
	catest.WritePEM(t, f.dir, "citizen.pem", f.pki.CAs["citizen"])
	catest.WritePEM(t, f.dir, "chain.pem", f.pki.CAs["citizen"], f.pki.Root)
	f.issuer = authtest.New(t, f.log)
	f.status = revocation.NewChecker(f.db.Certificates(nil), time.Hour, nil)
	return f
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// start serves the revocation service as `thiqa serve` wires it, with
// renewBefore for the responders.
func (f *fixture) start(t *testing.T, renewBefore time.Duration) {
	t.Helper()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	rs := f.db.Revocations()
	cset, err := crl.Config{Validity: 24 * time.Hour, RegenerateEvery: time.Hour, TriggerDelay: 200 * time.Millisecond, Partitions: 1, BaseURL: baseURL}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	oset, err := ocsp.Config{Validity: 24 * time.Hour, RefreshEvery: 12 * time.Hour, RenewBefore: renewBefore, PresignHashes: []string{"sha1", "sha256"}}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	// The hierarchy as hierarchy.Find returns it, the root key online.
	var parts []*hierarchy.Part
	for _, name := range []string{"root", "citizen", "organisation", "tsa"} {
		cert := f.pki.Root
		if name != "root" {
			cert = f.pki.CAs[name]
		}
		parts = append(parts, &hierarchy.Part{Conf: hierarchy.CA{Name: name}, Key: uriKey{f.pki.Keys[name]}, Cert: cert})
	}
	pub, err := revocation.NewPublication(ctx, revocation.PublicationOptions{Parts: parts, CRL: cset, OCSP: oset, Store: rs,
		Issued: f.db.Certificates(nil), Responders: f.rp, Dir: f.dir, Logger: logger, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	responder, publisher := pub.Responder, pub.Publisher
	f.svc, err = revocation.New(revocation.Options{Store: rs, Certificates: f.db.Certificates(nil), Audit: f.log, Logger: logger,
		Responder: responder, Publisher: publisher, Status: f.status})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	raw := map[string]http.Handler{}
	f.svc.Register(mux, func(prefix string, h http.Handler) { raw[prefix] = h }, f.issuer.Authn.Require)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for prefix, h := range raw {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h.ServeHTTP(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	f.base = srv.URL
	// The first CRLs exist before the test reads them (Run publishes them
	// again, in the background, where a busy machine may be late).
	if err := publisher.PublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context){
		pub.Loops()[0], pub.Loops()[1],
		func(ctx context.Context) { f.svc.Poll(ctx, 200*time.Millisecond) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); run(loopCtx) }()
	}
	f.stop = func() { srv.Close(); cancel(); wg.Wait() }
	t.Cleanup(f.stop)
}

// issue issues a citizen-signing certificate for a civil number and writes
// it to name; it returns the serial.
func (f *fixture) issue(t *testing.T, civil, name string) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.pki.Authority.Issue(t.Context(), ca.Request{Profile: policies.ProfileCitizenSigning, CSR: csr, RequestedBy: "officer-7",
		Subject: map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": civil, "country": "OM"}})
	if err != nil {
		t.Fatal(err)
	}
	catest.WritePEM(t, f.dir, name, got.Certificate)
	return got.Serial
}

// ocspCheck asks the server about a certificate with the real openssl
// client and returns its output after checking the response verified.
func (f *fixture) ocspCheck(t *testing.T, nonce bool, target ...string) string {
	t.Helper()
	args := []string{"ocsp", "-issuer", f.path("citizen.pem"), "-url", f.base + "/ocsp", "-CAfile", f.path("root.pem"), "-no_nonce"}
	if nonce {
		args[len(args)-1] = "-nonce"
	}
	args = append(args, target...)
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Response verify OK") {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// send makes a request and returns the status, headers and body.
func (f *fixture) send(t *testing.T, method, path, token string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// revoke posts a revocation with body (a reason, or any JSON value).
func (f *fixture) revoke(t *testing.T, serial, token string, body any) (int, []byte) {
	t.Helper()
	if reason, ok := body.(string); ok {
		body = revocation.RevokeRequest{Reason: reason}
	}
	b, _ := json.Marshal(body)
	code, _, out := f.send(t, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", token, b)
	return code, out
}

// crl fetches a CRL, writes it as DER and PEM, and returns it parsed.
func (f *fixture) crl(t *testing.T, name string) *x509.RevocationList {
	t.Helper()
	code, _, body := f.send(t, http.MethodGet, "/crl/"+name, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /crl/%s: %d %s", name, code, body)
	}
	rl, err := x509.ParseRevocationList(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path(name), body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path(name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: body}), 0o600); err != nil {
		t.Fatal(err)
	}
	return rl
}

func wantProblem(t *testing.T, what string, code int, body []byte, status int, text string) {
	t.Helper()
	if code != status || !strings.Contains(string(body), text) {
		t.Fatalf("%s: got %d %s; want %d naming %q", what, code, body, status, text)
	}
}

// waitFor retries check until it returns "" or the time is up.
func waitFor(t *testing.T, d time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func onCRL(rl *x509.RevocationList, serial string) bool {
	for _, e := range rl.RevokedCertificateEntries {
		if fmt.Sprintf("%x", e.SerialNumber) == strings.TrimLeft(serial, "0") {
			return true
		}
	}
	return false
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRevocation drives the revocation service over HTTP on SQLite and
// PostgreSQL: OCSP answers checked by openssl ocsp, CRLs by openssl crl and
// openssl verify -crl_check, every refusal a problem answer and an audit
// record, revocations recorded by another process learnt by polling, and
// CRL numbers that never go backwards across a restart.
func TestRevocation(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { runRevocation(t, d) })
	}
}

func runRevocation(t *testing.T, d storetest.Dialect) {
	f := newFixture(t, d)
	f.start(t, 48*time.Hour)
	leaf := f.issue(t, "12345678", "leaf.pem")
	f.issue(t, "23456789", "other.pem")
	own := f.issue(t, "34567890", "own.pem")
	byCLI := f.issue(t, "45678901", "cli.pem")
	leafCert := readCert(t, f.path("leaf.pem"))
	if st, err := f.status.Status(t.Context(), leafCert); err != nil || !st.Known || st.Revoked {
		t.Fatalf("status of a fresh certificate: %+v %v", st, err)
	}

	// Good, with a nonce (signed on demand) and without (pre-signed).
	for _, nonce := range []bool{true, false} {
		if out := f.ocspCheck(t, nonce, "-cert", f.path("leaf.pem")); !strings.Contains(out, f.path("leaf.pem")+": good") {
			t.Fatalf("want good:\n%s", out)
		}
	}
	// A serial the CA never issued.
	if out := f.ocspCheck(t, true, "-serial", "0x5eed0123456789abcdef"); !strings.Contains(out, "0x5eed0123456789abcdef: unknown") {
		t.Fatalf("want unknown:\n%s", out)
	}
	first := f.crl(t, "citizen.crl")
	if onCRL(first, leaf) || len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("fresh CRL lists %d entries", len(first.RevokedCertificateEntries))
	}

	// Refusals: each a problem answer and an audit record, nothing revoked.
	officer := f.issuer.Token(t, "officer-7", policies.RoleRegistrationOfficer)
	agency := f.issuer.Token(t, "NTROM-7654321", policies.RoleAgency)
	operator := f.issuer.Token(t, "op-1", policies.RoleOperator)
	citizen := f.issuer.Token(t, "34567890", policies.RoleCitizen)
	code, body := f.revoke(t, leaf, "", "keyCompromise")
	wantProblem(t, "unauthenticated", code, body, http.StatusUnauthorized, "")
	code, body = f.revoke(t, leaf, operator, "keyCompromise")
	wantProblem(t, "operator", code, body, http.StatusForbidden, "certificate.revoke")
	code, body = f.revoke(t, leaf, citizen, "keyCompromise")
	wantProblem(t, "someone else's certificate", code, body, http.StatusForbidden, "may not revoke")
	code, body = f.revoke(t, leaf, agency, "keyCompromise")
	wantProblem(t, "agency, citizen certificate", code, body, http.StatusForbidden, "may not revoke")
	code, body = f.revoke(t, leaf, officer, "certificateHold")
	wantProblem(t, "certificateHold", code, body, http.StatusBadRequest, "certificateHold")
	code, body = f.revoke(t, "5eed0123456789abcdef", officer, "keyCompromise")
	wantProblem(t, "unknown serial", code, body, http.StatusNotFound, "5eed0123456789abcdef")
	code, body = f.revoke(t, leaf, officer, map[string]any{"reason": "superseded", "extra": 1})
	wantProblem(t, "unknown field", code, body, http.StatusBadRequest, "reason")
	// The service's own certificates are an operator's to revoke on the
	// host, not an officer's: one token could keep OCSP (or the TSA) down.
	responderPath, _ := f.rp.Paths("citizen")
	responderSerial := fmt.Sprintf("%x", readCert(t, responderPath).SerialNumber)
	code, body = f.revoke(t, responderSerial, officer, "keyCompromise")
	wantProblem(t, "officer, the OCSP responder", code, body, http.StatusForbidden, "thiqa revoke")
	if out := f.ocspCheck(t, true, "-cert", f.path("leaf.pem")); !strings.Contains(out, ": good") {
		t.Fatalf("OCSP after a refused revocation of its responder:\n%s", out)
	}
	if out := f.ocspCheck(t, true, "-cert", f.path("leaf.pem")); !strings.Contains(out, ": good") {
		t.Fatalf("a refused revocation changed the status:\n%s", out)
	}

	// The officer revokes; the answer changes at once, also on the
	// pre-signed path, and the status checker forgets what it knew.
	code, body = f.revoke(t, leaf, officer, "keyCompromise")
	var rr revocation.RevokeResponse
	if code != http.StatusOK || json.Unmarshal(body, &rr) != nil || rr.Status != "revoked" || rr.Reason != "keyCompromise" || rr.CA != "citizen" || rr.Serial != leaf {
		t.Fatalf("revoke: %d %s", code, body)
	}
	for _, nonce := range []bool{true, false} {
		out := f.ocspCheck(t, nonce, "-cert", f.path("leaf.pem"))
		if !strings.Contains(out, f.path("leaf.pem")+": revoked") || !strings.Contains(out, "Reason: keyCompromise") {
			t.Fatalf("want revoked (keyCompromise):\n%s", out)
		}
	}
	if err := f.status.Check(t.Context(), leafCert); !errors.Is(err, revocation.ErrRefused) {
		t.Fatalf("the status checker still accepts the revoked certificate: %v", err)
	}
	code, body = f.revoke(t, leaf, officer, "superseded")
	wantProblem(t, "already revoked", code, body, http.StatusConflict, "already revoked")
	code, body = f.revoke(t, strings.ToUpper(own), citizen, "affiliationChanged")
	if code != http.StatusOK {
		t.Fatalf("a citizen revoking their own certificate: %d %s", code, body)
	}
	if out := f.ocspCheck(t, false, "-cert", f.path("other.pem")); !strings.Contains(out, ": good") {
		t.Fatalf("another certificate changed:\n%s", out)
	}

	// The CRL follows within seconds, verifies with openssl and revokes the leaf.
	var rl *x509.RevocationList
	waitFor(t, 20*time.Second, func() string {
		rl = f.crl(t, "citizen.crl")
		if !onCRL(rl, leaf) || !onCRL(rl, own) {
			return fmt.Sprintf("CRL %v lists %d entries, not yet the revoked ones", rl.Number, len(rl.RevokedCertificateEntries))
		}
		return ""
	})
	if rl.Number.Cmp(first.Number) <= 0 {
		t.Fatalf("CRL number %v after %v", rl.Number, first.Number)
	}
	openssl := testenv.Tool(t, "openssl")
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", f.path("citizen.crl"), "-CAfile", f.path("chain.pem"), "-noout").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	out, _ = exec.Command(openssl, "verify", "-crl_check", "-CRLfile", f.path("citizen.crl.pem"), "-CAfile", f.path("chain.pem"), f.path("leaf.pem")).CombinedOutput()
	if !strings.Contains(string(out), "certificate revoked") {
		t.Fatalf("openssl verify -crl_check on the revoked leaf:\n%s", out)
	}
	out, err = exec.Command(openssl, "verify", "-crl_check", "-CRLfile", f.path("citizen.crl.pem"), "-CAfile", f.path("chain.pem"), f.path("other.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify -crl_check on a good certificate: %v\n%s", err, out)
	}
	if code, _, _ := f.send(t, http.MethodGet, "/crl/nosuch.crl", "", nil); code != http.StatusNotFound {
		t.Fatalf("unknown CRL: %d", code)
	}

	// Another process (`thiqa revoke`, as cmd/thiqa builds it: no
	// responder, no publisher, its own connection) revokes while the
	// server runs: the server learns of it by polling.
	other := storetest.Open(t, f.cfg)
	otherLog := audit.New(other, nil, nil, audit.Options{})
	cli, err := revocation.New(revocation.Options{Store: other.Revocations(), Certificates: other.Certificates(nil), Audit: otherLog})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := cli.Revoke(t.Context(), "cli:operator", byCLI, "superseded", nil); err != nil || r.Serial != byCLI || r.CA != "citizen" {
		t.Fatalf("revoking in another process: %+v %v", r, err)
	}
	waitFor(t, 15*time.Second, func() string {
		if out := f.ocspCheck(t, false, "-cert", f.path("cli.pem")); !strings.Contains(out, ": revoked") {
			return "the pre-signed answer is still not revoked after a revocation by another process:\n" + out
		}
		return ""
	})
	_, err = cli.Revoke(t.Context(), "cli:operator", byCLI, "superseded", nil)
	var refusal *revocation.Refusal
	if !errors.As(err, &refusal) || !errors.Is(err, revocation.ErrAlreadyRevoked) || !strings.Contains(err.Error(), "already revoked") {
		t.Fatalf("revoking twice from another process: %v", err)
	}
	// A renewal superseding a certificate revoked already changes nothing
	// (the refusal is audited all the same).
	if err := cli.RevokeSuperseded(t.Context(), "cli:operator", byCLI); err != nil {
		t.Fatalf("superseding a revoked certificate: %v", err)
	}
	otherLog.Close()

	// Bad OCSP input gets malformedRequest; GET answers carry cache headers.
	checkBadOCSP(t, f)
	cert := readCert(t, f.path("other.pem"))
	req, err := ocsp.NewRequest(f.pki.CAs["citizen"], cert.SerialNumber, crypto.SHA256, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, hdr, body := f.send(t, http.MethodGet, "/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)), "", nil)
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/ocsp-response" || hdr.Get("ETag") == "" ||
		!strings.Contains(hdr.Get("Cache-Control"), "max-age=") || bytes.Equal(body, malformedOCSP) {
		t.Fatalf("GET /ocsp: %d %v %x", code, hdr, body)
	}

	// CRL numbers never go backwards across a restart.
	f.stop()
	f.start(t, 48*time.Hour)
	waitFor(t, 20*time.Second, func() string {
		if code, _, _ := f.send(t, http.MethodGet, "/crl/citizen.crl", "", nil); code != http.StatusOK {
			return "no CRL after restart"
		}
		return ""
	})
	if again := f.crl(t, "citizen.crl"); again.Number.Cmp(rl.Number) <= 0 || !onCRL(again, byCLI) {
		t.Fatalf("after restart: CRL number %v (before %v), the other process's revocation listed %v", again.Number, rl.Number, onCRL(again, byCLI))
	}
	if out := f.ocspCheck(t, false, "-cert", f.path("leaf.pem")); !strings.Contains(out, ": revoked") {
		t.Fatalf("after restart:\n%s", out)
	}
	f.stop()

	if rep, err := audit.Verify(t.Context(), f.db); err != nil || !rep.OK() {
		t.Fatalf("audit verify: %v %v", rep, err)
	}
	if n := storetest.AuditCount(t, f.db, "certificate.revoke", "success"); n != 3 {
		t.Fatalf("%d successful revocation records, want 3", n)
	}
	// 401, 403 ×4 (one the officer's of the OCSP responder), 400 ×2, 404,
	// 409 from the API and 409 ×2 from the other process (revoking twice,
	// then superseding: audited, not an error).
	if n := storetest.AuditCount(t, f.db, "certificate.revoke", "refused"); n != 11 {
		t.Fatalf("%d refused revocation records, want 11", n)
	}
}

// checkBadOCSP sends garbage, truncated and oversized requests, a request
// for an unknown CA and bad GET paths: each answer is an OCSP error.
func checkBadOCSP(t *testing.T, f *fixture) {
	t.Helper()
	cert := readCert(t, f.path("other.pem"))
	good, err := ocsp.NewRequest(f.pki.CAs["citizen"], cert.SerialNumber, crypto.SHA1, nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ocsp.NewRequest(f.pki.Root, big.NewInt(12345), crypto.SHA1, nil) // the root is not an OCSP issuer here
	if err != nil {
		t.Fatal(err)
	}
	post := func(body []byte) []byte {
		resp, err := http.Post(f.base+"/ocsp", "application/ocsp-request", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("POST /ocsp: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return b
	}
	for name, body := range map[string][]byte{
		"garbage":   []byte("this is not DER at all"),
		"empty":     {},
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 0),
		"oversized": append(append([]byte{}, good...), make([]byte, 64<<10)...),
	} {
		if got := post(body); !bytes.Equal(got, malformedOCSP) {
			t.Errorf("%s request: got %x, want malformedRequest", name, got)
		}
	}
	if got := post(foreign); !bytes.Equal(got, []byte{0x30, 0x03, 0x0a, 0x01, 0x06}) {
		t.Errorf("request for another CA: got %x, want unauthorized", got)
	}
	for _, p := range []string{"/ocsp/!!!not-base64", "/ocsp/bm90LWRlcg=="} {
		code, _, body := f.send(t, http.MethodGet, p, "", nil)
		if code != http.StatusOK || !bytes.Equal(body, malformedOCSP) {
			t.Errorf("GET %s: %d %x", p, code, body)
		}
	}
	if out := f.ocspCheck(t, false, "-cert", f.path("other.pem")); !strings.Contains(out, ": good") {
		t.Fatalf("bad requests changed an answer:\n%s", out)
	}
}

// TestResponderRenewal: with renewBefore longer than the responder
// certificate's life, the pre-signer renews the responder at start (a new
// key on the token, a new certificate from the CA) and openssl verifies the
// answers signed by the new one.
func TestResponderRenewal(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	respPath, labelPath := f.rp.Paths("citizen")
	before := readCert(t, respPath)
	generated := f.keys.generated
	f.start(t, 200*time.Hour)
	waitFor(t, 30*time.Second, func() string {
		if now := readCert(t, respPath); now.SerialNumber.Cmp(before.SerialNumber) == 0 {
			return "the responder certificate was not renewed"
		}
		return ""
	})
	after := readCert(t, respPath)
	if after.NotAfter.Before(before.NotAfter) || bytes.Equal(after.RawSubjectPublicKeyInfo, before.RawSubjectPublicKeyInfo) {
		t.Fatalf("renewed responder: notAfter %v (before %v), same key %v", after.NotAfter, before.NotAfter,
			bytes.Equal(after.RawSubjectPublicKeyInfo, before.RawSubjectPublicKeyInfo))
	}
	if label, err := os.ReadFile(labelPath); err != nil || !strings.HasPrefix(string(label), "ocsp-citizen-") {
		t.Fatalf("responder key label %q %v", label, err)
	}
	f.keys.mu.Lock()
	if f.keys.generated <= generated {
		t.Errorf("no new responder key generated on the token (%d, %d before)", f.keys.generated, generated)
	}
	f.keys.mu.Unlock()
	f.issue(t, "12345678", "leaf.pem")
	waitFor(t, 30*time.Second, func() string {
		out := f.ocspCheck(t, true, "-cert", f.path("leaf.pem"), "-VAfile", respPath)
		if !strings.Contains(out, ": good") {
			return "not signed by the renewed responder yet:\n" + out
		}
		return ""
	})
}

// TestResponderRefusesForeignFiles: a responder certificate that another
// CA issued, or whose key is not the recorded one, is an error, not
// silently replaced; a missing key is renewed.
func TestResponderRefusesForeignFiles(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	citizenCert, citizenLabel := f.rp.Paths("citizen")
	orgCert, orgLabel := f.rp.Paths("organisation")
	good, _ := os.ReadFile(citizenCert)
	goodLabel, _ := os.ReadFile(citizenLabel)
	orgPEM, _ := os.ReadFile(orgCert)
	orgKey, _ := os.ReadFile(orgLabel)

	_ = os.WriteFile(citizenCert, orgPEM, 0o644)
	if _, _, err := f.rp.Ensure(t.Context(), "citizen", 0); err == nil {
		t.Fatal("a responder certificate of another CA was accepted")
	}
	_ = os.WriteFile(citizenCert, good, 0o644)
	_ = os.WriteFile(citizenLabel, orgKey, 0o644)
	if _, _, err := f.rp.Ensure(t.Context(), "citizen", 0); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a responder key that does not match the certificate: %v", err)
	}
	_ = os.WriteFile(citizenLabel, []byte("no-such-key\n"), 0o644)
	if _, renewed, err := f.rp.Ensure(t.Context(), "citizen", 0); err != nil || !renewed {
		t.Fatalf("a responder whose key is gone: renewed %v, %v", renewed, err)
	}
	if now, _ := os.ReadFile(citizenLabel); bytes.Equal(now, goodLabel) {
		t.Fatal("the renewed responder kept the old label")
	}
}

// uriKey is an in-process CA key as the hierarchy finds keys on a token.
type uriKey struct{ crypto.Signer }

func (uriKey) URI() string { return "pkcs11:object=test" }
