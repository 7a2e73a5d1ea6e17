package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/testenv"
)

// offlineDeployment is an online data folder whose root key lives in a
// ceremony folder with a token of its own (two SoftHSM token directories),
// serving on a fixed port that is also its publicBaseURL (so that pdfsig
// and openssl reach the OCSP responder and CRLs the certificates name).
type offlineDeployment struct {
	dir, tmp, port string
	env            []string
	cer            string // ceremony folder
	root           string // the root certificate (the ceremony folder's root.pem)
	srv            *server
	officer        string
	nss            string // NSS database trusting the root, for pdfsig
}

// newCeremonyFolders prepares the two folders' paths and the root, made
// offline in the ceremony folder, whose publicBaseURL is then set to the
// deployment's.
func newCeremonyFolders(t *testing.T, postgres bool) *offlineDeployment {
	t.Helper()
	d := &offlineDeployment{dir: filepath.Join(t.TempDir(), "data"), tmp: t.TempDir(), port: freePort(t), cer: filepath.Join(t.TempDir(), "ceremony")}
	if postgres {
		d.env = []string{"THIQA_TEST_DSN=" + testenv.PostgresDSN(t)}
	}
	d.root = filepath.Join(d.cer, "root.pem")
	mustThiqa(t, nil, "ca", "root", "create", "--ceremony", d.cer)
	cy := filepath.Join(d.cer, "ceremony.yaml")
	writeFile(t, cy, strings.Replace(mustRead(t, cy), "publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: "+d.base(), 1))
	return d
}

// config writes the online folder's configuration (its port, and
// PostgreSQL when asked) and returns its path.
func (d *offlineDeployment) config(t *testing.T) string {
	t.Helper()
	return editedConfig(t, d.dir, func(y string) string {
		y = strings.ReplaceAll(y, "127.0.0.1:8080", "127.0.0.1:"+d.port)
		if d.env != nil {
			y = strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		}
		return y
	})
}

// newOfflineDeployment runs the whole ceremony: root created offline, the
// online folder initialised with its certificate only, the issuing CAs'
// CSRs certified by the root and imported, the root CRL signed and
// imported, init completed. The server is not started.
func newOfflineDeployment(t *testing.T, postgres bool) *offlineDeployment {
	t.Helper()
	d := newCeremonyFolders(t, postgres)
	init1 := mustThiqa(t, d.env, "init", "--data", d.dir, "--config", d.config(t), "--root-cert", d.root)
	for _, n := range []string{"citizen", "organisation", "tsa"} {
		if !strings.Contains(init1.stdout, "awaiting its certificate: CSR "+filepath.Join(d.dir, "ca", n+".csr")) {
			t.Fatalf("init --root-cert does not name the CSR of %s:\n%s", n, init1.stdout)
		}
	}
	for _, n := range []string{"citizen", "organisation", "tsa"} {
		out := d.path(n + ".pem")
		mustThiqa(t, nil, "ca", "sign", "--ceremony", d.cer, "--csr", filepath.Join(d.dir, "ca", n+".csr"), "--name", n, "--out", out)
		mustThiqa(t, d.env, "ca", "import", "--data", d.dir, "--name", n, "--cert", out)
	}
	crlFile := d.path("root-1.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", d.cer, "--out", crlFile)
	mustThiqa(t, d.env, "ca", "crl", "import", "--data", d.dir, "--crl", crlFile)
	if r := mustThiqa(t, d.env, "init", "--data", d.dir); !strings.Contains(r.stdout, "ready") {
		t.Fatalf("second init:\n%s", r.stdout)
	}
	return d
}

func (d *offlineDeployment) base() string            { return "http://127.0.0.1:" + d.port }
func (d *offlineDeployment) path(name string) string { return filepath.Join(d.tmp, name) }

// start runs `thiqa serve` on the deployment's port until the test ends.
func (d *offlineDeployment) start(t *testing.T) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(thiqaBin, "serve", "--data", d.dir, "--addr", "127.0.0.1:"+d.port, "--ready-file", ready)
	cmd.Env = append(os.Environ(), d.env...)
	var errb testenv.SyncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.srv = &server{cmd: cmd, stderr: &errb, base: d.base()}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		noDataRace(t, errb.String())
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return
		}
	}
	t.Fatalf("thiqa serve did not become ready:\n%s", errb.String())
}

// token mints a development API token.
func (d *offlineDeployment) token(t *testing.T, subject, role string) string {
	t.Helper()
	return lastLine(mustThiqa(t, d.env, "token", "--data", d.dir, "--subject", subject, "--role", role).stdout)
}

