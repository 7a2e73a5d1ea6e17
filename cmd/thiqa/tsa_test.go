package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/timestamp/clock"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// stampAs posts a SHA-256 time-stamp request to srv's /tsa with an optional
// bearer token and returns the parsed reply.
func stampAs(t *testing.T, srv *server, bearer string) *tsp.Response {
	t.Helper()
	sum := sha256.Sum256([]byte("a birth certificate, issued today\n"))
	der, err := (&tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA256, HashedMessage: sum[:]}, Nonce: big.NewInt(7), CertReq: true}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
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
	r, err := tsp.ParseResponse(body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/timestamp-reply" || err != nil {
		t.Fatalf("POST /tsa: %d %s %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
	}
	return r
}

// tokenRequesters reads the requesters of the tokens recorded in the
// collective timestamp.issue records, in order.
func tokenRequesters(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT actor, details FROM audit_log WHERE action = 'timestamp.issue' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var actor, details string
		if err := rows.Scan(&actor, &details); err != nil {
			t.Fatal(err)
		}
		var c struct {
			Items []map[string]string `json:"items"`
		}
		if err := json.Unmarshal([]byte(details), &c); err != nil || actor != "thiqa-tsa" {
			t.Fatalf("timestamp.issue record by %q: %v", actor, err)
		}
		for _, it := range c.Items {
			out = append(out, it["requester"])
		}
	}
	return out
}

// TestTSAThroughTheBinary is the end-to-end check of the TSA's wiring
// (timestamp's own tests cover the service on SQLite and PostgreSQL with
// openssl): init makes the unit once, serve mounts POST /tsa and /readyz,
// warns about the static clock, names the requester from the credentials
// that come along and exposes the metrics, and `thiqa timestamp` gets a
// token openssl verifies.
func TestTSAThroughTheBinary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := mustThiqa(t, nil, "init", "--data", dir)
	if !strings.Contains(first.stdout, "TSA unit") {
		t.Fatalf("init output lacks the TSA unit:\n%s", first.stdout)
	}
	unitPEM := mustRead(t, filepath.Join(dir, "tsa", "unit.pem"))
	if again := mustThiqa(t, nil, "init", "--data", dir); again.stdout != first.stdout || mustRead(t, filepath.Join(dir, "tsa", "unit.pem")) != unitPEM {
		t.Fatalf("second init changed something:\n%s\n%s", first.stdout, again.stdout)
	}
	if keys := mustThiqa(t, nil, "keys", "list", "--data", dir); strings.Count(keys.stdout, "object=tsa-unit;") != 1 {
		t.Fatalf("want one TSA unit key:\n%s", keys.stdout)
	}
	srv := startServer(t, dir, nil)
	if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"tsa":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if !strings.Contains(srv.stderr.String(), "CLOCK DISCIPLINE IS DISABLED") {
		t.Fatal("serve does not warn that the static clock source disables clock discipline")
	}

	// The CLI: the token verifies with openssl -token_in.
	work := t.TempDir()
	data, tok := filepath.Join(work, "document.txt"), filepath.Join(work, "cli.tst")
	writeFile(t, data, "a birth certificate, issued today\n")
	cli := mustThiqa(t, nil, "timestamp", "--url", srv.base+"/tsa", "--in", data, "--out", tok, "--hash", "sha384")
	if !strings.Contains(cli.stdout, "serial") {
		t.Fatalf("thiqa timestamp printed %q", cli.stdout)
	}
	out, err := exec.Command(testenv.Tool(t, "openssl"), "ts", "-verify", "-CAfile", filepath.Join(dir, "ca", "root.pem"),
		"-untrusted", filepath.Join(dir, "tsa", "chain.pem"), "-data", data, "-in", tok, "-token_in").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl ts -verify of the CLI's token: %v %s", err, out)
	}
	if bad := thiqa(t, nil, "timestamp", "--url", srv.base+"/tsa", "--in", data, "--out", tok, "--hash", "md5"); bad.code != 2 {
		t.Fatalf("--hash md5: exit %d", bad.code)
	}

	// A citizen's bearer token names the requester in the record; a refused
	// bearer token does not stop a public time-stamp, but it is not taken
	// as the requester's identity.
	citizen := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "citizen").stdout)
	for _, bearer := range []string{"", citizen, citizen[:len(citizen)-4] + "AAAA"} {
		if r := stampAs(t, srv, bearer); r.Status.Status != tsp.StatusGranted {
			t.Fatalf("time-stamp with bearer %q: %s", bearer, r.Status)
		}
	}
	code, _, body := srv.get(t, "/metrics", "")
	if code != http.StatusOK || !strings.Contains(string(body), "thiqa_tsa_tokens_total 4") {
		t.Fatalf("/metrics lacks thiqa_tsa_tokens_total 4")
	}
	srv.stop(t)

	if out := mustThiqa(t, nil, "audit", "verify", "--data", dir); !strings.Contains(out.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", out.stdout)
	}
	want := []string{"addr:127.0.0.1", "addr:127.0.0.1", "jwt:12345678", "addr:127.0.0.1 (credentials refused)"}
	if got := tokenRequesters(t, filepath.Join(dir, "thiqa.db")); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("tokens recorded for %q, want %q", got, want)
	}
}

// A TSA configured out of sync is not ready, and `thiqa timestamp` exits
// exitRefused naming timeNotAvailable.
func TestTSAClockOutOfSync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "  clock:\n    source: static\n", "  clock:\n    source: static-out-of-sync\n", 1)
	})
	mustThiqa(t, nil, "init", "--data", dir, "--config", conf)
	srv := startServer(t, dir, nil)
	code, _, body := srv.get(t, "/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"tsa":"timestamp: clock not within the declared accuracy`) || !strings.Contains(string(body), `"store":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	data := filepath.Join(t.TempDir(), "d")
	writeFile(t, data, "x")
	cli := thiqa(t, nil, "timestamp", "--url", srv.base+"/tsa", "--in", data, "--out", filepath.Join(t.TempDir(), "t"))
	if line := errorLine(t, cli); cli.code != exitRefused || !strings.Contains(line, "timeNotAvailable") {
		t.Fatalf("thiqa timestamp against an out-of-sync TSA: exit %d, %q", cli.code, line)
	}
	srv.stop(t)
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
	srv := startServer(t, dir, nil)
	if strings.Contains(srv.stderr.String(), "CLOCK DISCIPLINE IS DISABLED") {
		t.Fatal("serve warns about a disabled clock check with source kernel")
	}
	code, _, body := srv.get(t, "/readyz", "")
	resp := stampAs(t, srv, "")
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
