package main

import (
	"database/sql"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// TestRevokedIssuingCAStopsIssuing on SQLite and PostgreSQL, with the CA
// keys on SoftHSM: the key ceremony revokes the citizen CA and the root CRL
// that says so is imported before the server starts. The reload that
// brings a CRL to a running server is tested in ca/crl against both
// stores (TestImportedReloadOnLoadStore) and its effect in ca
// (TestApplyRootCRL): waiting here for the 30 s reload made this test take
// 90-150 s and depend on when the reload came. The server refuses every citizen issuance with 409
// issuing-ca-revoked, audits each refusal, records no serial; the
// organisation CA still issues; the gauge says 1 for citizen only;
// /readyz stays 200 and names the CA; the CRLs are still served; and the
// in-process `thiqa issue` refuses too.
func TestRevokedIssuingCAStopsIssuing(t *testing.T) {
	for _, postgres := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[postgres]
		t.Run(name, func(t *testing.T) {
			d := newOfflineDeployment(t, postgres)

			// The ceremony revokes the citizen CA; the CRL is imported.
			citizen := readPEMCert(t, filepath.Join(d.dir, "ca", "citizen.pem"))
			serial := hex.EncodeToString(citizen.SerialNumber.Bytes())
			crlFile := d.path("root-2.crl")
			mustThiqa(t, nil, "ca", "crl", "--ceremony", d.cer, "--revoke", serial, "--reason", "keyCompromise", "--out", crlFile)
			mustThiqa(t, d.env, "ca", "crl", "import", "--data", d.dir, "--crl", crlFile)

			d.start(t)
			d.officer = d.token(t, "officer-7", "registration-officer")
			citizenReq := func() ca.IssueRequest {
				return ca.IssueRequest{Profile: "citizen-signing", Subject: citizenSubject(), CSR: newTestCSR(t)}
			}
			before := d.rows(t, "SELECT count(*) FROM certificates")
			code, body := d.srv.post(t, "/api/v1/certificates", d.officer, citizenReq())
			wantProblem(t, "citizen issuance after the root revoked its CA", code, body, http.StatusConflict, ca.ProblemIssuerRevoked)
			if !strings.Contains(string(body), "keyCompromise") || !strings.Contains(string(body), "thiqa ca rollover --name citizen") {
				t.Fatalf("the problem does not say why and what to do: %s", body)
			}
			// The service generating the key on the token is refused before
			// any key is made, and the refusal is audited as well.
			code, body = d.srv.post(t, "/api/v1/certificates", d.officer, ca.IssueRequest{Profile: "citizen-signing", Subject: citizenSubject(), KeyInHSM: true})
			wantProblem(t, "citizen keyInHSM issuance", code, body, http.StatusConflict, ca.ProblemIssuerRevoked)
			if n := d.rows(t, "SELECT count(*) FROM certificates"); n != before {
				t.Fatalf("%d certificate rows (intents included) after the refusals, want %d: a serial was consumed", n, before)
			}
			if n := d.rows(t, "SELECT count(*) FROM audit_log WHERE action = 'certificate.issue' AND outcome = 'failure' AND details LIKE '%revoked by the root%'"); n != 2 {
				t.Fatalf("%d audit records of the refused issuances, want 2", n)
			}

			// The other CA keeps issuing; OCSP's CRLs are still served.
			issueOK(t, d.srv, d.officer, ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(), CSR: newTestCSR(t)})
			for _, path := range []string{"/crl/citizen.crl", "/crl/root.crl"} {
				if code, _, _ := d.srv.get(t, path, ""); code != http.StatusOK {
					t.Fatalf("GET %s after the revocation: %d", path, code)
				}
			}
			if c, o := revokedGauge(t, d.srv, "citizen"), revokedGauge(t, d.srv, "organisation"); c != "1" || o != "0" {
				t.Fatalf("thiqa_issuing_ca_revoked: citizen %q organisation %q, want 1 and 0", c, o)
			}
			if code, _, body := d.srv.get(t, "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"issuingCARevoked":"warning: the root CRL revokes issuing CA citizen`) {
				t.Fatalf("/readyz after the revocation: %d %s", code, body)
			}
			if n := strings.Count(d.srv.stderr.String(), "issuing CA revoked by the root CRL"); n != 1 {
				t.Fatalf("the revocation was logged %d times, want once:\n%s", n, d.srv.stderr.String())
			}

			// In process, as the servers.
			subject := d.path("subject.json")
			writeFile(t, subject, `{"givenName":"Aisha","surname":"Al Harthy","commonName":"Aisha Al Harthy","civilNumber":"12345678","country":"OM"}`)
			csr := d.path("req.csr")
			writeFile(t, csr, newTestCSR(t))
			r := thiqa(t, d.env, "issue", "--data", d.dir, "--profile", "citizen-signing", "--csr", csr, "--subject-file", subject)
			if r.code == 0 || !strings.Contains(r.stderr, "revoked by the root") {
				t.Fatalf("thiqa issue from the revoked CA: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// revokedGauge returns the value of thiqa_issuing_ca_revoked for issuer.
func revokedGauge(t *testing.T, srv *server, issuer string) string {
	t.Helper()
	_, _, body := srv.get(t, "/metrics", "")
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "thiqa_issuing_ca_revoked{") && strings.Contains(l, `issuer="`+issuer+`"`) {
			return l[strings.LastIndexByte(l, ' ')+1:]
		}
	}
	t.Fatalf("no thiqa_issuing_ca_revoked series of %s in /metrics", issuer)
	return ""
}

// rows runs a counting query on the deployment's database.
func (d *offlineDeployment) rows(t *testing.T, q string) int {
	t.Helper()
	driver, dsn := "sqlite", filepath.Join(d.dir, "thiqa.db")
	for _, e := range d.env {
		if v, ok := strings.CutPrefix(e, "THIQA_TEST_DSN="); ok {
			driver, dsn = "pgx", v
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestIssueRefusedWhenRootCRLUnknown on SQLite and PostgreSQL: `thiqa
// issue` fails closed when the imported root CRL cannot be read or
// applied (here: the stored CRL is damaged), since it cannot tell whether
// the root revoked the CA; it issues with the CRL readable. Before, the
// failure was only logged and the certificate issued. A server started so
// refuses with 409 issuing-ca-revoked saying why, warns in /readyz and
// still serves CRLs (its retry at the next reload: ca/crl
// TestImportedOnLoadRetryStore and ca TestRootCRLUnknown).
func TestIssueRefusedWhenRootCRLUnknown(t *testing.T) {
	for _, postgres := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[postgres]
		t.Run(name, func(t *testing.T) {
			d := newOfflineDeployment(t, postgres)
			subject := d.path("subject.json")
			writeFile(t, subject, `{"givenName":"Aisha","surname":"Al Harthy","commonName":"Aisha Al Harthy","civilNumber":"12345678","country":"OM"}`)
			issue := func() result {
				csr := d.path("req.csr")
				writeFile(t, csr, newTestCSR(t))
				return thiqa(t, d.env, "issue", "--data", d.dir, "--profile", "citizen-signing", "--csr", csr, "--subject-file", subject)
			}
			if r := issue(); r.code != 0 {
				t.Fatalf("thiqa issue with the root CRL readable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			damage := "UPDATE imported_crls SET der = X'00' WHERE issuer = 'root'"
			if postgres {
				damage = `UPDATE imported_crls SET der = '\x00'::bytea WHERE issuer = 'root'`
			}
			d.exec(t, damage)
			before := d.rows(t, "SELECT count(*) FROM certificates")
			r := issue()
			if r.code == 0 || !strings.Contains(r.stderr, "could not be read or applied") || !strings.Contains(r.stderr, "nothing was issued") {
				t.Fatalf("thiqa issue with the root CRL unreadable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if n := d.rows(t, "SELECT count(*) FROM certificates"); n != before {
				t.Fatalf("%d certificate rows after the refusal, want %d", n, before)
			}

			// A server that starts so refuses too, and says why; the other
			// services go on.
			d.start(t)
			d.officer = d.token(t, "officer-7", "registration-officer")
			code, body := d.srv.post(t, "/api/v1/certificates", d.officer, ca.IssueRequest{Profile: "citizen-signing", Subject: citizenSubject(), CSR: newTestCSR(t)})
			wantProblem(t, "citizen issuance with the root CRL unreadable", code, body, http.StatusConflict, ca.ProblemIssuerRevoked)
			if !strings.Contains(string(body), "could not be read or applied") {
				t.Fatalf("the problem does not say why: %s", body)
			}
			if _, _, body := d.srv.get(t, "/readyz", ""); !strings.Contains(string(body), `"issuingCARevoked":"warning: the imported root CRL could not be read or applied`) {
				t.Fatalf("/readyz with the root CRL unreadable: %s", body)
			}
			if code, _, _ := d.srv.get(t, "/crl/citizen.crl", ""); code != http.StatusOK {
				t.Fatalf("GET /crl/citizen.crl with the root CRL unreadable: %d", code)
			}
			if n := d.rows(t, "SELECT count(*) FROM certificates"); n != before {
				t.Fatalf("%d certificate rows after the server's refusal, want %d", n, before)
			}
		})
	}
}

// exec runs a statement on the deployment's database.
func (d *offlineDeployment) exec(t *testing.T, q string) {
	t.Helper()
	driver, dsn := "sqlite", filepath.Join(d.dir, "thiqa.db")
	for _, e := range d.env {
		if v, ok := strings.CutPrefix(e, "THIQA_TEST_DSN="); ok {
			driver, dsn = "pgx", v
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestRevokedTSAIssuingCAStopsTSA (SQLite, the CA and unit keys on
// SoftHSM): the key ceremony revokes the TSA's issuing CA and the root CRL
// is imported before the server starts. The TSA unit it certified stops
// as a revoked unit does: /tsa answers systemFailure with 503, /readyz
// fails "tsa" naming the revoked issuing CA, thiqa_tsa_unit_issuer_revoked
// is 1, the log says so once, and each refusal is audited
// (timestamp.refuse). The wiring is what this checks: the TSA and the
// root CRL's state are tested on both stores in timestamp
// (TestTSAUnitIssuerRevokedStops). Then the operators roll the TSA's CA
// over while the server runs: at its next renewal check the server
// certifies a new unit from the new generation and time-stamps again,
// without a restart.
func TestRevokedTSAIssuingCAStopsTSA(t *testing.T) {
	d := newOfflineDeployment(t, false)
	tsaCA := readPEMCert(t, filepath.Join(d.dir, "ca", "tsa.pem"))
	crlFile := d.path("root-2.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", d.cer, "--revoke", hex.EncodeToString(tsaCA.SerialNumber.Bytes()), "--reason", "keyCompromise", "--out", crlFile)
	mustThiqa(t, d.env, "ca", "crl", "import", "--data", d.dir, "--crl", crlFile)
	// A renewal check each second, so that the rollover below is seen soon.
	conf := filepath.Join(d.dir, "thiqa.yaml")
	y := mustRead(t, conf)
	if !strings.Contains(y, "renewCheckInterval: 1h0m0s") {
		t.Fatalf("no tsa.renewCheckInterval in thiqa.yaml:\n%s", y)
	}
	writeFile(t, conf, strings.Replace(y, "renewCheckInterval: 1h0m0s", "renewCheckInterval: 1s", 1))
	d.start(t)

	for range 2 {
		if code, _, st := stampRaw(t, d.srv); code != http.StatusServiceUnavailable || st != tsp.StatusRejection {
			t.Fatalf("POST /tsa with the TSA's issuing CA revoked: %d %v, want 503 rejection", code, st)
		}
	}
	code, _, body := d.srv.get(t, "/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"tsa":"timestamp: the issuing CA of the TSA unit certificate is revoked by the root`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	_, _, metrics := d.srv.get(t, "/metrics", "")
	if !strings.Contains(string(metrics), "\nthiqa_tsa_unit_issuer_revoked 1\n") {
		t.Fatal("thiqa_tsa_unit_issuer_revoked is not 1")
	}
	if n := strings.Count(d.srv.stderr.String(), "the issuing CA of the TSA unit was revoked by the root CRL"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, d.srv.stderr.String())
	}
	if n := d.rows(t, "SELECT count(*) FROM audit_log WHERE action = 'timestamp.refuse' AND outcome = 'failure' AND details LIKE '%issuing-ca-revoked%'"); n < 1 {
		t.Fatal("no timestamp.refuse audit record of the refusals")
	}
	if n := d.rows(t, "SELECT count(*) FROM audit_log WHERE action = 'timestamp.issue'"); n != 0 {
		t.Fatalf("%d timestamp.issue records: a token was recorded", n)
	}

	// The rollover, the server running: thiqa ca rollover, the ceremony,
	// thiqa ca import. No restart.
	mustThiqa(t, d.env, "ca", "rollover", "--data", d.dir, "--name", "tsa")
	gen2 := d.path("tsa_2.pem")
	mustThiqa(t, nil, "ca", "sign", "--ceremony", d.cer, "--csr", filepath.Join(d.dir, "ca", "tsa_2.csr"), "--name", "tsa", "--out", gen2)
	mustThiqa(t, d.env, "ca", "import", "--data", d.dir, "--name", "tsa", "--cert", gen2)
	var code2 int
	var st2 tsp.PKIStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code2, _, st2 = stampRaw(t, d.srv); code2 == http.StatusOK {
			break
		}
	}
	if code2 != http.StatusOK || st2 != tsp.StatusGranted {
		t.Fatalf("POST /tsa after the rollover, no restart: %d %v, want a token\n%s", code2, st2, d.srv.stderr.String())
	}
	unit := readPEMCert(t, filepath.Join(d.dir, "tsa", "unit.pem"))
	if err := unit.CheckSignatureFrom(readPEMCert(t, filepath.Join(d.dir, "ca", "tsa_2.pem"))); err != nil {
		t.Fatalf("the new unit is not certified by the new generation: %v", err)
	}
	if code, _, body := d.srv.get(t, "/readyz", ""); !strings.Contains(string(body), `"tsa":"ok"`) {
		t.Fatalf("/readyz after the rollover: %d %s", code, body)
	}
}

// TestSealRefusedUnderRevokedIssuingCA on SQLite and PostgreSQL: the operator's `thiqa
// seal`, run beside a running server, refuses a seal credential whose
// issuing CA the imported root CRL revokes, and writes no output. Before,
// it started with no root CRL applied and sealed.
func TestSealRefusedUnderRevokedIssuingCA(t *testing.T) {
	for _, postgres := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[postgres], func(t *testing.T) { sealUnderRevokedIssuingCA(t, postgres) })
	}
}

// sealUnderRevokedIssuingCA is TestSealRefusedUnderRevokedIssuingCA on one
// store.
func sealUnderRevokedIssuingCA(t *testing.T, postgres bool) {
	d := newOfflineDeployment(t, postgres)
	d.start(t)
	d.officer = d.token(t, "officer-7", "registration-officer")
	out := issueOK(t, d.srv, d.officer, ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(), KeyInHSM: true})
	if out.CredentialID == "" {
		t.Fatal("a keyInHSM seal certificate without a credential ID")
	}
	in := d.path("in.pdf")
	writeFile(t, in, string(samplePDF(t, 20<<10)))
	mustThiqa(t, d.env, "seal", "--data", d.dir, "--credential", out.CredentialID, "--in", in, "--out", d.path("before.pdf"))

	// The ceremony revokes the organisation CA; the CRL is imported.
	org := readPEMCert(t, filepath.Join(d.dir, "ca", "organisation.pem"))
	crlFile := d.path("root-2.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", d.cer, "--revoke", hex.EncodeToString(org.SerialNumber.Bytes()), "--reason", "keyCompromise", "--out", crlFile)
	mustThiqa(t, d.env, "ca", "crl", "import", "--data", d.dir, "--crl", crlFile)

	after := d.path("after.pdf")
	r := thiqa(t, d.env, "seal", "--data", d.dir, "--credential", out.CredentialID, "--in", in, "--out", after)
	if r.code == 0 || !strings.Contains(r.stderr, "revoked by the root") {
		t.Fatalf("thiqa seal under the revoked organisation CA: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(after); !os.IsNotExist(err) {
		t.Fatalf("the refused seal wrote %s: %v", after, err)
	}
}
