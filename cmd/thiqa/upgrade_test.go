package main

import (
	"bytes"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// upgradeFixture is testdata/upgrade-COMMIT/upgrade/fixture.json: what
// scripts/make-upgrade-fixture.sh made with the release COMMIT's binary.
type upgradeFixture struct {
	Commit               string   `json:"commit"`
	CitizenSigning       string   `json:"citizenSigning"`
	RevokedKeyCompromise string   `json:"revokedKeyCompromise"`
	RevokedSuperseded    string   `json:"revokedSuperseded"`
	CompromisedSibling   string   `json:"compromisedSibling"`
	SealSerial           string   `json:"sealSerial"`
	SealCredential       string   `json:"sealCredential"`
	SignSerial           string   `json:"signSerial"`
	SignCredential       string   `json:"signCredential"`
	AuthSerial           string   `json:"authSerial"`
	OIDCClient           string   `json:"oidcClient"`
	SigningPIN           string   `json:"signingPIN"`
	LoginPIN             string   `json:"loginPIN"`
	PDFs                 []string `json:"pdfs"`
}

// TestUpgradeFromReleases upgrades the data folders that older releases
// left behind (cmd/thiqa/testdata/upgrade-*, made by
// scripts/make-upgrade-fixture.sh) the way docs/operations.md tells
// operators to, and checks that everything they made still works.
func TestUpgradeFromReleases(t *testing.T) {
	fixtures, err := filepath.Glob(filepath.Join("testdata", "upgrade-*"))
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no upgrade fixture under testdata (%v)", err)
	}
	for _, src := range fixtures {
		t.Run(filepath.Base(src), func(t *testing.T) { upgradeFrom(t, src) })
	}
}

// upgradeFolder copies the fixture src to a fresh data folder and points
// its SoftHSM configuration at the copied token (the folder's own path is
// written in it), as an operator moving a data folder does.
func upgradeFolder(t *testing.T, src string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	copyTree(t, src, dir)
	conf := filepath.Join(dir, "softhsm2.conf")
	old := mustRead(t, conf)
	re := regexp.MustCompile(`(?m)^directories\.tokendir = .*$`)
	if !re.MatchString(old) {
		t.Fatalf("%s names no token folder:\n%s", conf, old)
	}
	writeFile(t, conf, re.ReplaceAllLiteralString(old, "directories.tokendir = "+filepath.Join(dir, "tokens")))
	return dir
}

