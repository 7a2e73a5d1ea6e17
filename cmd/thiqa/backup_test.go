package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/samplepdf"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
	"github.com/thiqa/thiqa/verify/tsl"
)

func TestBackupRestoreOnSQLite(t *testing.T)   { runBackupRestore(t, false) }
func TestBackupRestoreOnPostgres(t *testing.T) { runBackupRestore(t, true) }

// handedOut is what clients received: certificate serials (hex) and
// time-stamp token serials (decimal).
type handedOut struct {
	certs, tsa []string
}

func (h *handedOut) add(o handedOut) {
	h.certs = append(h.certs, o.certs...)
	h.tsa = append(h.tsa, o.tsa...)
}

// opsFixture is a data folder (SQLite or PostgreSQL) and its running
// server, for the backup and restore tests.
type opsFixture struct {
	dir     string
	env     []string
	srv     *server
	officer string
}

func newOpsFixture(t *testing.T, postgres bool) *opsFixture {
	t.Helper()
	f := &opsFixture{dir: filepath.Join(t.TempDir(), "data")}
	if postgres {
		f.env = []string{"THIQA_TEST_DSN=" + testenv.PostgresDSN(t)}
		conf := editedConfig(t, f.dir, func(y string) string {
			return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		})
		mustThiqa(t, f.env, "init", "--data", f.dir, "--config", conf)
	} else {
		initData(t, f.dir)
	}
	f.start(t)
	f.officer = f.token(t, "officer-7", "registration-officer")
	return f
}

func (f *opsFixture) start(t *testing.T) { f.srv = startServer(t, f.dir, f.env) }

func (f *opsFixture) token(t *testing.T, subject, role string) string {
	t.Helper()
	return lastLine(mustThiqa(t, f.env, "token", "--data", f.dir, "--subject", subject, "--role", role).stdout)
}

// sealCredential issues an organisation-seal key on the token.
func (f *opsFixture) sealCredential(t *testing.T) string {
	t.Helper()
	out := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(), KeyInHSM: true})
	if out.CredentialID == "" {
		t.Fatal("a keyInHSM seal certificate without a credential ID")
	}
	return out.CredentialID
}

// seal seals a small PDF at B-T (its time-stamp taken in process).
func (f *opsFixture) seal(t *testing.T, agency, cred string) {
	t.Helper()
	var pdf bytes.Buffer
	if err := samplepdf.Write(&pdf, 20<<10); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.base+"/api/v1/seal?level=B-T&credential="+cred, &pdf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set("Authorization", "Bearer "+agency)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("seal: %d %.300s", resp.StatusCode, body)
	}
}

// activity issues two certificates, three time-stamp tokens and one B-T
// seal (which time-stamps too) through the running server.
func (f *opsFixture) activity(t *testing.T, agency, sealCred string, civil int) handedOut {
	t.Helper()
	var out handedOut
	for i := range 2 {
		subj := citizenSubject()
		subj["civilNumber"] = strconv.Itoa(civil + i)
		r := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: "citizen-signing", Subject: subj, CSR: newTestCSR(t)})
		out.certs = append(out.certs, r.Serial)
	}
	client, err := timestamp.NewClient(f.srv.base+"/tsa", timestamp.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var data [32]byte
		_, _ = rand.Read(data[:])
		sum := sha256.Sum256(data[:])
		der, err := client.Timestamp(context.Background(), sum[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("time-stamp: %v", err)
		}
		tok, err := tsp.ParseToken(der)
		if err != nil {
			t.Fatal(err)
		}
		out.tsa = append(out.tsa, tok.Info.SerialNumber.String())
	}
	f.seal(t, agency, sealCred)
	return out
}

