package timestamp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
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
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// tokenKeys are the unit keys on a SoftHSM token (timestamp.KeyStore, as
// keyring.Ring gives them); it counts the keys it generates.
type tokenKeys struct {
	tok       *hsm.Token
	mu        sync.Mutex
	generated int
}

func (k *tokenKeys) Labels(ctx context.Context) ([]string, error) {
	keys, err := k.tok.ListKeys(ctx)
	var out []string
	for _, key := range keys {
		out = append(out, key.Label)
	}
	return out, err
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

// certifier has the test CA certify unit keys (timestamp.Certifier).
type certifier struct{ a *ca.Authority }

func (c certifier) CertifyUnit(ctx context.Context, pub crypto.PublicKey, credentialID, actor string) (*x509.Certificate, *x509.Certificate, error) {
	got, err := c.a.IssueOnce(ctx, ca.Request{Profile: policies.ProfileTSAUnit, PublicKey: pub, KeyGeneratedByService: true,
		CredentialID: credentialID, RequestedBy: actor,
		Subject: unitSubject()})
	if err != nil {
		return nil, nil, err
	}
	return got.Certificate, got.Chain[0], nil
}

// unitSubject is the subject of the test's TSA units.
func unitSubject() map[string]string {
	return map[string]string{"commonName": "Thiqa Test TSA", "organizationName": "Thiqa Test", "country": "OM"}
}

// fixture is a store, a CA and the TSA's units on a SoftHSM token, and the
// files openssl needs to verify the tokens.
type fixture struct {
	cfg   store.Config
	db    *store.DB
	log   *audit.Log
	keys  *tokenKeys
	units *timestamp.Units
	work  string
	root  string           // the root CA certificate (trusted)
	chain string           // the tsa CA certificate (untrusted)
	now   func() time.Time // the services' clock; time.Now when nil
	pki   *catest.PKI
}

func newFixture(t *testing.T, d storetest.Dialect) *fixture {
	t.Helper()
	return newFixtureOnToken(t, d, "")
}

// newFixtureOnToken is newFixture with the token opened with
// hsm.Config.StorageDir storageDir (the token's SoftHSM folder, "" when
// not known).
func newFixtureOnToken(t *testing.T, d storetest.Dialect, storageDir string) *fixture {
	t.Helper()
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("tsa")
	if err := hsm.InitToken(module, label, "so-pin-1234", "user-pin-1234"); err != nil {
		t.Fatal(err)
	}
	tok, err := hsm.Open(t.Context(), hsm.Config{ModulePath: module, TokenLabel: label, PIN: "user-pin-1234", StorageDir: storageDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	f := &fixture{cfg: d.NewConfig(t), keys: &tokenKeys{tok: tok}, work: t.TempDir()}
	f.db = storetest.Open(t, f.cfg)
	f.log = audit.New(f.db, nil, nil, audit.Options{})
	t.Cleanup(f.log.Close)
	pki := catest.New(t, f.db.Certificates(nil), f.log, "http://pki.thiqa.test")
	f.pki = pki
	f.units = &timestamp.Units{Dir: filepath.Join(t.TempDir(), "tsa"), KeyLabel: "tsa-unit", Keys: f.keys, CA: certifier{pki.Authority}}
	f.root = catest.WritePEM(t, f.work, "root.pem", pki.Root)
	f.chain = catest.WritePEM(t, f.work, "chain.pem", pki.CAs["tsa"])
	return f
}

// instance is one running TSA service.
type instance struct {
	svc *timestamp.Service
	db  *store.DB // this instance's connection

	serials timestamp.SerialAllocator
	clk     timestamp.ClockChecker
	reg     *prometheus.Registry
	base    string
}

// options are the options of in's service over units.
func (in *instance) options(f *fixture, units *timestamp.Units, renewBefore time.Duration) timestamp.ServiceOptions {
	return timestamp.ServiceOptions{
		Units: units, Config: timestamp.Config{Clock: timestamp.ClockConfig{Source: "static"}}, Clock: in.clk, Serials: in.serials, Audit: f.log,
		Identify: func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return "addr:" + host
		},
		RenewBefore: renewBefore, Actor: "thiqa-serve", Registerer: in.reg, Renewals: in.db.TSAUnitRenewals(), Now: f.now,
		Status: unitStatus{in.db.Revocations()}, Issuers: f.pki.Authority.Revoked(), ClockRecords: in.db,
	}
}

// serve starts a TSA service over its own store connection, as one
// `thiqa serve` instance runs it.
func (f *fixture) serve(t *testing.T, clk timestamp.ClockChecker, renewBefore time.Duration) *instance {
	t.Helper()
	return f.serveOn(t, storetest.Open(t, f.cfg), clk, renewBefore)
}

// serveOn is serve on a store already open (the cluster test opens the
// nodes' stores first, so that the nodes start at once).
func (f *fixture) serveOn(t *testing.T, db *store.DB, clk timestamp.ClockChecker, renewBefore time.Duration) *instance {
	t.Helper()
	serials, err := timestamp.NewBlockAllocator(db.SerialBlocks(), timestamp.SerialCounter, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{db: db, serials: serials, clk: clk, reg: prometheus.NewRegistry()}
	in.svc, err = timestamp.NewService(t.Context(), in.options(f, f.units, renewBefore))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tsa/other", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	var tsa http.Handler
	in.svc.Register(mux, func(prefix string, h http.Handler) {
		if prefix != "/tsa" {
			t.Fatalf("the TSA asks for the raw prefix %q", prefix)
		}
		tsa = h
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tsa") {
			tsa.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	in.base = srv.URL
	return in
}

// tokensIssued reads thiqa_tsa_tokens_total.
func (in *instance) tokensIssued(t *testing.T) float64 {
	t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "thiqa_tsa_tokens_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no thiqa_tsa_tokens_total")
	return 0
}

// openssl runs openssl and returns its combined output and whether it exited 0.
func openssl(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("openssl %v: %v", args, err)
	}
	return string(out), err == nil
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// query writes an openssl time-stamp query for data and returns its path.
func (f *fixture) query(t *testing.T, data string, args ...string) string {
	t.Helper()
	q := filepath.Join(f.work, testenv.UniqueLabel("q")+".tsq")
	if out, ok := openssl(t, append([]string{"ts", "-query", "-data", data, "-out", q}, args...)...); !ok {
		t.Fatalf("openssl ts -query: %s", out)
	}
	return q
}

// post posts a DER request to /tsa and returns the reply body, failing
// unless the answer is an RFC 3161 reply.
func post(t *testing.T, base string, der []byte) []byte {
	t.Helper()
	resp, err := http.Post(base+"/tsa", timestamp.QueryContentType, bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != timestamp.ReplyContentType {
		t.Fatalf("POST /tsa: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return body
}

// stamp posts the query file and writes the reply; it returns the reply
// path and the parsed response.
func (f *fixture) stamp(t *testing.T, in *instance, q string) (string, *tsp.Response) {
	t.Helper()
	der, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	body := post(t, in.base, der)
	r := strings.TrimSuffix(q, ".tsq") + ".tsr"
	writeFile(t, r, string(body))
	resp, err := tsp.ParseResponse(body)
	if err != nil {
		t.Fatalf("parsing the reply: %v", err)
	}
	return r, resp
}

// verify runs openssl ts -verify with args and reports "Verification: OK".
func (f *fixture) verify(t *testing.T, untrusted string, args ...string) (string, bool) {
	t.Helper()
	out, ok := openssl(t, append([]string{"ts", "-verify", "-CAfile", f.root, "-untrusted", untrusted}, args...)...)
	return out, ok && strings.Contains(out, "Verification: OK")
}

// withUnit writes the unit certificate and its CA, for tokens that carry
// no certificate.
func (f *fixture) withUnit(t *testing.T, unitPEM string) string {
	t.Helper()
	p := filepath.Join(f.work, testenv.UniqueLabel("untrusted")+".pem")
	writeFile(t, p, unitPEM+readFile(t, f.chain))
	return p
}

// serialOf returns a granted token's serial.
func serialOf(t *testing.T, resp *tsp.Response) *big.Int {
	t.Helper()
	if resp.Status.Status != tsp.StatusGranted {
		t.Fatalf("not granted: %s", resp.Status)
	}
	tok, err := tsp.ParseToken(resp.Token)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Info.SerialNumber
}

// tokenRecord is one token as recorded in a timestamp.issue record.
type tokenRecord struct {
	unit    string            // the record's object: the unit certificate's serial
	details map[string]string // the token's item
}

// records reads the tokens recorded in the collective timestamp.issue
// records, in order.
func (f *fixture) records(t *testing.T) []tokenRecord {
	t.Helper()
	var out []tokenRecord
	err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Action != timestamp.ActionIssue {
			return nil
		}
		var c struct {
			Count int                 `json:"count"`
			Items []map[string]string `json:"items"`
		}
		if err := json.Unmarshal(r.Details, &c); err != nil {
			return err
		}
		if r.Actor != "thiqa-tsa" || r.Object == "" || c.Count != len(c.Items) || c.Count == 0 {
			return fmt.Errorf("timestamp.issue record by %q for %q with %d of %d items", r.Actor, r.Object, len(c.Items), c.Count)
		}
		for _, it := range c.Items {
			out = append(out, tokenRecord{unit: r.Object, details: it})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sqlCount runs a count query straight on the database.
func (f *fixture) sqlCount(t *testing.T, q string) int {
	t.Helper()
	driver := "sqlite"
	if f.cfg.Driver == store.DriverPostgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, f.cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// unitKeys counts the unit keys on the token.
func (f *fixture) unitKeys(t *testing.T) int {
	t.Helper()
	labels, err := f.keys.Labels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range labels {
		if l == "tsa-unit" || strings.HasPrefix(l, "tsa-unit-") {
			n++
		}
	}
	return n
}

func checkUnique(t *testing.T, serials []*big.Int) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range serials {
		if seen[s.String()] {
			t.Fatalf("serial %s issued twice: %v", s, serials)
		}
		seen[s.String()] = true
	}
}

// interop drives openssl and the HTTP client against a running TSA and
// returns the serials of the tokens it got.
func (f *fixture) interop(t *testing.T, in *instance) []*big.Int {
	t.Helper()
	data := filepath.Join(f.work, "document.txt")
	writeFile(t, data, "a birth certificate, issued today\n")
	tampered := filepath.Join(f.work, "tampered.txt")
	writeFile(t, tampered, "a birth certificate, issued yesterday\n")
	var serials []*big.Int

	// SHA-256 with the certificate in the token.
	q := f.query(t, data, "-sha256", "-cert")
	r, resp := f.stamp(t, in, q)
	serials = append(serials, serialOf(t, resp))
	if out, ok := f.verify(t, f.chain, "-queryfile", q, "-in", r); !ok {
		t.Fatalf("openssl ts -verify (SHA-256, -cert): %s", out)
	}
	if out, ok := f.verify(t, f.chain, "-data", tampered, "-in", r); ok || strings.Contains(out, "Verification: OK") {
		t.Fatalf("a tampered document verified: %s", out)
	}
	if out, ok := f.verify(t, f.chain, "-data", data, "-in", r); !ok {
		t.Fatalf("openssl ts -verify -data: %s", out)
	}

	// Without -cert the token carries no certificate: the verifier brings it.
	q = f.query(t, data, "-sha256")
	r, resp = f.stamp(t, in, q)
	serials = append(serials, serialOf(t, resp))
	if tok, _ := tsp.ParseToken(resp.Token); len(tok.Certificates) != 0 {
		t.Fatalf("token without certReq carries %d certificates", len(tok.Certificates))
	}
	if out, ok := f.verify(t, f.withUnit(t, readFile(t, f.units.UnitPath())), "-queryfile", q, "-in", r); !ok {
		t.Fatalf("openssl ts -verify (no -cert): %s", out)
	}

	// SHA-512.
	q = f.query(t, data, "-sha512", "-cert")
	r, resp = f.stamp(t, in, q)
	serials = append(serials, serialOf(t, resp))
	if out, ok := f.verify(t, f.chain, "-queryfile", q, "-in", r); !ok {
		t.Fatalf("openssl ts -verify (SHA-512): %s", out)
	}

	// SHA-1 is refused with badAlg (and consumes no serial).
	q = f.query(t, data, "-sha1", "-cert")
	r, resp = f.stamp(t, in, q)
	if resp.Status.Status != tsp.StatusRejection || resp.Status.FailInfo != tsp.BadAlg || resp.Token != nil {
		t.Fatalf("SHA-1 request: %s", resp.Status)
	}
	if out, _ := openssl(t, "ts", "-reply", "-in", r, "-text"); !strings.Contains(out, "Status: Rejected") || !strings.Contains(out, "unrecognized or unsupported algorithm") {
		t.Fatalf("openssl reads the SHA-1 refusal as:\n%s", out)
	}

	// The HTTP client `thiqa timestamp` uses: its token verifies with
	// openssl -token_in.
	client, err := timestamp.NewClient(in.base+"/tsa", timestamp.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, ok := timestamp.HashByName("SHA384")
	if !ok || h != crypto.SHA384 {
		t.Fatalf("HashByName(SHA384) = %v, %v", h, ok)
	}
	if _, ok := timestamp.HashByName("md5"); ok {
		t.Fatal("HashByName knows md5")
	}
	der, err := client.TimestampData(t.Context(), strings.NewReader(readFile(t, data)), h)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := tsp.ParseToken(der); err != nil || !strings.HasPrefix(tok.Summary(), "serial ") || !strings.Contains(tok.Summary(), ", policy ") {
		t.Fatalf("the token's summary: %v", err)
	}
	tokPath := filepath.Join(f.work, "client.tst")
	writeFile(t, tokPath, string(der))
	if out, ok := f.verify(t, f.chain, "-data", data, "-in", tokPath, "-token_in"); !ok {
		t.Fatalf("openssl ts -verify of the client's token: %s", out)
	}
	parsed, err := tsp.ParseToken(der)
	if err != nil {
		t.Fatal(err)
	}
	serials = append(serials, parsed.Info.SerialNumber)

	// No request could be read: HTTP 415 with a problem body, no serial.
	resp2, err := http.Post(in.base+"/tsa", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("wrong media type: %d", resp2.StatusCode)
	}
	// Garbage: an RFC 3161 rejection.
	if resp, err := tsp.ParseResponse(post(t, in.base, []byte("not DER"))); err != nil || resp.Status.FailInfo != tsp.BadDataFormat {
		t.Fatalf("garbage body: %v %v", resp, err)
	}
	// Other paths under the prefix go on to the mux.
	if resp, err := http.Get(in.base + "/tsa/other"); err != nil || resp.StatusCode != http.StatusTeapot {
		t.Fatalf("GET /tsa/other did not reach the mux: %v %v", resp, err)
	}
	return serials
}

// TestTSAService runs the TSA as `thiqa init` and `thiqa serve` do, on
// SQLite and PostgreSQL with the unit key on SoftHSM: the unit is made
// once, tokens verify with openssl, every token is recorded before it
// leaves, serials stay unique across a restart and between two instances,
// and the signer's in-process client gets the same tokens.
func TestTSAService(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { runTSAService(t, d) })
	}
}

func runTSAService(t *testing.T, d storetest.Dialect) {
	f := newFixture(t, d)
	first, err := f.units.Init(t.Context(), "thiqa-init")
	if err != nil {
		t.Fatal(err)
	}
	unitPEM := readFile(t, f.units.UnitPath())
	if again, err := f.units.Init(t.Context(), "thiqa-init"); err != nil || again.Key.URI != first.Key.URI || readFile(t, f.units.UnitPath()) != unitPEM {
		t.Fatalf("a second init changed something: %v", err)
	}
	// A lost unit.pem comes back from the store: the key is not certified twice.
	if err := os.Remove(f.units.UnitPath()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil || readFile(t, f.units.UnitPath()) != unitPEM {
		t.Fatalf("init did not restore the same unit certificate: %v", err)
	}
	if n := f.sqlCount(t, "SELECT count(*) FROM certificates WHERE profile = 'tsa-unit' AND state = 'issued'"); n != 1 {
		t.Fatalf("%d tsa-unit certificates issued, want one", n)
	}
	if n := f.unitKeys(t); n != 1 || f.keys.generated != 1 {
		t.Fatalf("%d unit keys on the token (%d generated), want one", n, f.keys.generated)
	}
	unit := first.Cert
	if len(unit.ExtKeyUsage) != 1 || unit.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || !strings.Contains(unit.Issuer.CommonName, "tsa CA") {
		t.Fatalf("unit certificate: EKU %v, issuer %s", unit.ExtKeyUsage, unit.Issuer)
	}

	in := f.serve(t, timestamp.NewStaticChecker(true), 30*24*time.Hour)
	if err := in.svc.Ready(t.Context()); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	serials := f.interop(t, in)

	// The signer's in-process client: the same token, recorded for its requester.
	doc := sha256.Sum256([]byte("a birth certificate, issued today\n"))
	own := timestamp.NewInProcessClient(in.svc, "addr:in-process")
	der, err := own.Timestamp(t.Context(), doc[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	tokPath := filepath.Join(f.work, "own.tst")
	writeFile(t, tokPath, string(der))
	if out, ok := f.verify(t, f.chain, "-data", filepath.Join(f.work, "document.txt"), "-in", tokPath, "-token_in"); !ok {
		t.Fatalf("openssl ts -verify of the in-process token: %s", out)
	}
	tok, _ := tsp.ParseToken(der)
	serials = append(serials, tok.Info.SerialNumber)
	if _, err := own.Timestamp(t.Context(), doc[:20], crypto.SHA256); err == nil {
		t.Fatal("the in-process client took a digest of the wrong size")
	}
	if n := in.tokensIssued(t); n != float64(len(serials)) {
		t.Fatalf("thiqa_tsa_tokens_total %v, want %d", n, len(serials))
	}

	// Serials stay unique across a restart and between two instances on
	// one database.
	data := filepath.Join(f.work, "document.txt")
	restarted, second := f.serve(t, timestamp.NewStaticChecker(true), 30*24*time.Hour), f.serve(t, timestamp.NewStaticChecker(true), 30*24*time.Hour)
	var queries [][]byte
	for range 40 {
		raw, err := os.ReadFile(f.query(t, data, "-sha256"))
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, raw)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(queries))
	for i, inst := range []*instance{restarted, second, restarted, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, q := range queries[i*10 : (i+1)*10] {
				resp, err := http.Post(inst.base+"/tsa", timestamp.QueryContentType, bytes.NewReader(q))
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r, err := tsp.ParseResponse(body)
				if err != nil || r.Status.Status != tsp.StatusGranted {
					errs <- fmt.Errorf("reply %v: %v", r, err)
					return
				}
				tok, err := tsp.ParseToken(r.Token)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				serials = append(serials, tok.Info.SerialNumber)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkUnique(t, serials)

	if rep, err := audit.Verify(t.Context(), f.db); err != nil || !rep.OK() {
		t.Fatalf("audit verify: %v %v", rep, err)
	}
	recs := f.records(t)
	if len(recs) != len(serials) {
		t.Fatalf("%d timestamp.issue records for %d tokens", len(recs), len(serials))
	}
	unitSerial := hex.EncodeToString(unit.SerialNumber.Bytes())
	for i, r := range recs {
		if r.unit != unitSerial || r.details["policy"] != "0.4.0.2023.1.1" || r.details["genTime"] == "" || r.details["imprint"] == "" || r.details["serial"] == "" {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if recs[0].details["imprint"] != hex.EncodeToString(doc[:]) || recs[0].details["requester"] != "addr:127.0.0.1" || recs[0].details["hashAlgorithm"] != "SHA-256" {
		t.Fatalf("first record: %+v", recs[0])
	}
	if n := len(f.recordsBy(recs, "addr:in-process")); n != 1 {
		t.Fatalf("%d tokens recorded for the in-process client, want 1", n)
	}
}

// recordsBy returns the records of a requester.
func (f *fixture) recordsBy(recs []tokenRecord, requester string) []tokenRecord {
	var out []tokenRecord
	for _, r := range recs {
		if r.details["requester"] == requester {
			out = append(out, r)
		}
	}
	return out
}

// A TSA whose clock is not known to be in sync refuses with
// timeNotAvailable, consumes no serial, records nothing and is not ready.
func TestTSAClockOutOfSync(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
		t.Fatal(err)
	}
	in := f.serve(t, timestamp.NewStaticChecker(false), 30*24*time.Hour)
	if err := in.svc.Ready(t.Context()); !errors.Is(err, timestamp.ErrClockNotInSync) ||
		!strings.Contains(err.Error(), "timestamp: clock not within the declared accuracy") {
		t.Fatalf("ready while out of sync: %v", err)
	}
	data := filepath.Join(f.work, "d")
	writeFile(t, data, "x")
	r, resp := f.stamp(t, in, f.query(t, data, "-sha256", "-cert"))
	if resp.Status.Status != tsp.StatusRejection || resp.Status.FailInfo != tsp.TimeNotAvailable {
		t.Fatalf("out of sync: %s", resp.Status)
	}
	if out, _ := openssl(t, "ts", "-reply", "-in", r, "-text"); !strings.Contains(out, "Status: Rejected") || !strings.Contains(out, "time source") {
		t.Fatalf("openssl reads the refusal as:\n%s", out)
	}
	client, err := timestamp.NewClient(in.base+"/tsa", timestamp.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("x"))
	var refused *timestamp.StatusError
	if _, err := client.Timestamp(t.Context(), sum[:], crypto.SHA256); !errors.As(err, &refused) || refused.Status.FailInfo != tsp.TimeNotAvailable ||
		!strings.Contains(err.Error(), "timeNotAvailable") {
		t.Fatalf("the client against an out-of-sync TSA: %v", err)
	}
	if _, err := timestamp.NewInProcessClient(in.svc, "addr:in-process").Timestamp(t.Context(), sum[:], crypto.SHA256); !errors.As(err, &refused) {
		t.Fatalf("the in-process client against an out-of-sync TSA: %v", err)
	}
	if n := storetest.AuditCount(t, f.db, timestamp.ActionIssue, audit.OutcomeSuccess); n != 0 {
		t.Fatalf("%d tokens recorded while out of sync", n)
	}
	if n := f.sqlCount(t, "SELECT count(*) FROM tsa_serial_counters"); n != 0 {
		t.Fatalf("serial counters touched while refusing: %d", n)
	}
}

// With renewBefore beyond the unit certificate's remaining life, the
// service replaces the unit with a new key and certificate before serving
// (once: a new unit due at once is not renewed again), and the tokens are
// signed by the new unit.
func TestTSAUnitRenewal(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, f.units.UnitPath())
	in := f.serve(t, timestamp.NewStaticChecker(true), 1096*24*time.Hour)
	after := readFile(t, f.units.UnitPath())
	if after == before || !strings.HasPrefix(in.svc.Unit().Key.Label, "tsa-unit-") {
		t.Fatalf("the unit was not renewed (key %s)", in.svc.Unit().Key.Label)
	}
	data := filepath.Join(f.work, "d")
	writeFile(t, data, "renewed")
	q := f.query(t, data, "-sha256")
	r, resp := f.stamp(t, in, q)
	serialOf(t, resp)
	if out, ok := f.verify(t, f.withUnit(t, after), "-queryfile", q, "-in", r); !ok {
		t.Fatalf("token of the renewed unit: %s", out)
	}
	// The old unit's certificate does not verify the new token.
	if out, ok := f.verify(t, f.withUnit(t, before), "-queryfile", q, "-in", r); ok {
		t.Fatalf("the old unit certificate verifies a token of the new key: %s", out)
	}
	// The renewed unit's Authority took over the metrics.
	if n := in.tokensIssued(t); n != 1 {
		t.Fatalf("thiqa_tsa_tokens_total %v after renewal, want 1", n)
	}
	if err := in.svc.RenewIfDue(t.Context(), time.Now()); err != nil || readFile(t, f.units.UnitPath()) != after {
		t.Fatalf("a unit renewal cannot improve on was renewed again: %v", err)
	}
	if n := f.unitKeys(t); n != 2 {
		t.Fatalf("%d unit keys, want the original and the renewed one", n)
	}
	if n := storetest.AuditCount(t, f.db, timestamp.ActionRenewUnit, audit.OutcomeSuccess); n != 1 {
		t.Fatalf("%d tsa.unit.renew records", n)
	}
	if rep, err := audit.Verify(t.Context(), f.db); err != nil || !rep.OK() {
		t.Fatalf("audit verify: %v %v", rep, err)
	}
}

// Without a unit, the service of a section does not start: an error
// wrapping fs.ErrNotExist, for cmd/thiqa to say "run thiqa init". A
// section with a bad renewal margin is refused.
func TestTSAServiceWithoutUnit(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	o := timestamp.ServiceOptions{Units: f.units, Clock: timestamp.NewStaticChecker(true), Audit: f.log}
	c := timestamp.DefaultServiceConfig()
	if _, err := timestamp.NewServiceFromConfig(t.Context(), c, f.db.SerialBlocks(), o); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a service without a unit: %v", err)
	}
	c.RenewBefore = "soon"
	if _, err := timestamp.NewServiceFromConfig(t.Context(), c, f.db.SerialBlocks(), o); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a bad renewBefore: %v", err)
	}
	var zero timestamp.Service
	if _, err := timestamp.NewInProcessClient(&zero, "x").Timestamp(t.Context(), make([]byte, 32), crypto.SHA256); err == nil {
		t.Fatal("a time-stamp without a unit")
	}
	if err := zero.Ready(t.Context()); err == nil {
		t.Fatal("ready without a unit")
	}
}