// serve starts the server and makes the NSS database trusting the root.
func (d *offlineDeployment) serve(t *testing.T) {
	t.Helper()
	d.start(t)
	d.officer = d.token(t, "officer-7", "registration-officer")
	if d.nss != "" {
		return
	}
	d.nss = d.path("nss")
	if err := os.MkdirAll(d.nss, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + d.nss, "--empty-password"},
		{"-A", "-n", "thiqa-root", "-t", "CT,C,C", "-i", d.root, "-d", "sql:" + d.nss},
	} {
		if out, err := exec.Command(testenv.Tool(t, "certutil"), args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
}

// seal issues an organisation-seal key on the token and seals a PDF with it
// at level, over HTTP.
func (d *offlineDeployment) seal(t *testing.T, level string) []byte {
	t.Helper()
	cred := issueOK(t, d.srv, d.officer, ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(), KeyInHSM: true}).CredentialID
	req, err := http.NewRequest(http.MethodPost, d.base()+"/api/v1/seal?level="+level+"&credential="+cred, bytes.NewReader(samplePDF(t, 20<<10)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set("Authorization", "Bearer "+d.token(t, "NTROM-1234567", "agency"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s seal: %d %.500s", level, resp.StatusCode, body)
	}
	return body
}

// TestKeyCeremonyEndToEnd: the whole ceremony with two token directories.
// Afterwards the online token has no root key, a citizen certificate
// verifies with openssl against root.pem, the root CRL the online server
// serves verifies with openssl, a B-LT seal verifies TOTAL-PASSED with
// `thiqa verify --trust root.pem` and pdfsig trusts it, and zlint is clean
// on the issuing CA certificates. Bad input on the way is refused with
// nothing changed.
func TestKeyCeremonyEndToEnd(t *testing.T) {
	d := newCeremonyFolders(t, false)
	f, base := d, d.base()
	mustThiqa(t, nil, "init", "--data", f.dir, "--config", d.config(t), "--root-cert", d.root)
	if strings.Contains(mustRead(t, filepath.Join(f.dir, "thiqa.yaml")), "object=root-ca") {
		t.Fatal("the online configuration names a root key")
	}

	// Until the issuing CAs have their certificates, serve refuses, naming them.
	r := thiqa(t, nil, "serve", "--data", f.dir, "--addr", "127.0.0.1:0")
	line := errorLine(t, r)
	for _, want := range []string{"issuing CA certificates are missing", "citizen", "organisation", "tsa", "thiqa ca sign --ceremony", "thiqa ca import --data"} {
		if r.code != 1 || !strings.Contains(line, want) {
			t.Fatalf("serve before the ceremony: exit %d, %q lacks %q", r.code, line, want)
		}
	}

	sign := func(name, csr string) string {
		out := filepath.Join(f.tmp, name+".pem")
		mustThiqa(t, nil, "ca", "sign", "--ceremony", d.cer, "--csr", csr, "--name", name, "--out", out)
		return out
	}
	signed := map[string]string{}
	for _, n := range []string{"citizen", "organisation", "tsa"} {
		signed[n] = sign(n, filepath.Join(f.dir, "ca", n+".csr"))
	}

	// Bad input, each refused with nothing changed in the data folder.
	caDir := filepath.Join(f.dir, "ca")
	before := snapshot(t, caDir)
	auditBefore := countAudit(t, filepath.Join(f.dir, "thiqa.db"), "ca.certificate.import")
	csrBlock, _ := pem.Decode([]byte(mustRead(t, filepath.Join(caDir, "citizen.csr"))))
	csr, err := x509.ParseCertificateRequest(csrBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	strangerRoot, strangerKey := testCA(t, "Stranger Root", nil, nil)
	strangerCert := filepath.Join(f.tmp, "stranger.pem")
	writeFile(t, strangerCert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuingCertFor(t, csr, strangerRoot, strangerKey, base)})))
	for _, tc := range []struct {
		name, cert, want string
	}{
		{"citizen", signed["organisation"], "another key than the one waiting"},
		{"citizen", strangerCert, "does not chain to the configured root"},
		{"citizen", d.root, "another key"},
	} {
		r := thiqa(t, nil, "ca", "import", "--data", f.dir, "--name", tc.name, "--cert", tc.cert)
		if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, tc.want) || !strings.Contains(line, "nothing was changed") {
			t.Fatalf("ca import %s of %s: exit %d, %q", tc.name, tc.cert, r.code, line)
		}
	}
	// A CSR whose key is already an issuing CA's: the ceremony refuses it.
	r = thiqa(t, nil, "ca", "sign", "--ceremony", d.cer, "--csr", filepath.Join(caDir, "citizen.csr"), "--name", "citizen", "--out", filepath.Join(f.tmp, "again.pem"))
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "already in use as a CA key") {
		t.Fatalf("certifying the citizen CA's key twice: exit %d, %q", r.code, line)
	}
	sameFiles(t, "refused imports", before, snapshot(t, caDir))
	if n := countAudit(t, filepath.Join(f.dir, "thiqa.db"), "ca.certificate.import"); n != auditBefore {
		t.Fatalf("refused imports left %d audit records", n-auditBefore)
	}

	for _, n := range []string{"citizen", "organisation", "tsa"} {
		mustThiqa(t, nil, "ca", "import", "--data", f.dir, "--name", n, "--cert", signed[n])
	}
	// A CRL from another CA is refused; the ceremony's is imported.
	strangerCRL := filepath.Join(f.tmp, "stranger.crl")
	writeFile(t, strangerCRL, string(crlBy(t, strangerRoot, strangerKey, 1, time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour))))
	r = thiqa(t, nil, "ca", "crl", "import", "--data", f.dir, "--crl", strangerCRL)
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "not the issuer's") {
		t.Fatalf("importing another CA's CRL: exit %d, %q", r.code, line)
	}
	rootCRL := filepath.Join(f.tmp, "root.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", d.cer, "--out", rootCRL)
	mustThiqa(t, nil, "ca", "crl", "import", "--data", f.dir, "--crl", rootCRL)
	// The same CRL again changes nothing and is not recorded again.
	if r := mustThiqa(t, nil, "ca", "crl", "import", "--data", f.dir, "--crl", rootCRL); !strings.Contains(r.stdout, "imported already") {
		t.Fatalf("the same root CRL again:\n%s", r.stdout)
	}
	mustThiqa(t, nil, "init", "--data", f.dir)

	// The online token holds no key of the root's.
	rootCert := readPEMCert(t, d.root)
	rootSPKI, _ := ca.SPKIHash(rootCert.PublicKey)
	keys := mustThiqa(t, nil, "keys", "list", "--data", f.dir).stdout
	if !strings.Contains(keys, "object=citizen-ca;") || strings.Contains(keys, hex.EncodeToString(rootSPKI[:])) || strings.Contains(keys, "object=root-ca") {
		t.Fatalf("keys on the online token:\n%s", keys)
	}

	// zlint (RFC 5280, RFC 5480, RFC 8813, ETSI) finds nothing in the issuing CA certificates.
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: ca.LintSources()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"citizen", "organisation", "tsa"} {
		zc, err := zx509.ParseCertificate(readPEMCert(t, filepath.Join(caDir, n+".pem")).Raw)
		if err != nil {
			t.Fatal(err)
		}
		for lintName, res := range zlint.LintCertificateEx(zc, reg).Results {
			if res.Status >= lint.Warn {
				t.Errorf("zlint on the %s CA: %s %s %s", n, lintName, res.Status, res.Details)
			}
		}
	}

	d.serve(t)
	code, _, body := d.srv.get(t, "/readyz", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"rootCRL":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	_, _, metrics := d.srv.get(t, "/metrics", "")
	for _, want := range []string{"thiqa_root_key_online 0", "thiqa_root_crl_next_update_seconds 1."} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	// A citizen certificate chains to root.pem through the citizen CA.
	leaf := issueOK(t, d.srv, d.officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: newTestCSR(t)})
	leafFile := filepath.Join(f.tmp, "leaf.pem")
	writeFile(t, leafFile, leaf.Certificate)
	out, err := exec.Command(testenv.Tool(t, "openssl"), "verify", "-CAfile", d.root, "-untrusted", filepath.Join(caDir, "citizen.pem"), leafFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), leafFile+": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	// The root CRL the online server serves is the root's.
	code, hdr, der := d.srv.get(t, "/crl/root.crl", "")
	served := filepath.Join(f.tmp, "served-root.crl")
	if err := os.WriteFile(served, der, 0o600); err != nil || code != http.StatusOK || hdr.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("/crl/root.crl: %d %v", code, hdr)
	}
	if out, err := exec.Command(testenv.Tool(t, "openssl"), "crl", "-inform", "DER", "-in", served, "-CAfile", d.root, "-noout").CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl -CAfile: %v\n%s", err, out)
	}
	// The whole chain with both CRLs the server serves, as nginx's ssl_crl
	// checks it (the root certificate too, against the root's CRL).
	_, _, citizenDER := d.srv.get(t, "/crl/citizen.crl", "")
	crls := filepath.Join(f.tmp, "crls.pem")
	writeFile(t, crls, string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))+string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: citizenDER})))
	out, err = exec.Command(testenv.Tool(t, "openssl"), "verify", "-crl_check_all", "-CAfile", d.root, "-untrusted", filepath.Join(caDir, "citizen.pem"), "-CRLfile", crls, leafFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), leafFile+": OK") {
		t.Fatalf("openssl verify -crl_check_all with the served root and citizen CRLs: %v\n%s", err, out)
	}
	// A B-LT seal: TOTAL-PASSED with thiqa verify --trust root.pem, trusted by pdfsig.
	sealedFile := d.path("sealed-B-LT.pdf")
	writeFile(t, sealedFile, string(d.seal(t, "B-LT")))
	if out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", "sql:"+d.nss, sealedFile).CombinedOutput(); !strings.Contains(string(out), "Signature is Valid.") ||
		!strings.Contains(string(out), "Certificate is Trusted.") {
		t.Fatalf("pdfsig:\n%s", out)
	}
	v := thiqa(t, nil, "verify", sealedFile, "--trust", d.root, "--json", "--offline")
	var rep struct {
		Indication string `json:"indication"`
		Signatures []struct {
			Level string `json:"level"`
		} `json:"signatures"`
	}
	if v.code != 0 || json.Unmarshal([]byte(v.stdout), &rep) != nil || rep.Indication != "TOTAL-PASSED" || rep.Signatures[0].Level != "B-LT" {
		t.Fatalf("thiqa verify --trust root.pem --offline: exit %d\n%.1500s\n%s", v.code, v.stdout, v.stderr)
	}
	d.srv.stop(t)
	if log := d.srv.stderr.String(); strings.Contains(log, "root CA key is on the online token") {
		t.Fatal("an offline deployment warns that its root key is online")
	}
	// A root CRL revoking the citizen CA: the import says so on stderr
	// (the servers stop issuing from it: TestRevokedIssuingCAStopsIssuing).
	citizenCert := readPEMCert(t, filepath.Join(caDir, "citizen.pem"))
	revokedCRL := filepath.Join(f.tmp, "root-revoking.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", d.cer, "--out", revokedCRL, "--revoke", citizenCert.SerialNumber.Text(16), "--reason", "caCompromise")
	imp := mustThiqa(t, nil, "ca", "crl", "import", "--data", f.dir, "--crl", revokedCRL)
	if !strings.Contains(imp.stderr, "warning: it revokes issuing CA citizen") || strings.Contains(imp.stdout, "warning") {
		t.Fatalf("importing a root CRL that revokes the citizen CA:\nstdout:\n%s\nstderr:\n%s", imp.stdout, imp.stderr)
	}
	mustThiqa(t, nil, "audit", "verify", "--ceremony", d.cer)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}