// storeSerials reads every certificate serial and every time-stamp token
// serial (from the audit records) of a store, with repetitions.
func storeSerials(t *testing.T, driver, dsn string) handedOut {
	t.Helper()
	name := map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[driver]
	db, err := sql.Open(name, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out handedOut
	rows, err := db.Query("SELECT serial FROM certificates WHERE state = 'issued'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out.certs = append(out.certs, s)
	}
	rows.Close()
	rows, err = db.Query("SELECT details FROM audit_log WHERE action = 'timestamp.issue'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var d struct {
			Items []struct {
				Serial string `json:"serial"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatalf("timestamp.issue details %s: %v", raw, err)
		}
		for _, it := range d.Items {
			out.tsa = append(out.tsa, it.Serial)
		}
	}
	return out
}

// noRepeats fails when a serial appears twice.
func noRepeats(t *testing.T, what string, serials []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range serials {
		if seen[s] {
			t.Fatalf("%s serial %s was handed out twice", what, s)
		}
		seen[s] = true
	}
}

// folderSums returns every file under dir with its SHA-256: a folder that
// a refused command must leave as it was. SoftHSM's token.object is left
// out: SoftHSM rewrites it whenever a process logs in to the token.
func folderSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "token.object" {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		out[p] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantRefused runs a restore that must fail with one clear line naming want
// and leave dir (and the database, when dsn is set) as they were.
func wantRefused(t *testing.T, env []string, dir, dsn, want string, args ...string) {
	t.Helper()
	wantRefusedLive(t, env, dir, dsn, want, false, args...)
}

// wantRefusedLive is wantRefused for a folder a server runs on (live):
// the database and checkpoint files the server writes are not compared.
func wantRefusedLive(t *testing.T, env []string, dir, dsn, want string, live bool, args ...string) {
	t.Helper()
	sums := func() map[string]string {
		m := folderSums(t, dir)
		for p := range m {
			if b := filepath.Base(p); live && (strings.HasPrefix(b, "thiqa.db") || b == "checkpoints.jsonl") {
				delete(m, p)
			}
		}
		return m
	}
	before := sums()
	r := thiqa(t, env, args...)
	if r.code == 0 {
		t.Fatalf("thiqa %v succeeded; want a refusal naming %q\n%s", args, want, r.stdout)
	}
	if line := errorLine(t, r); !strings.Contains(line, want) {
		t.Fatalf("thiqa %v: %q does not say %q", args, line, want)
	}
	if after := sums(); !mapsEqual(before, after) {
		t.Fatalf("thiqa %v changed %s: %v", args, dir, changedFiles(before, after))
	}
	if dsn != "" {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").Scan(&n); err != nil || n != 0 {
			t.Fatalf("thiqa %v left %d tables in the database (%v)", args, n, err)
		}
	}
}

// changedFiles lists the files that differ between two folderSums.
func changedFiles(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+" (new)")
		}
	}
	slices.Sort(out)
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// copyTree copies the folder src to dst (the SoftHSM token and PIN files:
// what the HSM's own backup procedure puts back).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

func runBackupRestore(t *testing.T, postgres bool) {
	f := newOpsFixture(t, postgres)
	driver, oldDSN := "sqlite", filepath.Join(f.dir, "thiqa.db")
	if postgres {
		driver, oldDSN = "postgres", strings.TrimPrefix(f.env[0], "THIQA_TEST_DSN=")
	}
	agency := f.token(t, "NTROM-1234567", "agency")
	sealCred := f.sealCredential(t)
	var before, lost, after handedOut
	before.add(f.activity(t, agency, sealCred, 20000000))

	// Backed up while the server runs; then the server goes on.
	archive := filepath.Join(t.TempDir(), "thiqa-backup.tar.gz")
	out := mustThiqa(t, f.env, "backup", "--data", f.dir, "--out", archive)
	if !strings.Contains(out.stdout, "root CA SHA-256") || !strings.Contains(out.stdout, "tokens: the SoftHSM token") || strings.Contains(out.stdout, "user.pin\n") {
		t.Fatalf("backup output:\n%s", out.stdout)
	}
	// --data a link to the folder (/var/lib/thiqa -> /srv/thiqa): the same files.
	link := filepath.Join(t.TempDir(), "data-link")
	if err := os.Symlink(f.dir, link); err != nil {
		t.Fatal(err)
	}
	viaLink := mustThiqa(t, f.env, "backup", "--data", link, "--out", filepath.Join(t.TempDir(), "via-link.tar.gz"))
	filesLine := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "files ") {
				return strings.TrimSpace(l)
			}
		}
		return ""
	}
	if filesLine(viaLink.stdout) == "" || filesLine(viaLink.stdout) != filesLine(out.stdout) || strings.Contains(viaLink.stdout, "not a regular file") {
		t.Fatalf("backup through a link to the data folder:\n%s\nwant as\n%s", viaLink.stdout, out.stdout)
	}
	again := thiqa(t, f.env, "backup", "--data", f.dir, "--out", archive)
	if again.code == 0 || !strings.Contains(errorLine(t, again), "exists") {
		t.Fatalf("a second backup to the same file: exit %d %s", again.code, again.stderr)
	}
	lost.add(f.activity(t, agency, sealCred, 30000000))

	// Restoring over the live folder is refused.
	wantRefusedLive(t, f.env, f.dir, "", "in use", true, "restore", "--in", archive, "--data", f.dir)
	f.srv.stop(t) // the disk is lost: its checkpoints name records after the backup
	oldCheckpoints := filepath.Join(f.dir, "audit", "checkpoints.jsonl")

	// A fresh folder with the same token (what the HSM backup gives back).
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(f.dir, "tokens"), restored)
	copyTree(t, filepath.Join(f.dir, "secrets"), restored)
	env, newDSN := f.env, filepath.Join(restored, "thiqa.db")
	pgDSN := ""
	if postgres {
		newDSN = testenv.PostgresDSN(t)
		env, pgDSN = []string{"THIQA_TEST_DSN=" + newDSN}, newDSN
	}

	// A corrupt archive, a truncated one, another deployment's backup: refused, nothing written.
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "corrupt.tar.gz")
	flipped := slices.Clone(raw)
	flipped[len(flipped)/2] ^= 0x40
	writeFile(t, bad, string(flipped))
	wantRefused(t, env, restored, pgDSN, "corrupt", "restore", "--in", bad, "--data", restored)
	writeFile(t, bad+".short", string(raw[:len(raw)/3]))
	wantRefused(t, env, restored, pgDSN, "corrupt", "restore", "--in", bad+".short", "--data", restored)
	other := filepath.Join(t.TempDir(), "other")
	mustThiqa(t, nil, "init", "--data", other)
	otherArchive := filepath.Join(t.TempDir(), "other.tar.gz")
	mustThiqa(t, nil, "backup", "--data", other, "--out", otherArchive)
	wantRefused(t, env, restored, pgDSN, "another deployment", "restore", "--in", otherArchive, "--data", restored)
	// A folder whose own configuration names another root CA.
	configured := filepath.Join(t.TempDir(), "configured")
	if err := os.Mkdir(configured, 0o700); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(f.dir, "tokens"), configured)
	copyTree(t, filepath.Join(f.dir, "secrets"), configured)
	writeFile(t, filepath.Join(configured, "thiqa.yaml"), strings.Replace(mustRead(t, filepath.Join(f.dir, "thiqa.yaml")),
		"commonName: Thiqa Root CA (PLACEHOLDER)", "commonName: Another Root CA", 1))
	wantRefused(t, env, configured, pgDSN, "another deployment", "restore", "--in", archive, "--data", configured)

	// The restore, with the lost host's newer checkpoint file.
	res := mustThiqa(t, env, "restore", "--in", archive, "--data", restored, "--checkpoints", oldCheckpoints)
	if !strings.Contains(res.stdout, "audit chain OK") || !strings.Contains(res.stdout, "archived in") ||
		!strings.Contains(res.stdout, `tsa_serial_counters "tsa" raised`) {
		t.Fatalf("restore output:\n%s", res.stdout)
	}
	archived, _ := filepath.Glob(filepath.Join(restored, "audit", "checkpoints.archived-*.jsonl"))
	if len(archived) != 1 {
		t.Fatalf("want one archived checkpoint file, got %v", archived)
	}
	for _, secret := range []string{"secrets/oidc-pairwise.key", "ca/root.pem", "tsa/unit.pem", "ca/ocsp-citizen.pem", "audit/checkpoint-key.pem", "thiqa.yaml"} {
		if mustRead(t, filepath.Join(restored, secret)) != mustRead(t, filepath.Join(f.dir, secret)) {
			t.Fatalf("%s differs after the restore", secret)
		}
	}
	wantRefused(t, env, restored, "", "not empty", "restore", "--in", archive, "--data", restored)
	atRestore := storeSerials(t, driver, newDSN)
	verified := mustThiqa(t, env, "audit", "verify", "--data", restored)
	if !strings.Contains(verified.stdout, "audit chain OK") || !strings.Contains(verified.stdout, "audit checkpoints OK") {
		t.Fatalf("audit verify after the restore:\n%s", verified.stdout)
	}

	// Served again from the restored folder, issuing goes on.
	f.dir, f.env = restored, env
	f.start(t)
	after.add(f.activity(t, agency, sealCred, 40000000))
	f.srv.stop(t)
	verified = mustThiqa(t, env, "audit", "verify", "--data", restored)
	if !strings.Contains(verified.stdout, "audit chain OK") || !strings.Contains(verified.stdout, "audit checkpoints OK") {
		t.Fatalf("audit verify after serving the restored folder:\n%s", verified.stdout)
	}

	// No serial a client received is handed out again; none in the stores either.
	var all handedOut
	all.add(before)
	all.add(lost)
	all.add(after)
	noRepeats(t, "certificate", all.certs)
	noRepeats(t, "time-stamp", all.tsa)
	oldStore, newStore := storeSerials(t, driver, oldDSN), storeSerials(t, driver, newDSN)
	noRepeats(t, "certificate (restored store)", newStore.certs)
	noRepeats(t, "time-stamp (restored store)", newStore.tsa)
	for _, kind := range []struct {
		name          string
		old, now, was []string
	}{
		{"certificate", oldStore.certs, newStore.certs, atRestore.certs},
		{"time-stamp", oldStore.tsa, newStore.tsa, atRestore.tsa},
	} {
		var fresh int
		for _, s := range kind.now {
			if slices.Contains(kind.was, s) {
				continue
			}
			fresh++
			if slices.Contains(kind.old, s) {
				t.Fatalf("%s serial %s, handed out after the restore, was handed out by the lost deployment", kind.name, s)
			}
		}
		if fresh == 0 {
			t.Fatalf("no %s was handed out after the restore", kind.name)
		}
	}
	floor := new(big.Int).Lsh(big.NewInt(1), 50)
	for _, s := range after.tsa {
		n, _ := new(big.Int).SetString(s, 10)
		if n == nil || n.Cmp(floor) < 0 {
			t.Fatalf("time-stamp serial %s after the restore is below the restore's floor", s)
		}
	}
}

// A backup names every file the operator provides outside the data folder
// (production's TLS certificate and key, an identity provider's JWKS, client
// CAs…), so that the manifest tells the operator to keep them with the host;
// the token's own files are left to the HSM's procedure.
func TestBackupNamesProvidedFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	host := t.TempDir()
	c := config.Default(dir)
	c.TLS = &config.TLSConfig{CertFile: filepath.Join(host, "server.pem"), KeyFile: filepath.Join(host, "server.key")}
	c.Auth.Issuers = append(c.Auth.Issuers, auth.IssuerConfig{Issuer: "https://idp.example", Audience: "thiqa", JWKSFile: filepath.Join(host, "idp.jwks.json")})
	c.Auth.MTLS.ClientCAFiles = []string{"ca/citizen.pem", filepath.Join(host, "clients.pem")}
	named := backupNamed(c)
	for key, want := range map[string]string{
		"tls.certFile":               c.TLS.CertFile,
		"tls.keyFile":                c.TLS.KeyFile,
		"auth.issuers[1].jwksFile":   filepath.Join(host, "idp.jwks.json"),
		"auth.mtls.clientCAFiles[0]": filepath.Join(dir, "ca", "citizen.pem"),
		"auth.mtls.clientCAFiles[1]": filepath.Join(host, "clients.pem"),
		"ca.certDir":                 filepath.Join(dir, "ca"),
	} {
		if named[key] != want {
			t.Errorf("%s: %q, want %q", key, named[key], want)
		}
	}
	for key := range named {
		if strings.HasPrefix(key, "hsm.") || key == "auth.issuers[0].jwksFile" {
			t.Errorf("%s named: the HSM's files and the development issuer's JWKS are not the host's to keep", key)
		}
	}
}

// A backup also names this deployment's trusted list and its signer's
// certificate (thiqa tsl build writes them; relying parties configure the
// certificate) and the trusted lists a verifier keeps as files, with their
// signers' certificates, so that those kept outside the data folder are
// listed for the host's backup.
func TestBackupNamesProvidedFilesTSL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	host := t.TempDir()
	c := config.Default(dir)
	c.TSL.File = filepath.Join(host, "tsl.xml")
	c.Verify.TrustedLists = []tsl.SourceConfig{{File: filepath.Join(host, "om.xml"), Signers: []string{"tsl/om-signer.pem"}}}
	named := backupNamed(c)
	for key, want := range map[string]string{
		"tsl.file":                          filepath.Join(host, "tsl.xml"),
		"tsl.signerCertificate":             filepath.Join(dir, "tsl", "signer.pem"),
		"verify.trustedLists[0].file":       filepath.Join(host, "om.xml"),
		"verify.trustedLists[0].signers[0]": filepath.Join(dir, "tsl", "om-signer.pem"),
	} {
		if named[key] != want {
			t.Errorf("%s: %q, want %q", key, named[key], want)
		}
	}
}
