package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/timestamp/clock"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// tsaFixture is a data folder with a running server and the files openssl
// needs to verify its tokens.
type tsaFixture struct {
	dir, work string
	srv       *server
	root      string // ca/root.pem
	chain     string // tsa/chain.pem (the tsa CA)
	untrusted string // unit certificate + chain, for tokens without certificates
}

func newTSAFixture(t *testing.T, dir string, env []string) *tsaFixture {
	t.Helper()
	f := &tsaFixture{dir: dir, work: t.TempDir(), root: filepath.Join(dir, "ca", "root.pem"), chain: filepath.Join(dir, "tsa", "chain.pem")}
	f.untrusted = filepath.Join(f.work, "untrusted.pem")
	writeFile(t, f.untrusted, mustRead(t, filepath.Join(dir, "tsa", "unit.pem"))+mustRead(t, f.chain))
	f.srv = startServer(t, dir, env)
	return f
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

// postTSA posts a DER request to /tsa with an optional bearer token and
// returns the reply body, failing unless the answer is an RFC 3161 reply.
func postTSA(t *testing.T, srv *server, der []byte, bearer string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.base+"/tsa", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/timestamp-query")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
		t.Fatalf("POST /tsa: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return body
}

// query writes an openssl time-stamp query for data and returns its path.
func (f *tsaFixture) query(t *testing.T, data string, args ...string) string {
	t.Helper()
	q := filepath.Join(f.work, rand8(t)+".tsq")
	if out, ok := openssl(t, append([]string{"ts", "-query", "-data", data, "-out", q}, args...)...); !ok {
		t.Fatalf("openssl ts -query: %s", out)
	}
	return q
}

// stamp posts the query file and writes the reply; it returns the reply path
// and the parsed response.
func (f *tsaFixture) stamp(t *testing.T, q, bearer string) (string, *tsp.Response) {
	t.Helper()
	der, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	body := postTSA(t, f.srv, der, bearer)
	r := strings.TrimSuffix(q, ".tsq") + ".tsr"
	writeFile(t, r, string(body))
	resp, err := tsp.ParseResponse(body)
	if err != nil {
		t.Fatalf("parsing the reply: %v", err)
	}
	return r, resp
}

// verify runs openssl ts -verify with args and reports "Verification: OK".
func (f *tsaFixture) verify(t *testing.T, untrusted string, args ...string) (string, bool) {
	t.Helper()
	out, ok := openssl(t, append([]string{"ts", "-verify", "-CAfile", f.root, "-untrusted", untrusted}, args...)...)
	return out, ok && strings.Contains(out, "Verification: OK")
}

func rand8(t *testing.T) string {
	t.Helper()
	return testenv.UniqueLabel("q")
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

// tsaInterop drives openssl against the running TSA and returns the serials
// of the tokens it got.
func tsaInterop(t *testing.T, f *tsaFixture) []*big.Int {
	t.Helper()
	data := filepath.Join(f.work, "document.txt")
	writeFile(t, data, "a birth certificate, issued today\n")
	tampered := filepath.Join(f.work, "tampered.txt")
	writeFile(t, tampered, "a birth certificate, issued yesterday\n")
	var serials []*big.Int

	// SHA-256 with the certificate in the token.
	q := f.query(t, data, "-sha256", "-cert")
	r, resp := f.stamp(t, q, "")
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
	r, resp = f.stamp(t, q, "")
	serials = append(serials, serialOf(t, resp))
	if tok, _ := tsp.ParseToken(resp.Token); len(tok.Certificates) != 0 {
		t.Fatalf("token without certReq carries %d certificates", len(tok.Certificates))
	}
	if out, ok := f.verify(t, f.untrusted, "-queryfile", q, "-in", r); !ok {
		t.Fatalf("openssl ts -verify (no -cert): %s", out)
	}

	// SHA-512.
	q = f.query(t, data, "-sha512", "-cert")
	r, resp = f.stamp(t, q, "")
	serials = append(serials, serialOf(t, resp))
	if out, ok := f.verify(t, f.chain, "-queryfile", q, "-in", r); !ok {
		t.Fatalf("openssl ts -verify (SHA-512): %s", out)
	}

	// SHA-1 is refused with badAlg (and consumes no serial).
	q = f.query(t, data, "-sha1", "-cert")
	r, resp = f.stamp(t, q, "")
	if resp.Status.Status != tsp.StatusRejection || resp.Status.FailInfo != tsp.BadAlg || resp.Token != nil {
		t.Fatalf("SHA-1 request: %s", resp.Status)
	}
	if out, _ := openssl(t, "ts", "-reply", "-in", r, "-text"); !strings.Contains(out, "Status: Rejected") || !strings.Contains(out, "unrecognized or unsupported algorithm") {
		t.Fatalf("openssl reads the SHA-1 refusal as:\n%s", out)
	}

	// The CLI: the token verifies with openssl -token_in.
	tok := filepath.Join(f.work, "cli.tst")
	cli := mustThiqa(t, nil, "timestamp", "--url", f.srv.base+"/tsa", "--in", data, "--out", tok, "--hash", "sha384")
	if !strings.Contains(cli.stdout, "serial") {
		t.Fatalf("thiqa timestamp printed %q", cli.stdout)
	}
	if out, ok := f.verify(t, f.chain, "-data", data, "-in", tok, "-token_in"); !ok {
		t.Fatalf("openssl ts -verify of the CLI's token: %s", out)
	}
	raw, _ := os.ReadFile(tok)
	parsed, err := tsp.ParseToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	serials = append(serials, parsed.Info.SerialNumber)
	if bad := thiqa(t, nil, "timestamp", "--url", f.srv.base+"/tsa", "--in", data, "--out", tok, "--hash", "md5"); bad.code != 2 {
		t.Fatalf("--hash md5: exit %d", bad.code)
	}

	// No request could be read: HTTP 415 with a problem body, no serial.
	resp2, err := http.Post(f.srv.base+"/tsa", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("wrong media type: %d", resp2.StatusCode)
	}
	// Garbage: an RFC 3161 rejection.
	if resp, err := tsp.ParseResponse(postTSA(t, f.srv, []byte("not DER"), "")); err != nil || resp.Status.FailInfo != tsp.BadDataFormat {
		t.Fatalf("garbage body: %v %v", resp, err)
	}
	return serials
}

// checkUnique fails when a serial repeats.
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

// tsaRecord is one token as recorded in a timestamp.issue audit record:
// actor is its requester, object its serial.
type tsaRecord struct {
	actor, object string
	details       map[string]string
}

// tsaRecords reads the tokens recorded in the collective timestamp.issue
// records, in order.
func tsaRecords(t *testing.T, db *sql.DB, rebind func(string) string) []tsaRecord {
	t.Helper()
	rows, err := db.Query(rebind("SELECT actor, object, details FROM audit_log WHERE action = ? ORDER BY seq"), "timestamp.issue")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []tsaRecord
	for rows.Next() {
		var actor, object, details string
		if err := rows.Scan(&actor, &object, &details); err != nil {
			t.Fatal(err)
		}
		var c struct {
			Count int                 `json:"count"`
			Items []map[string]string `json:"items"`
		}
		if err := json.Unmarshal([]byte(details), &c); err != nil {
			t.Fatal(err)
		}
		if actor != "thiqa-tsa" || object == "" || c.Count != len(c.Items) || c.Count == 0 {
			t.Fatalf("timestamp.issue record by %q for %q with %d of %d items", actor, object, len(c.Items), c.Count)
		}
		for _, it := range c.Items {
			out = append(out, tsaRecord{actor: it["requester"], object: it["serial"], details: it})
		}
	}
	return out
}

func TestTSAOnSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := mustThiqa(t, nil, "init", "--data", dir)
	if !strings.Contains(first.stdout, "TSA unit") {
		t.Fatalf("init output lacks the TSA unit:\n%s", first.stdout)
	}
	unitPEM := mustRead(t, filepath.Join(dir, "tsa", "unit.pem"))
	if again := mustThiqa(t, nil, "init", "--data", dir); again.stdout != first.stdout || mustRead(t, filepath.Join(dir, "tsa", "unit.pem")) != unitPEM {
		t.Fatalf("second init changed something:\n%s\n%s", first.stdout, again.stdout)
	}
	// A lost unit.pem comes back from the store: the key is not certified twice.
	if err := os.Remove(filepath.Join(dir, "tsa", "unit.pem")); err != nil {
		t.Fatal(err)
	}
	mustThiqa(t, nil, "init", "--data", dir)
	if mustRead(t, filepath.Join(dir, "tsa", "unit.pem")) != unitPEM {
		t.Fatal("init did not restore the same unit certificate")
	}
	if n := countUnitCertificates(t, filepath.Join(dir, "thiqa.db")); n != 1 {
		t.Fatalf("%d tsa-unit certificates issued, want one", n)
	}
	if keys := mustThiqa(t, nil, "keys", "list", "--data", dir); strings.Count(keys.stdout, "object=tsa-unit;") != 1 {
		t.Fatalf("want one TSA unit key:\n%s", keys.stdout)
	}
	blk, _ := pem.Decode([]byte(unitPEM))
	unit, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(unit.ExtKeyUsage) != 1 || unit.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || !strings.Contains(unit.Issuer.CommonName, "TSA CA") {
		t.Fatalf("unit certificate: EKU %v, issuer %s", unit.ExtKeyUsage, unit.Issuer)
	}

	f := newTSAFixture(t, dir, nil)
	if code, _, body := f.srv.get(t, "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"tsa":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if !strings.Contains(f.srv.stderr.String(), "CLOCK DISCIPLINE IS DISABLED") {
		t.Fatal("serve does not warn that the static clock source disables clock discipline")
	}
	serials := tsaInterop(t, f)

	// A citizen's bearer token names the requester in the record.
	citizen := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "citizen").stdout)
	_, resp := f.stamp(t, f.query(t, filepath.Join(f.work, "document.txt"), "-sha256"), citizen)
	serials = append(serials, serialOf(t, resp))
	// A refused bearer token does not stop a public time-stamp, but it is
	// not taken as the requester's identity.
	_, resp = f.stamp(t, f.query(t, filepath.Join(f.work, "document.txt"), "-sha256"), citizen[:len(citizen)-4]+"AAAA")
	serials = append(serials, serialOf(t, resp))
	code, _, body := f.srv.get(t, "/metrics", "")
	if code != http.StatusOK || !strings.Contains(string(body), "thiqa_tsa_tokens_total 6") {
		t.Fatalf("/metrics lacks thiqa_tsa_tokens_total 6")
	}
	f.srv.stop(t)

	// Serials stay unique across a restart.
	f.srv = startServer(t, dir, nil)
	for range 3 {
		_, resp := f.stamp(t, f.query(t, filepath.Join(f.work, "document.txt"), "-sha256", "-cert"), "")
		serials = append(serials, serialOf(t, resp))
	}
	f.srv.stop(t)
	checkUnique(t, serials)

	if out := mustThiqa(t, nil, "audit", "verify", "--data", dir); !strings.Contains(out.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", out.stdout)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "thiqa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := tsaRecords(t, db, func(q string) string { return q })
	if len(recs) != len(serials) {
		t.Fatalf("%d timestamp.issue records for %d tokens", len(recs), len(serials))
	}
	sum := sha256.Sum256([]byte("a birth certificate, issued today\n"))
	for i, r := range recs {
		if r.object != serials[i].String() && !containsSerial(serials, r.object) {
			t.Fatalf("record %d names serial %s, not one of the tokens", i, r.object)
		}
		if r.details["policy"] != "0.4.0.2023.1.1" || r.details["genTime"] == "" || r.details["imprint"] == "" {
			t.Fatalf("record %d details: %v", i, r.details)
		}
	}
	if recs[0].details["imprint"] != hex.EncodeToString(sum[:]) || recs[0].actor != "addr:127.0.0.1" || recs[0].details["hashAlgorithm"] != "SHA-256" {
		t.Fatalf("first record: %+v", recs[0])
	}
	if recs[4].actor != "jwt:12345678" {
		t.Fatalf("the citizen's token was recorded for %q", recs[4].actor)
	}
	if recs[5].actor != "addr:127.0.0.1 (credentials refused)" || recs[5].details["requester"] != recs[5].actor {
		t.Fatalf("a tampered bearer token was recorded as %q", recs[5].actor)
	}
}

// countUnitCertificates counts the tsa-unit certificates in the store.
func countUnitCertificates(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM certificates WHERE profile = 'tsa-unit' AND state = 'issued'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func containsSerial(serials []*big.Int, s string) bool {
	for _, x := range serials {
		if x.String() == s {
			return true
		}
	}
	return false
}

// A TSA whose clock is not known to be in sync refuses with
// timeNotAvailable, consumes no serial and is not ready.
func TestTSAClockOutOfSync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "  clock:\n    source: static\n", "  clock:\n    source: static-out-of-sync\n", 1)
	})
	mustThiqa(t, nil, "init", "--data", dir, "--config", conf)
	f := newTSAFixture(t, dir, nil)
	code, _, body := f.srv.get(t, "/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"tsa":"timestamp: clock not within the declared accuracy`) || !strings.Contains(string(body), `"store":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	data := filepath.Join(f.work, "d")
	writeFile(t, data, "x")
	r, resp := f.stamp(t, f.query(t, data, "-sha256", "-cert"), "")
	if resp.Status.Status != tsp.StatusRejection || resp.Status.FailInfo != tsp.TimeNotAvailable {
		t.Fatalf("out of sync: %s", resp.Status)
	}
	if out, _ := openssl(t, "ts", "-reply", "-in", r, "-text"); !strings.Contains(out, "Status: Rejected") || !strings.Contains(out, "time source") {
		t.Fatalf("openssl reads the refusal as:\n%s", out)
	}
	cli := thiqa(t, nil, "timestamp", "--url", f.srv.base+"/tsa", "--in", data, "--out", filepath.Join(f.work, "t"))
	if line := errorLine(t, cli); cli.code != exitRefused || !strings.Contains(line, "timeNotAvailable") {
		t.Fatalf("thiqa timestamp against an out-of-sync TSA: exit %d, %q", cli.code, line)
	}
	f.srv.stop(t)
	if n := countAudit(t, filepath.Join(dir, "thiqa.db"), "timestamp.issue"); n != 0 {
		t.Fatalf("%d tokens recorded while out of sync", n)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "thiqa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM tsa_serial_counters").Scan(&n); err != nil || n != 0 {
		t.Fatalf("serial counters touched while refusing: %d %v", n, err)
	}
}

