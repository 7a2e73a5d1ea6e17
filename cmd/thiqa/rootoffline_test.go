package main

import (
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestTakeOnlineRootOffline takes the root of a first-release deployment
// (testdata/upgrade-26fd854: its root key on the online token) offline as
// docs/ceremony.md says: the token copied, the root adopted into a new
// ceremony folder, the ceremony's root CRL as the proof, the online key
// retired. Then the server starts without the online-root warning and
// publishes the imported root CRL, and an issuing CA rolls over through
// the ceremony. Wrong tokens, missing or online-signed proofs and runs
// again after an interruption are refused or converge.
func TestTakeOnlineRootOffline(t *testing.T) {
	module := testenv.PKCS11Module(t)
	tmp := t.TempDir()
	dir := upgradeFolder(t, filepath.Join("testdata", "upgrade-26fd854"))
	// SoftHSM destroys an object's lock file with it; the fixture was
	// stored without them (scripts/make-upgrade-fixture.sh), a token in
	// use has them.
	objects, _ := filepath.Glob(filepath.Join(dir, "tokens", "*", "*.object"))
	for _, o := range objects {
		writeFile(t, strings.TrimSuffix(o, ".object")+".lock", "")
	}
	mustThiqa(t, nil, "init", "--data", dir)
	rootPEM := filepath.Join(dir, "ca", "root.pem")
	root := certOf(t, mustRead(t, rootPEM))

	if h := thiqa(t, nil, "-h"); !strings.Contains(h.stderr, "ca root adopt") || !strings.Contains(h.stderr, "ca root retire-online") {
		t.Fatalf("thiqa -h does not list the commands:\n%s", h.stderr)
	}
	r := thiqa(t, nil, "ca", "rollover", "--data", dir, "--name", "citizen")
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "thiqa ca root adopt") {
		t.Fatalf("rollover with the root online: %d %q", r.code, line)
	}

	// The deployment publishes its root CRL, signed online.
	srv := startServer(t, dir, nil)
	if !strings.Contains(srv.stderr.String(), "the root CA key is on the online token") || !strings.Contains(srv.stderr.String(), "thiqa ca root adopt") {
		t.Fatalf("no online-root warning before:\n%s", srv.stderr.String())
	}
	code, _, onlineCRL := srv.get(t, "/crl/root.crl", "")
	for deadline := time.Now().Add(20 * time.Second); code != http.StatusOK && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // the publisher signs it after the start
		code, _, onlineCRL = srv.get(t, "/crl/root.crl", "")
	}
	if code != http.StatusOK {
		t.Fatalf("/crl/root.crl: %d", code)
	}
	srv.stop(t)
	lastOnline := filepath.Join(tmp, "root-online.crl")
	writeFile(t, lastOnline, string(onlineCRL))

	// The copies the operator carries to the offline machine: the token
	// (SoftHSM: its folder), its PIN, the ca folder, the last root CRL.
	copied := filepath.Join(tmp, "usb")
	if err := os.MkdirAll(copied, 0o700); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(dir, "tokens"), filepath.Join(copied, "tokens"))
	copyTree(t, filepath.Join(dir, "ca"), filepath.Join(copied, "ca"))
	copyTree(t, filepath.Join(dir, "secrets"), filepath.Join(copied, "secrets"))
	cer := filepath.Join(tmp, "ceremony")
	adopt := func(folder, tokens, label, pin string) result {
		return thiqa(t, nil, "ca", "root", "adopt", "--ceremony", folder, "--root-cert", filepath.Join(copied, "ca", "root.pem"),
			"--ca-certs", filepath.Join(copied, "ca"), "--crl", lastOnline, "--module", module,
			"--softhsm-tokens", tokens, "--token-label", label, "--pin-file", pin)
	}

	// A token without the root's key: refused, nothing left behind.
	other := filepath.Join(tmp, "other")
	mustThiqa(t, nil, "ca", "root", "create", "--ceremony", other)
	r = adopt(cer, filepath.Join(other, "tokens"), "thiqa-root", filepath.Join(other, "secrets", "user.pin"))
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "holds no key of the root") {
		t.Fatalf("adopting from another token: %d %q", r.code, line)
	}
	if _, err := os.Stat(cer); !os.IsNotExist(err) {
		t.Fatalf("a refused adoption left %s behind (%v)", cer, err)
	}

	a := adopt(cer, filepath.Join(copied, "tokens"), "thiqa", filepath.Join(copied, "secrets", "user.pin"))
	if a.code != 0 || !strings.Contains(a.stdout, "root CA adopted") || !strings.Contains(a.stdout, "object=root-ca") ||
		!strings.Contains(a.stdout, "issuing CA    citizen") || !strings.Contains(a.stdout, ca.Fingerprint(root.Raw)) {
		t.Fatalf("adopt: %d\n%s\n%s", a.code, a.stdout, a.stderr)
	}
	if again := adopt(cer, filepath.Join(copied, "tokens"), "thiqa", filepath.Join(copied, "secrets", "user.pin")); again.code != 0 || !strings.Contains(again.stdout, "already adopted") {
		t.Fatalf("adopt again: %d\n%s%s", again.code, again.stdout, again.stderr)
	}
	if got := mustRead(t, filepath.Join(cer, "root.pem")); got != mustRead(t, rootPEM) {
		t.Fatal("the ceremony's root.pem is not the deployment's root")
	}
	if v := mustThiqa(t, nil, "audit", "verify", "--ceremony", cer); !strings.Contains(v.stdout, "ceremony log OK: 1 entries") ||
		!strings.Contains(v.stdout, "issuing CA    citizen") || !strings.Contains(v.stdout, "(adopted: ") {
		t.Fatalf("audit verify --ceremony:\n%s", v.stdout)
	}

	// Killed after ceremony.yaml and root.pem, before the log: a run again
	// adopts.
	cut := filepath.Join(tmp, "ceremony-cut")
	if err := os.MkdirAll(cut, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{config.CeremonyFileName, "root.pem", "softhsm2.conf"} {
		writeFile(t, filepath.Join(cut, f), mustRead(t, filepath.Join(cer, f)))
	}
	if r := adopt(cut, filepath.Join(copied, "tokens"), "thiqa", filepath.Join(copied, "secrets", "user.pin")); r.code != 0 || !strings.Contains(r.stdout, "root CA adopted") {
		t.Fatalf("adopt after an interrupted run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The proof: a root CRL the ceremony signs.
	proof := filepath.Join(tmp, "root.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", cer, "--out", proof)
	rl := crlOf(t, proof)
	if online := crlOf(t, lastOnline); rl.Number.Cmp(online.Number) <= 0 || rl.CheckSignatureFrom(root) != nil {
		t.Fatalf("the ceremony's CRL number %v after the online %v", rl.Number, online.Number)
	}

	// No proof, or a CRL the online key signed: refused, nothing changed.
	oldConfig := mustRead(t, filepath.Join(dir, "thiqa.yaml"))
	if r := thiqa(t, nil, "ca", "root", "retire-online", "--data", dir); r.code != 2 {
		t.Fatalf("retire-online without --crl: %d %s", r.code, r.stderr)
	}
	r = thiqa(t, nil, "ca", "root", "retire-online", "--data", dir, "--crl", lastOnline)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "the last the online root signed") || !strings.Contains(line, "nothing was changed") {
		t.Fatalf("retire-online with the online CRL: %d %q", r.code, line)
	}
	if mustRead(t, filepath.Join(dir, "thiqa.yaml")) != oldConfig || !rootKeyOnToken(t, dir, root) {
		t.Fatal("a refused retire-online changed the data folder")
	}

	// The proof beside a running thiqa serve (its shared lock on the
	// folder): refused, nothing changed. It went ahead, switching the
	// configuration and destroying the key under the server.
	releaseServe, err := backup.LockFolder(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	r = thiqa(t, nil, "ca", "root", "retire-online", "--data", dir, "--crl", proof)
	releaseServe()
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "thiqa serve") || !strings.Contains(line, "nothing was changed") {
		t.Fatalf("retire-online beside a running server: %d %q", r.code, line)
	}
	if mustRead(t, filepath.Join(dir, "thiqa.yaml")) != oldConfig || !rootKeyOnToken(t, dir, root) {
		t.Fatal("retire-online beside a running server changed the data folder")
	}

	// Killed after the configuration was switched, before the key went:
	// a run again destroys it.
	if _, err := config.SetRootOffline(dir); err != nil {
		t.Fatal(err)
	}
	mustThiqa(t, nil, "ca", "crl", "import", "--data", dir, "--crl", proof)
	ret := mustThiqa(t, nil, "ca", "root", "retire-online", "--data", dir, "--crl", proof)
	if !strings.Contains(ret.stdout, "online root key pkcs11:token=thiqa;object=root-ca") || !strings.Contains(ret.stdout, "destroyed") {
		t.Fatalf("retire-online:\n%s", ret.stdout)
	}
	if rootKeyOnToken(t, dir, root) {
		t.Fatal("the root key is still on the online token")
	}
	if again := mustThiqa(t, nil, "ca", "root", "retire-online", "--data", dir, "--crl", proof); !strings.Contains(again.stdout, "nothing else to do") {
		t.Fatalf("retire-online again:\n%s", again.stdout)
	}
	// Another node of a cluster (its thiqa.yaml still names the key, which
	// is gone from the shared token): switched and recorded.
	writeFile(t, filepath.Join(dir, "thiqa.yaml"), oldConfig)
	if node := mustThiqa(t, nil, "ca", "root", "retire-online", "--data", dir, "--crl", proof); !strings.Contains(node.stdout, "ca.root is now offline") ||
		!strings.Contains(node.stdout, "holds no key of the root") {
		t.Fatalf("retire-online on a second node:\n%s", node.stdout)
	}
	if objects := sqliteStrings(t, filepath.Join(dir, "thiqa.db"), "SELECT object FROM audit_log WHERE action = 'ca.root.retire-online' ORDER BY seq"); len(objects) != 2 ||
		!strings.Contains(objects[0], "object=root-ca") || objects[1] != filepath.Join(dir, "thiqa.yaml") {
		t.Fatalf("audit records of retire-online: %v", objects)
	}
	cfg := mustRead(t, filepath.Join(dir, "thiqa.yaml"))
	if !strings.Contains(cfg, "offline: true") || strings.Contains(cfg, "object=root-ca") || !strings.Contains(cfg, "object=citizen-ca") {
		t.Fatalf("thiqa.yaml after retire-online:\n%s", cfg)
	}
	if a := mustThiqa(t, nil, "audit", "verify", "--data", dir); !strings.Contains(a.stdout+a.stderr, "OK") {
		t.Fatalf("audit verify after retire-online:\n%s%s", a.stdout, a.stderr)
	}

	// The server: no online-root warning, the imported root CRL, ready.
	mustThiqa(t, nil, "init", "--data", dir)
	srv = startServer(t, dir, nil)
	if strings.Contains(srv.stderr.String(), "the root CA key is on the online token") {
		t.Fatalf("online-root warning after retire-online:\n%s", srv.stderr.String())
	}
	if code, _, body := srv.get(t, "/crl/root.crl", ""); code != http.StatusOK || string(body) != mustRead(t, proof) {
		t.Fatalf("/crl/root.crl after retire-online: %d (not the imported CRL)", code)
	}
	if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"rootCRL":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if _, _, body := srv.get(t, "/metrics", ""); !strings.Contains(string(body), "thiqa_root_key_online 0") {
		t.Fatal("thiqa_root_key_online is not 0")
	}
	srv.stop(t)

	// Rollover through the ceremony.
	mustThiqa(t, nil, "ca", "rollover", "--data", dir, "--name", "citizen")
	gen2 := filepath.Join(tmp, "citizen_2.pem")
	mustThiqa(t, nil, "ca", "sign", "--ceremony", cer, "--csr", filepath.Join(dir, "ca", "citizen_2.csr"), "--name", "citizen", "--out", gen2)
	if imp := mustThiqa(t, nil, "ca", "import", "--data", dir, "--name", "citizen", "--cert", gen2); !strings.Contains(imp.stdout, "generation 2") {
		t.Fatalf("import of generation 2:\n%s", imp.stdout)
	}
	// The adopted issuing CAs are the ceremony's: their keys are refused
	// and they can be revoked.
	r = thiqa(t, nil, "ca", "sign", "--ceremony", cer, "--csr", filepath.Join(dir, "ca", "citizen_2.csr"), "--name", "citizen", "--out", filepath.Join(tmp, "x.pem"))
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "already in use") {
		t.Fatalf("certifying generation 2 twice: %q", line)
	}
	srv = startServer(t, dir, nil)
	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	got := issueOK(t, srv, officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: newTestCSR(t)})
	if c := certOf(t, got.Certificate); !strings.HasSuffix(c.IssuingCertificateURL[0], "/certs/citizen_2.crt") {
		t.Fatalf("issued after the rollover by %v", c.IssuingCertificateURL)
	}
	// The root offline, both generations of the citizen CA certified by
	// the ceremony: no warning of the country (hierarchy.CountryMismatches).
	if strings.Contains(srv.stderr.String(), "the country in thiqa.yaml is not the C") {
		t.Fatalf("serve warns of the country with the root offline:\n%s", srv.stderr.String())
	}
	if chk := mustThiqa(t, nil, "config", "check", "--data", dir); strings.Contains(chk.stderr, "country") {
		t.Fatalf("config check warns of the country with the root offline:\n%s", chk.stderr)
	}
	srv.stop(t)

	// retire-online run again with a proof that revokes the first
	// generation (superseded): it imports it as ca crl import does, and
	// says so as ca crl import does.
	gen1 := readPEMCert(t, filepath.Join(dir, "ca", "citizen.pem"))
	proof2 := filepath.Join(tmp, "root-2.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", cer, "--out", proof2, "--revoke", gen1.SerialNumber.Text(16), "--reason", "superseded")
	again := mustThiqa(t, nil, "ca", "root", "retire-online", "--data", dir, "--crl", proof2)
	if !strings.Contains(again.stderr, "warning: it revokes issuing CA citizen (") || strings.Contains(again.stderr, "citizen_2") {
		t.Fatalf("retire-online with a proof revoking generation 1:\nstdout:\n%s\nstderr:\n%s", again.stdout, again.stderr)
	}
	// Run again with the first proof, older than the CRL imported: the
	// warning is of the root CRL the servers publish (it revokes
	// generation 1), not of the proof (which revokes nothing): it said
	// nothing.
	older := mustThiqa(t, nil, "ca", "root", "retire-online", "--data", dir, "--crl", proof)
	if !strings.Contains(older.stdout, "a newer one than") || !strings.Contains(older.stderr, "warning: it revokes issuing CA citizen (") {
		t.Fatalf("retire-online with an older proof, a root CRL revoking generation 1 imported:\nstdout:\n%s\nstderr:\n%s", older.stdout, older.stderr)
	}
}

// rootKeyOnToken reports whether the data folder's token holds the root's
// key (thiqa keys list, its SPKI SHA-256 column).
func rootKeyOnToken(t *testing.T, dir string, root *x509.Certificate) bool {
	t.Helper()
	h, err := ca.SPKIHash(root.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	out := mustThiqa(t, nil, "keys", "list", "--data", dir).stdout
	return strings.Contains(strings.ToLower(out), hex.EncodeToString(h[:]))
}

// crlOf reads a CRL file (DER).
func crlOf(t *testing.T, path string) *x509.RevocationList {
	t.Helper()
	rl, err := x509.ParseRevocationList(mustReadBytes(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rl
}