func upgradeFrom(t *testing.T, src string) {
	dir := upgradeFolder(t, src)
	var fx upgradeFixture
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(dir, "upgrade", "fixture.json"))), &fx); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "thiqa.db")
	oldSerials := sqliteStrings(t, db, "SELECT serial FROM certificates")
	oldHead := auditHead(t, db)
	oldConfig := mustRead(t, filepath.Join(dir, "thiqa.yaml"))
	var oldTSA []*big.Int
	tsts, _ := filepath.Glob(filepath.Join(dir, "upgrade", "*.tst"))
	for _, p := range tsts {
		oldTSA = append(oldTSA, tsaSerial(t, mustRead(t, p)))
	}
	if len(oldSerials) < 6 || len(oldTSA) == 0 {
		t.Fatalf("fixture %s: %d certificates, %d time-stamps", src, len(oldSerials), len(oldTSA))
	}

	// docs/operations.md: back up, init (adds what is new, keeps the rest), serve.
	mustThiqa(t, nil, "backup", "--data", dir, "--out", filepath.Join(t.TempDir(), "before-upgrade.tar.gz"))
	mustThiqa(t, nil, "init", "--data", dir)
	if got := mustRead(t, filepath.Join(dir, "thiqa.yaml")); got != oldConfig {
		t.Fatalf("init rewrote the release's thiqa.yaml:\n%s", got)
	}
	srv := startServer(t, dir, nil)
	if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusOK ||
		!strings.Contains(string(body), `"store":"ok"`) || !strings.Contains(string(body), `"token":"ok"`) || !strings.Contains(string(body), `"tsa":"ok"`) {
		t.Fatalf("/readyz after the upgrade: %d %s", code, body)
	}
	migrations, _ := filepath.Glob(filepath.Join("..", "..", "store", "migrations", "sqlite", "*.sql"))
	if applied := sqliteStrings(t, db, "SELECT version FROM schema_migrations"); len(migrations) == 0 || len(applied) != len(migrations) {
		t.Fatalf("%d migrations applied, the binary has %d", len(applied), len(migrations))
	}

	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	agency := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "NTROM-1234567", "--role", "agency").stdout)
	citizen := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "citizen").stdout)

	// The release's certificates keep their status: in the API, over OCSP
	// and on the CRLs.
	for serial, want := range map[string]string{fx.CitizenSigning: "good", fx.SealSerial: "good", fx.SignSerial: "good",
		fx.RevokedKeyCompromise: "revoked", fx.RevokedSuperseded: "revoked"} {
		code, _, body := srv.get(t, "/api/v1/certificates/"+serial, officer)
		var rec ca.CertificateResponse
		if code != http.StatusOK || json.Unmarshal(body, &rec) != nil {
			t.Fatalf("GET certificate %s: %d %s", serial, code, body)
		}
		if apiWant := map[string]string{"good": "valid", "revoked": "revoked"}[want]; rec.Status != apiWant {
			t.Fatalf("certificate %s: status %q, want %q", serial, rec.Status, apiWant)
		}
		leaf := filepath.Join(t.TempDir(), "leaf.pem")
		writeFile(t, leaf, rec.Certificate)
		out, _ := exec.Command(testenv.Tool(t, "openssl"), "ocsp", "-issuer", filepath.Join(dir, "ca", rec.CA+".pem"), "-cert", leaf,
			"-url", srv.base+"/ocsp", "-CAfile", filepath.Join(dir, "ca", "root.pem"), "-no_nonce").CombinedOutput()
		if !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), leaf+": "+want) {
			t.Fatalf("OCSP for %s (want %s):\n%s", serial, want, out)
		}
	}
	for caName, revoked := range map[string]string{"citizen": fx.RevokedKeyCompromise, "organisation": fx.RevokedSuperseded} {
		old, err := x509.ParseRevocationList(mustReadBytes(t, filepath.Join(dir, "upgrade", caName+".crl")))
		if err != nil {
			t.Fatal(err)
		}
		code, _, body := srv.get(t, "/crl/"+caName+".crl", "")
		crl, err := x509.ParseRevocationList(body)
		if code != http.StatusOK || err != nil {
			t.Fatalf("/crl/%s.crl: %d %v", caName, code, err)
		}
		if crl.Number.Cmp(old.Number) <= 0 {
			t.Fatalf("%s CRL number %v after the upgrade, the release had published %v", caName, crl.Number, old.Number)
		}
		if !crlLists(crl, revoked) {
			t.Fatalf("the %s CRL after the upgrade does not list %s", caName, revoked)
		}
	}

	// A key the release revoked for keyCompromise stays compromised under
	// the rule releases since follow: every certificate with it is revoked
	// (the sweep at start-up) and the CA never certifies it again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _, body := srv.get(t, "/api/v1/certificates/"+fx.CompromisedSibling, officer)
		var rec ca.CertificateResponse
		if code != http.StatusOK || json.Unmarshal(body, &rec) != nil {
			t.Fatalf("GET certificate %s: %d %s", fx.CompromisedSibling, code, body)
		}
		if rec.Status == "revoked" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate %s with the key the release revoked for keyCompromise is %q after the upgrade", fx.CompromisedSibling, rec.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, body := srv.post(t, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(),
		CSR: mustRead(t, filepath.Join(dir, "upgrade", "compromised.csr"))})
	wantProblem(t, "a key the release revoked for keyCompromise", code, body, http.StatusBadRequest, "urn:thiqa:problem:key-compromised")

	// The release's signed PDFs still verify, offline, at a time the
	// revocation data they embed covers (releaseCRLsCover): the fixture is
	// committed, and a day after it was made the CRLs in its PDFs are past
	// their nextUpdate, so "now" would rightly give INDETERMINATE/TRY_LATER
	// (EN 319 102-1 freshness) whatever the upgrade did.
	at := releaseCRLsCover(t, dir).Format(time.RFC3339)
	for _, p := range fx.PDFs {
		if out := mustThiqa(t, nil, "verify", filepath.Join(dir, p), "--data", dir, "--offline", "--at", at); !strings.Contains(out.stdout, "Verdict: TOTAL-PASSED") {
			t.Fatalf("verify %s:\n%s", p, out.stdout)
		}
	}

	// New issuance reuses no serial; the TSA repeats none of its serials.
	issued := issueOK(t, srv, officer, ca.IssueRequest{Profile: "citizen-signing", Subject: citizenSubject(), CSR: newTestCSR(t)})
	for _, s := range oldSerials {
		if strings.EqualFold(s, issued.Serial) {
			t.Fatalf("new certificate reuses serial %s", s)
		}
	}
	doc := filepath.Join(dir, "upgrade", "doc.pdf")
	for i := range 3 {
		tst := filepath.Join(t.TempDir(), "new.tst")
		mustThiqa(t, nil, "timestamp", "--url", srv.base+"/tsa", "--in", doc, "--out", tst)
		n := tsaSerial(t, mustRead(t, tst))
		for _, o := range oldTSA {
			if n.Cmp(o) <= 0 {
				t.Fatalf("time-stamp %d after the upgrade has serial %v, the release had issued %v", i, n, o)
			}
		}
	}

	// The release's credentials still sign: an agency's seal and a
	// citizen's signature with the PIN set before the upgrade.
	sealed := filepath.Join(t.TempDir(), "sealed.pdf")
	req, _ := http.NewRequest(http.MethodPost, srv.base+"/api/v1/seal?level=B-LT&credential="+fx.SealCredential, bytes.NewReader(mustReadBytes(t, doc)))
	req.Header.Set("Authorization", "Bearer "+agency)
	req.Header.Set("Content-Type", "application/pdf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("seal with the release's credential: %d %s", resp.StatusCode, buf.Bytes())
	}
	writeFile(t, sealed, buf.String())
	tokenFile := filepath.Join(t.TempDir(), "citizen.jwt")
	writeFile(t, tokenFile, citizen+"\n")
	signed := filepath.Join(t.TempDir(), "signed.pdf")
	mustThiqa(t, []string{"UPGRADE_PIN=" + fx.SigningPIN}, "sign", "--url", srv.base, "--token-file", tokenFile, "--credential", fx.SignCredential,
		"--pin-env", "UPGRADE_PIN", "--level", "B-LT", "--in", doc, "--out", signed)
	for _, p := range []string{sealed, signed} {
		if out := mustThiqa(t, nil, "verify", p, "--data", dir, "--offline"); !strings.Contains(out.stdout, "Verdict: TOTAL-PASSED") {
			t.Fatalf("verify %s:\n%s", p, out.stdout)
		}
	}

	// The release's mobile ID logs the citizen in to the release's portal.
	upgradeMobileLogin(t, srv, fx, citizen)

	srv.stop(t)
	out := mustThiqa(t, nil, "audit", "verify", "--data", dir)
	if !strings.Contains(out.stdout, "audit chain OK") || !strings.Contains(out.stdout, "audit checkpoints OK") {
		t.Fatalf("audit verify across the upgrade:\n%s", out.stdout)
	}
	if head := auditHead(t, db); head <= oldHead {
		t.Fatalf("audit head %d after the upgrade, %d before", head, oldHead)
	}
}