// With renewBefore beyond the unit certificate's remaining life, serve
// replaces the unit with a new key and certificate before serving, and the
// tokens are signed by the new unit.
func TestTSAUnitRenewal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "  renewBefore: 30d\n", "  renewBefore: 1096d\n", 1)
	})
	mustThiqa(t, nil, "init", "--data", dir, "--config", conf)
	before := mustRead(t, filepath.Join(dir, "tsa", "unit.pem"))
	f := newTSAFixture(t, dir, nil)
	after := mustRead(t, filepath.Join(dir, "tsa", "unit.pem"))
	if after == before {
		t.Fatal("the unit certificate was not renewed")
	}
	writeFile(t, f.untrusted, after+mustRead(t, f.chain))
	data := filepath.Join(f.work, "d")
	writeFile(t, data, "renewed")
	q := f.query(t, data, "-sha256")
	r, resp := f.stamp(t, q, "")
	serialOf(t, resp)
	if out, ok := f.verify(t, f.untrusted, "-queryfile", q, "-in", r); !ok {
		t.Fatalf("token of the renewed unit: %s", out)
	}
	// The old unit's certificate does not verify the new token.
	writeFile(t, f.untrusted, before+mustRead(t, f.chain))
	if out, ok := f.verify(t, f.untrusted, "-queryfile", q, "-in", r); ok {
		t.Fatalf("the old unit certificate verifies a token of the new key: %s", out)
	}
	// The renewed unit's Authority took over the metrics.
	if code, _, body := f.srv.get(t, "/metrics", ""); code != http.StatusOK || !strings.Contains(string(body), "thiqa_tsa_tokens_total 1") {
		t.Fatalf("/metrics after renewal: %d, thiqa_tsa_tokens_total 1 missing", code)
	}
	f.srv.stop(t)
	keys := mustThiqa(t, nil, "keys", "list", "--data", dir)
	if strings.Count(keys.stdout, "object=tsa-unit") != 2 {
		t.Fatalf("want the original and the renewed unit key:\n%s", keys.stdout)
	}
	if n := countAudit(t, filepath.Join(dir, "thiqa.db"), "tsa.unit.renew"); n != 1 {
		t.Fatalf("%d tsa.unit.renew records", n)
	}
	mustThiqa(t, nil, "audit", "verify", "--data", dir)
}

