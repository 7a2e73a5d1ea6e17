package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/thiqa/thiqa/internal/testenv"
)

// thiqaBin is the binary under test, built once by TestMain in binDir,
// which TestMain removes at the end (with the shared fixtures in it).
var thiqaBin, binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "thiqa-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	thiqaBin = filepath.Join(dir, "thiqa")
	// -trimpath as `make build` (and TestVersion's stamped build, which
	// then only links anew instead of compiling every package again).
	args := []string{"build", "-trimpath", "-o", thiqaBin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building thiqa:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// thiqa runs the binary with args and returns what it printed.
func thiqa(t *testing.T, env []string, args ...string) result {
	t.Helper()
	testenv.PKCS11Module(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, thiqaBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	noDataRace(t, errb.String())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running thiqa %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// noDataRace fails the test when stderr, a run of the binary under test,
// holds a report of the race detector (a binary built by `go test -race`).
func noDataRace(t *testing.T, stderr string) {
	t.Helper()
	if i := strings.Index(stderr, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("the race detector reported a data race in thiqa:\n%s", stderr[i:min(len(stderr), i+8000)])
	}
}

// mustThiqa runs the binary and fails the test unless it exits 0.
func mustThiqa(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := thiqa(t, env, args...)
	if r.code != 0 {
		t.Fatalf("thiqa %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// errorLine returns the single "thiqa CMD: …" error line of stderr (logs
// are JSON lines and are ignored), failing unless there is exactly one.
func errorLine(t *testing.T, r result) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "thiqa ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want exactly one error line, got %d:\n%s", len(lines), r.stderr)
	}
	return lines[0]
}

// server is a running `thiqa serve`.
type server struct {
	cmd    *exec.Cmd
	base   string
	stderr *testenv.SyncBuffer
}

// startServer runs `thiqa serve` on a free loopback port until the test ends.
func startServer(t *testing.T, dir string, env []string) *server {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(thiqaBin, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--ready-file", ready)
	cmd.Env = append(os.Environ(), env...)
	var errb testenv.SyncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &errb}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		noDataRace(t, errb.String())
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if raw, err := os.ReadFile(ready); err == nil {
			s.base = "http://" + strings.TrimSpace(string(raw))
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("thiqa serve did not become ready:\n%s", errb.String())
	return nil
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("thiqa serve did not exit cleanly: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("thiqa serve did not stop after SIGTERM")
	}
}

// get fetches path with an optional bearer token.
func (s *server) get(t *testing.T, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
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
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func TestLocalLifecycleOnSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := mustThiqa(t, nil, "init", "--data", dir)
	again := mustThiqa(t, nil, "init", "--data", dir)
	if first.stdout != again.stdout {
		t.Fatalf("second init changed something:\nfirst:  %s\nsecond: %s", first.stdout, again.stdout)
	}
	keys := mustThiqa(t, nil, "keys", "list", "--data", dir)
	if strings.Count(keys.stdout, "object=dev-token-issuer") != 1 {
		t.Fatalf("want exactly one development issuer key, got:\n%s", keys.stdout)
	}

	srv := startServer(t, dir, nil)
	if code, _, body := srv.get(t, "/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	code, _, body := srv.get(t, "/readyz", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"store":"ok"`) || !strings.Contains(string(body), `"token":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	code, hdr, body := srv.get(t, "/api/v1/whoami", "")
	if code != http.StatusUnauthorized || hdr.Get("Content-Type") != "application/problem+json" || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("unauthenticated whoami: %d %v %s", code, hdr, body)
	}

	citizen := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "citizen").stdout)
	code, _, body = srv.get(t, "/api/v1/whoami", citizen)
	var who struct {
		Subject, Method, CivilNumber string
		Roles                        []string
	}
	if err := json.Unmarshal(body, &who); err != nil || code != http.StatusOK {
		t.Fatalf("citizen whoami: %d %s (%v)", code, body, err)
	}
	if who.Subject != "12345678" || who.Method != "jwt" || len(who.Roles) != 1 || who.Roles[0] != "citizen" {
		t.Fatalf("citizen whoami: %+v", who)
	}
	agency := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "NTROM-1234567", "--role", "agency", "--ttl", "5m").stdout)
	if code, _, body := srv.get(t, "/api/v1/whoami", agency); code != http.StatusOK || !strings.Contains(string(body), `"subject":"NTROM-1234567"`) {
		t.Fatalf("agency whoami: %d %s", code, body)
	}
	tampered := agency[:len(agency)-4] + "AAAA"
	if code, _, _ := srv.get(t, "/api/v1/whoami", tampered); code != http.StatusUnauthorized {
		t.Fatalf("tampered token: got %d, want 401", code)
	}
	code, _, body = srv.get(t, "/metrics", "")
	for _, want := range []string{"go_goroutines", "thiqa_hsm_pool_sessions_in_use", "thiqa_audit_records_total", "thiqa_auth_requests_total"} {
		if code != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s (status %d)", want, code)
		}
	}
	srv.stop(t)
	if strings.Contains(srv.stderr.String(), mustRead(t, filepath.Join(dir, "secrets", "user.pin"))) {
		t.Fatal("the user PIN appears in the server's log")
	}

	verified := mustThiqa(t, nil, "audit", "verify", "--data", dir)
	if !strings.Contains(verified.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", verified.stdout)
	}
	// init (key generation, data.init), init again, service start and stop.
	for _, action := range []string{"key.generate", "data.init", "service.start", "service.stop"} {
		if n := countAudit(t, filepath.Join(dir, "thiqa.db"), action); n < 1 {
			t.Fatalf("no %s audit record", action)
		}
	}

	// Editing one record breaks the chain at that record.
	tamperSQLite(t, filepath.Join(dir, "thiqa.db"), "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
	broken := thiqa(t, nil, "audit", "verify", "--data", dir)
	if broken.code == 0 || !strings.Contains(broken.stdout, "BROKEN") || !strings.Contains(broken.stdout, "2") {
		t.Fatalf("audit verify after tampering: exit %d\n%s%s", broken.code, broken.stdout, broken.stderr)
	}
}

func TestLifecycleOnPostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
	})
	env := []string{"THIQA_TEST_DSN=" + dsn}
	mustThiqa(t, env, "init", "--data", dir, "--config", conf)
	if _, err := os.Stat(filepath.Join(dir, "thiqa.db")); err == nil {
		t.Fatal("a PostgreSQL data folder has a SQLite file")
	}
	srv := startServer(t, dir, env)
	if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	srv.stop(t)
	out := mustThiqa(t, env, "audit", "verify", "--data", dir)
	if !strings.Contains(out.stdout, "audit chain OK: ") { // init steps add records (CA keys, certificates)
		t.Fatalf("audit verify on PostgreSQL: %s", out.stdout)
	}
}

func TestBadInputIsOneClearLine(t *testing.T) {
	t.Run("missing module, nothing created", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		conf := editedConfig(t, dir, func(y string) string {
			return strings.Replace(y, "/usr/lib/softhsm/libsofthsm2.so", "/nonexistent/libpkcs11.so", 1)
		})
		r := thiqa(t, nil, "init", "--data", dir, "--config", conf)
		if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "/nonexistent/libpkcs11.so") {
			t.Fatalf("exit %d, %q", r.code, line)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("init left %s behind: %v", dir, err)
		}
	})

	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	cfgPath := filepath.Join(dir, "thiqa.yaml")
	original := mustRead(t, cfgPath)
	edit := func(t *testing.T, from, to string) {
		t.Helper()
		if !strings.Contains(original, from) {
			t.Fatalf("thiqa.yaml has no %q", from)
		}
		writeFile(t, cfgPath, strings.Replace(original, from, to, 1))
		t.Cleanup(func() { writeFile(t, cfgPath, original) })
	}

	t.Run("wrong PIN", func(t *testing.T) {
		pinFile := filepath.Join(dir, "secrets", "user.pin")
		good := mustRead(t, pinFile)
		writeFile(t, pinFile, "wrong-pin-7319\n")
		t.Cleanup(func() { writeFile(t, pinFile, good) })
		r := thiqa(t, nil, "keys", "list", "--data", dir)
		line := errorLine(t, r)
		if r.code == 0 || !strings.Contains(strings.ToLower(line), "pin") || strings.Contains(r.stderr, "wrong-pin-7319") {
			t.Fatalf("exit %d, %q", r.code, r.stderr)
		}
	})
	t.Run("unknown token label", func(t *testing.T) {
		edit(t, "tokenLabel: thiqa", "tokenLabel: no-such-token")
		r := thiqa(t, nil, "keys", "list", "--data", dir)
		if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "no-such-token") {
			t.Fatalf("exit %d, %q", r.code, line)
		}
	})
	t.Run("unknown key URI", func(t *testing.T) {
		edit(t, "object=dev-token-issuer", "object=no-such-key")
		r := thiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "citizen")
		if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "no-such-key") {
			t.Fatalf("exit %d, %q", r.code, line)
		}
	})
	t.Run("malformed config", func(t *testing.T) {
		edit(t, "listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\nlisten_typo: 1")
		r := thiqa(t, nil, "serve", "--data", dir)
		if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "listen_typo") {
			t.Fatalf("exit %d, %q", r.code, line)
		}
	})
	t.Run("unknown role", func(t *testing.T) {
		r := thiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "king")
		if line := errorLine(t, r); r.code != 2 || !strings.Contains(line, "king") {
			t.Fatalf("exit %d, %q", r.code, line)
		}
	})
	t.Run("uninitialised folder", func(t *testing.T) {
		r := thiqa(t, nil, "serve", "--data", filepath.Join(t.TempDir(), "nothing"))
		if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "thiqa init") {
			t.Fatalf("exit %d, %q", r.code, line)
		}
	})
	// Nothing above changed the folder: its audit chain still verifies.
	mustThiqa(t, nil, "audit", "verify", "--data", dir)
}