// TestExistingNationalRoot: the online side with a root made elsewhere
// (only its certificate given; its issuing CA certificates and CRLs made
// with Go here). Root CRLs that are lapsed, not valid yet or older than the
// one published are refused with nothing changed; one close to its
// nextUpdate makes /readyz warn while staying 200. The root drops the
// CSRs' organizationIdentifier: the citizen CA still rolls over.
func TestExistingNationalRoot(t *testing.T) {
	f := &offlineDeployment{dir: filepath.Join(t.TempDir(), "data"), tmp: t.TempDir(), port: freePort(t)}
	base := f.base()
	root, rootKey := testCA(t, "National Root CA of Testland", nil, nil)
	rootFile := filepath.Join(f.tmp, "national-root.pem")
	writeFile(t, rootFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})))
	mustThiqa(t, nil, "init", "--data", f.dir, "--config", f.config(t), "--root-cert", rootFile)
	for _, n := range []string{"citizen", "organisation", "tsa"} {
		blk, _ := pem.Decode([]byte(mustRead(t, filepath.Join(f.dir, "ca", n+".csr"))))
		csr, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.tmp, n+".pem")
		writeFile(t, p, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuingCertFor(t, csr, root, rootKey, base)})))
		mustThiqa(t, nil, "ca", "import", "--data", f.dir, "--name", n, "--cert", p)
	}
	mustThiqa(t, nil, "init", "--data", f.dir)

	now := time.Now()
	db := filepath.Join(f.dir, "thiqa.db")
	write := func(name string, der []byte) string {
		p := filepath.Join(f.tmp, name)
		writeFile(t, p, string(der))
		return p
	}
	good := write("good.crl", crlBy(t, root, rootKey, 5, now.Add(-time.Hour), now.Add(10*24*time.Hour)))
	mustThiqa(t, nil, "ca", "crl", "import", "--data", f.dir, "--crl", good)
	stored := func() string {
		var der []byte
		if err := sqlQuery(t, db, "SELECT der FROM imported_crls WHERE issuer = 'root'", &der); err != nil {
			t.Fatal(err)
		}
		return string(der)
	}
	want := stored()
	for _, tc := range []struct{ name, want string }{
		{write("lapsed.crl", crlBy(t, root, rootKey, 6, now.Add(-20*24*time.Hour), now.Add(-time.Hour))), "has passed its nextUpdate"},
		{write("future.crl", crlBy(t, root, rootKey, 7, now.Add(48*time.Hour), now.Add(60*24*time.Hour))), "is not valid yet"},
		{write("older.crl", crlBy(t, root, rootKey, 4, now.Add(-time.Minute), now.Add(60*24*time.Hour))), "not newer than the one published"},
		{write("pem-cert.crl", []byte(mustRead(t, rootFile))), "not a publishable CRL"},
	} {
		r := thiqa(t, nil, "ca", "crl", "import", "--data", f.dir, "--crl", tc.name)
		if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, tc.want) || !strings.Contains(line, "nothing was changed") {
			t.Fatalf("importing %s: exit %d, %q", filepath.Base(tc.name), r.code, line)
		}
		if stored() != want {
			t.Fatalf("a refused CRL (%s) replaced the published one", filepath.Base(tc.name))
		}
	}
	srv := startServer(t, f.dir, nil)
	code, _, body := srv.get(t, "/readyz", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"rootCRL":"warning: the root CRL lapses`) {
		t.Fatalf("/readyz with 10 days left: %d %s", code, body)
	}
	if code, _, der := srv.get(t, "/crl/root.crl", ""); code != http.StatusOK || string(der) != want {
		t.Fatalf("/crl/root.crl: %d", code)
	}
	// A newer CRL reaches the running server without a restart.
	newer := write("newer.crl", crlBy(t, root, rootKey, 8, now.Add(-time.Minute), now.Add(90*24*time.Hour)))
	mustThiqa(t, nil, "ca", "crl", "import", "--data", f.dir, "--crl", newer)
	waitFor(t, 45*time.Second, func() string {
		if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"rootCRL":"ok"`) {
			return "the running server did not pick up the newer root CRL: " + string(body)
		}
		return ""
	})
	srv.stop(t)

	// The root shaped the subjects its own way (no organizationIdentifier,
	// which thiqa.yaml gives): with thiqa.yaml as it was, a rollover goes
	// on and its certificate, shaped the same way, is installed with a note.
	mustThiqa(t, nil, "ca", "rollover", "--data", f.dir, "--name", "citizen")
	blk, _ := pem.Decode([]byte(mustRead(t, filepath.Join(f.dir, "ca", "citizen_2.csr"))))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	gen2 := filepath.Join(f.tmp, "citizen_2.pem")
	writeFile(t, gen2, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuingCertFor(t, csr, root, rootKey, base)})))
	if r := mustThiqa(t, nil, "ca", "import", "--data", f.dir, "--name", "citizen", "--cert", gen2); !strings.Contains(r.stdout, "note: the certificate's subject") {
		t.Fatalf("import of generation 2 shaped by the root:\n%s", r.stdout)
	}
}

// testCA makes a CA certificate with an in-process key: self-signed when
// parent is nil.
func testCA(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Country: []string{"OM"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(20, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

// issuingCertFor is an issuing CA certificate for the CSR's key, as an
// existing national root would make it: anyPolicy, its own URLs.
func issuingCertFor(t *testing.T, csr *x509.CertificateRequest, root *x509.Certificate, rootKey *ecdsa.PrivateKey, base string) []byte {
	t.Helper()
	anyPolicy, _ := x509.ParseOID("2.5.29.32.0") // anyPolicy (RFC 5280 §4.2.1.4)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Policies: []x509.OID{anyPolicy},
		IssuingCertificateURL: []string{base + "/certs/root.crt"}, CRLDistributionPoints: []string{base + "/crl/root.crl"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// sqlQuery reads one value from the SQLite database at path.
func sqlQuery(t *testing.T, path, q string, dest any) error {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRow(q).Scan(dest)
}

// crlBy is a DER CRL of issuer.
func crlBy(t *testing.T, issuer *x509.Certificate, key *ecdsa.PrivateKey, number int64, this, next time.Time) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: this, NextUpdate: next}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