// Two instances on one PostgreSQL database: openssl verifies their tokens
// and their serials never collide.
func TestTSAOnPostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
	})
	env := []string{"THIQA_TEST_DSN=" + dsn}
	mustThiqa(t, env, "init", "--data", dir, "--config", conf)
	f := newTSAFixture(t, dir, env)
	serials := tsaInterop(t, f)
	second := startServer(t, dir, env)
	// Queries are prepared here; the goroutines only POST and parse.
	data := filepath.Join(f.work, "document.txt")
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
	for i, srv := range []*server{f.srv, second, f.srv, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, q := range queries[i*10 : (i+1)*10] {
				resp, err := http.Post(srv.base+"/tsa", "application/timestamp-query", bytes.NewReader(q))
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
	f.srv.stop(t)
	second.stop(t)
	checkUnique(t, serials)
	if out := mustThiqa(t, env, "audit", "verify", "--data", dir); !strings.Contains(out.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", out.stdout)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := tsaRecords(t, db, func(q string) string { return strings.Replace(q, "?", "$1", 1) })
	if len(recs) != len(serials) {
		t.Fatalf("%d timestamp.issue records for %d tokens", len(recs), len(serials))
	}
}

// With clock.source kernel the TSA follows the kernel's NTP state
// (adjtimex): on a machine whose kernel reports the clock unsynchronised,
// as containers without an NTP daemon do, it is not ready and refuses.
func TestTSAKernelClock(t *testing.T) {
	k, err := clock.NewKernel(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := k.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "  clock:\n    source: static\n", "  clock:\n    source: kernel\n", 1)
	})
	mustThiqa(t, nil, "init", "--data", dir, "--config", conf)
	f := newTSAFixture(t, dir, nil)
	if strings.Contains(f.srv.stderr.String(), "CLOCK DISCIPLINE IS DISABLED") {
		t.Fatal("serve warns about a disabled clock check with source kernel")
	}
	code, _, body := f.srv.get(t, "/readyz", "")
	data := filepath.Join(f.work, "d")
	writeFile(t, data, "x")
	_, resp := f.stamp(t, f.query(t, data, "-sha256"), "")
	t.Logf("kernel clock here: in sync %v (%s); /readyz %d %s", st.InSync, st.Reason, code, body)
	if st.InSync {
		if code != http.StatusOK || resp.Status.Status != tsp.StatusGranted {
			t.Fatalf("kernel in sync, but /readyz %d %s, reply %s", code, body, resp.Status)
		}
		return
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "kernel") || resp.Status.FailInfo != tsp.TimeNotAvailable {
		t.Fatalf("kernel out of sync, but /readyz %d %s, reply %s", code, body, resp.Status)
	}
}