// upgradeMobileLogin drives a remote login with the fixture's mobile ID
// up to the authorisation code the portal receives.
func upgradeMobileLogin(t *testing.T, srv *server, fx upgradeFixture, citizen string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, ctype, body, bearer string) (int, string, http.Header) {
		req, err := http.NewRequest(method, srv.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), resp.Header
	}
	q := url.Values{"client_id": {fx.OIDCClient}, "redirect_uri": {"https://portal.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"upgrade-state"}, "nonce": {"upgrade-nonce"}, "code_challenge_method": {"S256"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "civil_number": {"12345678"}}
	st, body, _ := do(http.MethodPost, "/oidc/authorize", "application/x-www-form-urlencoded", q.Encode(), "")
	s, k := reLoginSession.FindStringSubmatch(body), reLoginKey.FindStringSubmatch(body)
	if st != http.StatusOK || s == nil || k == nil {
		t.Fatalf("authorize with the release's portal: %d %s", st, body)
	}
	st, body, _ = do(http.MethodGet, "/oidc/mobile/sessions", "", "", citizen)
	var pending []struct{ Session, VerificationCode string }
	if st != http.StatusOK || json.Unmarshal([]byte(body), &pending) != nil {
		t.Fatalf("pending logins: %d %s", st, body)
	}
	code := ""
	for _, p := range pending {
		if p.Session == s[1] {
			code = p.VerificationCode
		}
	}
	approve, _ := json.Marshal(map[string]string{"session": s[1], "verificationCode": code, "pin": fx.LoginPIN})
	if st, body, _ = do(http.MethodPost, "/oidc/mobile/approve", "application/json", string(approve), citizen); st != http.StatusOK {
		t.Fatalf("approve with the release's mobile ID: %d %s", st, body)
	}
	st, _, h := do(http.MethodPost, "/oidc/authorize/complete", "application/x-www-form-urlencoded",
		url.Values{"login": {s[1]}, "key": {k[1]}}.Encode(), "")
	if loc := h.Get("Location"); st != http.StatusSeeOther || !strings.HasPrefix(loc, "https://portal.example/cb?") || !strings.Contains(loc, "code=") {
		t.Fatalf("login complete: %d %s", st, loc)
	}
}

// tsaSerial returns the serial number of a DER time-stamp token.
func tsaSerial(t *testing.T, der string) *big.Int {
	t.Helper()
	tok, err := tsp.ParseToken([]byte(der))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Info.SerialNumber
}

// crlLists says whether crl lists the certificate with the hex serial.
func crlLists(crl *x509.RevocationList, serial string) bool {
	want, ok := new(big.Int).SetString(serial, 16)
	if !ok {
		return false
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(want) == 0 {
			return true
		}
	}
	return false
}

// sqliteStrings runs a query with one column on the SQLite file path.
func sqliteStrings(t *testing.T, path, query string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditHead is the highest sequence number in the audit log of the SQLite file path.
func auditHead(t *testing.T, path string) int {
	t.Helper()
	n, err := strconv.Atoi(sqliteStrings(t, path, "SELECT MAX(seq) FROM audit_log")[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// mustReadBytes reads the file p.
func mustReadBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// releaseCRLsCover is a time the release's CRLs (upgrade/*.crl in the
// fixture, published when its PDFs were signed) all cover: a minute before
// the earliest nextUpdate among them.
func releaseCRLsCover(t *testing.T, dir string) time.Time {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "upgrade", "*.crl"))
	var at time.Time
	for _, f := range files {
		rl, err := x509.ParseRevocationList(mustReadBytes(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if at.IsZero() || rl.NextUpdate.Before(at) {
			at = rl.NextUpdate
		}
	}
	if at.IsZero() {
		t.Fatalf("fixture %s holds no CRL to date its PDFs by", dir)
	}
	return at.Add(-time.Minute)
}