// editedConfig writes the default configuration for dir, changed by edit, to a
// file and returns its path.
func editedConfig(t *testing.T, dir string, edit func(string) string) string {
	t.Helper()
	y := edit(defaultConfig(t))
	p := filepath.Join(t.TempDir(), "thiqa.yaml")
	writeFile(t, p, y)
	return p
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tamperSQLite runs stmt on the database with the append-only triggers
// dropped, as an attacker with file access could.
func tamperSQLite(t *testing.T, path, stmt string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete", stmt} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// countAudit counts the audit records of an action.
func countAudit(t *testing.T, path, action string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log WHERE action = ?", action).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestServeStartsAndStopsCleanly: a taken port fails at once, having
// touched nothing; SIGINT and SIGTERM end a running server; -h lists every
// command and every benchmark.
func TestServeStartsAndStopsCleanly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	db := filepath.Join(dir, "thiqa.db")
	records := countAudit(t, db, "service.start")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	start := time.Now()
	r := thiqa(t, nil, "serve", "--data", dir, "--addr", taken.Addr().String())
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "address already in use") || time.Since(start) > 10*time.Second {
		t.Fatalf("serve on a taken port: exit %d after %s, %q", r.code, time.Since(start), line)
	}
	if n := countAudit(t, db, "service.start"); n != records {
		t.Fatalf("a server that could not listen wrote %d start records", n-records)
	}

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		srv := startServer(t, dir, nil)
		if code, _, _ := srv.get(t, "/healthz", ""); code != 200 {
			t.Fatalf("healthz: %d", code)
		}
		if err := srv.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("after %s: %v\n%s", sig, err, srv.stderr.String())
			}
		case <-time.After(shutdownGrace + 10*time.Second):
			t.Fatalf("thiqa serve ignored %s", sig)
		}
	}

	help := thiqa(t, nil, "-h")
	for _, c := range commands() {
		if !strings.Contains(help.stderr, "  "+c.name+" ") {
			t.Errorf("thiqa -h does not list %s:\n%s", c.name, help.stderr)
		}
	}
	bench := thiqa(t, nil, "bench", "-h")
	for _, b := range benchmarks() {
		if bench.code != 0 || !strings.Contains(bench.stderr, "  "+b.name+" ") {
			t.Errorf("thiqa bench -h (exit %d) does not list %s:\n%s", bench.code, b.name, bench.stderr)
		}
	}
}
