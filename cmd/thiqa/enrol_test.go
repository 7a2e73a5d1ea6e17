package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/testenv"
)

// enrolment creates a one-time enrolment through the API as the officer.
func (f *idFixture) enrolment(t *testing.T, profile string, subject map[string]string) (ref, secret string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"profile": profile, "subject": subject})
	st, body, _ := f.do(t, f.client(nil), http.MethodPost, "/api/v1/enrolments", "application/json", string(b), f.officer)
	var out struct{ Reference, Secret, Profile string }
	if st != http.StatusCreated || json.Unmarshal([]byte(body), &out) != nil || out.Reference == "" || out.Secret == "" || out.Profile != profile {
		t.Fatalf("creating an enrolment: %d %s", st, body)
	}
	return out.Reference, out.Secret
}

// opensslCMP runs `openssl cmp` against the fixture's server over TLS in
// dir and returns its output and whether it succeeded.
func opensslCMP(t *testing.T, f *idFixture, dir string, args ...string) (string, bool) {
	t.Helper()
	u, _ := url.Parse(f.base)
	all := append([]string{"cmp", "-server", u.Host, "-path", ".well-known/cmp", "-tls_used",
		"-tls_trusted", filepath.Join(f.dir, "tls", "cert.pem")}, args...)
	cmd := exec.Command(testenv.Tool(t, "openssl"), all...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// newKey writes a fresh P-256 key with openssl to dir/name.
func newKey(t *testing.T, dir, name string) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl"), "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", filepath.Join(dir, name)).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ecparam: %v\n%s", err, out)
	}
}

func auditCountDB(t *testing.T, db *sql.DB, action, outcome string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log WHERE action = $1 AND outcome = $2", action, outcome).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCMPOnSQLite and TestCMPOnPostgres: the real client, openssl cmp,
// enrols with a one-time reference and secret (ir, certConf), updates the
// key with the new certificate (kur), revokes it (rr) and reads the CA
// certificates (genm); the certificates verify with openssl verify, OCSP
// answers revoked after rr and superseded for the key-updated one, and
// every step is in the audit log. A replayed secret, a wrong secret and a
// kur signed by the superseded certificate are refused with the right
// failure info, issuing nothing.
func TestCMPOnSQLite(t *testing.T)   { runCMPE2E(t, false) }
func TestCMPOnPostgres(t *testing.T) { runCMPE2E(t, true) }

func runCMPE2E(t *testing.T, postgres bool) {
	f, db := newPKIFixture(t, postgres, nil)
	dir := t.TempDir()
	for _, k := range []string{"k1.pem", "k2.pem", "k3.pem"} {
		newKey(t, dir, k)
	}
	sub := citizenSubject()
	sub["civilNumber"] = "34567890"
	issuedBefore, revokedBefore := auditCountDB(t, db, "certificate.issue", "success"), auditCountDB(t, db, "certificate.revoke", "success")
	ref, secret := f.enrolment(t, "citizen-auth", sub)
	srvcert := filepath.Join(f.dir, "ca", "cmp-server.pem")

	// A wrong secret: badMessageCheck, nothing issued.
	out, ok := opensslCMP(t, f, dir, "-cmd", "ir", "-ref", ref, "-secret", "pass:WRONGSECRET", "-newkey", "k1.pem",
		"-subject", "/CN=ignored", "-recipient", "/CN=Thiqa", "-unprotected_errors", "-certout", "bad.pem")
	if ok || !strings.Contains(out, "PKIFailureInfo: badMessageCheck") {
		t.Fatalf("ir with a wrong secret: ok=%v\n%s", ok, out)
	}

	// ir with the reference and secret; the subject is the enrolment's.
	out, ok = opensslCMP(t, f, dir, "-cmd", "ir", "-ref", ref, "-secret", "pass:"+secret, "-newkey", "k1.pem",
		"-subject", "/CN=Someone Else", "-recipient", "/CN=Thiqa", "-certout", "c1.pem", "-cacertsout", "capubs.pem")
	if !ok || !strings.Contains(out, "received IP") || !strings.Contains(out, "received PKICONF") {
		t.Fatalf("ir: %s", out)
	}
	c1 := mustRead(t, filepath.Join(dir, "c1.pem"))
	opensslVerify(t, f.dir, "citizen", c1)
	if subj := certSubject(t, filepath.Join(dir, "c1.pem")); !strings.Contains(subj, "IDCOM-34567890") || strings.Contains(subj, "Someone Else") {
		t.Fatalf("the subject must come from the enrolment: %s", subj)
	}
	if got, want := mustRead(t, filepath.Join(dir, "capubs.pem")), mustRead(t, filepath.Join(f.dir, "ca", "root.pem")); strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Fatalf("caPubs is not the root:\n%s", got)
	}

	// The secret is single use.
	out, ok = opensslCMP(t, f, dir, "-cmd", "ir", "-ref", ref, "-secret", "pass:"+secret, "-newkey", "k3.pem",
		"-subject", "/CN=x", "-recipient", "/CN=Thiqa", "-certout", "bad.pem")
	if ok || !strings.Contains(out, "PKIFailureInfo: notAuthorized") {
		t.Fatalf("replayed ir: ok=%v\n%s", ok, out)
	}

	// kur with the new certificate: a new key, same subject; the old one
	// is superseded.
	out, ok = opensslCMP(t, f, dir, "-cmd", "kur", "-cert", "c1.pem", "-key", "k1.pem", "-newkey", "k2.pem", "-srvcert", srvcert, "-certout", "c2.pem")
	if !ok || !strings.Contains(out, "received KUP") || !strings.Contains(out, "received PKICONF") {
		t.Fatalf("kur: %s", out)
	}
	opensslVerify(t, f.dir, "citizen", mustRead(t, filepath.Join(dir, "c2.pem")))
	if a, b := certSubject(t, filepath.Join(dir, "c1.pem")), certSubject(t, filepath.Join(dir, "c2.pem")); a != b {
		t.Fatalf("kur changed the subject: %s -> %s", a, b)
	}
	if got := ocspAnswer(t, f, filepath.Join(dir, "c1.pem")); got != "revoked (superseded)" {
		t.Fatalf("OCSP for the key-updated certificate: %s", got)
	}
	// The superseded certificate signs no more requests.
	out, ok = opensslCMP(t, f, dir, "-cmd", "kur", "-cert", "c1.pem", "-key", "k1.pem", "-newkey", "k3.pem", "-srvcert", srvcert, "-certout", "bad.pem")
	if ok || !strings.Contains(out, "PKIFailureInfo: certRevoked") {
		t.Fatalf("kur signed by a revoked certificate: ok=%v\n%s", ok, out)
	}

	// genm: the CA certificates.
	out, ok = opensslCMP(t, f, dir, "-cmd", "genm", "-cert", "c2.pem", "-key", "k2.pem", "-srvcert", srvcert, "-infotype", "caCerts")
	if !ok || !strings.Contains(out, "received GENP") {
		t.Fatalf("genm: %s", out)
	}

	// rr by the holder; OCSP says revoked.
	out, ok = opensslCMP(t, f, dir, "-cmd", "rr", "-cert", "c2.pem", "-key", "k2.pem", "-oldcert", "c2.pem", "-revreason", "5", "-srvcert", srvcert)
	if !ok || !strings.Contains(out, "revocation accepted") {
		t.Fatalf("rr: %s", out)
	}
	if got := ocspAnswer(t, f, filepath.Join(dir, "c2.pem")); got != "revoked (cessationOfOperation)" {
		t.Fatalf("OCSP after rr: %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.pem")); err == nil {
		t.Fatal("a refused request wrote a certificate")
	}

	// An enrolment made with the CLI, for a profile named in the path, with
	// implicit confirmation (no certConf).
	writeFile(t, filepath.Join(dir, "org.json"), `{"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "Ministry of Health seal", "country": "OM"}`)
	var created struct{ Reference, Secret string }
	if err := json.Unmarshal([]byte(mustThiqa(t, nil, "enrol", "create", "--data", f.dir, "--profile", "organisation-seal",
		"--subject-file", filepath.Join(dir, "org.json"), "--validity", "1h").stdout), &created); err != nil || created.Secret == "" {
		t.Fatalf("thiqa enrol create: %v", err)
	}
	newKey(t, dir, "k4.pem")
	out, ok = opensslCMP(t, f, dir, "-cmd", "ir", "-ref", created.Reference, "-secret", "pass:"+created.Secret, "-newkey", "k4.pem",
		"-subject", "/CN=x", "-recipient", "/CN=Thiqa", "-certout", "c4.pem", "-implicit_confirm")
	if !ok || !strings.Contains(out, "received IP") || strings.Contains(out, "CERTCONF") {
		t.Fatalf("ir with implicit confirmation: %s", out)
	}
	opensslVerify(t, f.dir, "organisation", mustRead(t, filepath.Join(dir, "c4.pem")))
	// A PKCS#10 request (p10cr): its cp carries certReqId -1 (RFC 9810
	// §5.3.4) and openssl confirms it.
	var p10 struct{ Reference, Secret string }
	if err := json.Unmarshal([]byte(mustThiqa(t, nil, "enrol", "create", "--data", f.dir, "--profile", "organisation-seal",
		"--subject-file", filepath.Join(dir, "org.json")).stdout), &p10); err != nil || p10.Secret == "" {
		t.Fatalf("thiqa enrol create: %v", err)
	}
	newKey(t, dir, "k5.pem")
	if out, err := exec.Command(testenv.Tool(t, "openssl"), "req", "-new", "-key", filepath.Join(dir, "k5.pem"), "-subj", "/CN=x",
		"-out", filepath.Join(dir, "k5.csr")).CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	out, ok = opensslCMP(t, f, dir, "-cmd", "p10cr", "-ref", p10.Reference, "-secret", "pass:"+p10.Secret, "-csr", "k5.csr",
		"-recipient", "/CN=Thiqa", "-certout", "c5.pem")
	if !ok || !strings.Contains(out, "received CP") || !strings.Contains(out, "received PKICONF") {
		t.Fatalf("p10cr: %s", out)
	}
	opensslVerify(t, f.dir, "organisation", mustRead(t, filepath.Join(dir, "c5.pem")))
	enrolRefusedBefore := auditCountDB(t, db, "enrolment.refused", "refused")
	out, ok = opensslCMP(t, f, "/", "-path", ".well-known/cmp/p/citizen-signing", "-cmd", "ir", "-ref", created.Reference, "-secret", "pass:"+created.Secret,
		"-newkey", filepath.Join(dir, "k3.pem"), "-subject", "/CN=x", "-recipient", "/CN=Thiqa", "-certout", filepath.Join(dir, "bad.pem"))
	if ok || !strings.Contains(out, "PKIFailureInfo: unacceptedPolicy") {
		t.Fatalf("ir for another profile: %s", out)
	}

	// Every step is in the audit log: the enrolments, four issuances (ir,
	// kur, p10cr), two revocations (superseded, rr), three confirmations,
	// genm, the uses of the enrolments and the refusals.
	for _, c := range []struct {
		action, outcome string
		want            int
	}{
		{"enrolment.create", "success", 3}, {"enrolment.use", "success", 3}, {"certificate.issue", "success", issuedBefore + 4},
		{"certificate.revoke", "success", revokedBefore + 2}, {"cmp.certconf", "success", 3}, {"cmp.genm", "success", 1},
		{"enrolment.refused", "refused", enrolRefusedBefore + 1},
	} {
		if got := auditCountDB(t, db, c.action, c.outcome); got != c.want {
			t.Errorf("audit %s/%s: %d records, want %d", c.action, c.outcome, got, c.want)
		}
	}
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}

// certSubject is openssl's one-line subject of a PEM certificate file.
func certSubject(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl"), "x509", "-in", path, "-noout", "-subject").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestESTOnSQLite and TestESTOnPostgres: with curl and openssl only,
// cacerts answers the chain (the root is the data folder's), simpleenroll
// with HTTP Basic (an enrolment's reference and secret) issues a
// certificate of the enrolment's subject that verifies with openssl,
// simplereenroll with that certificate as the TLS client certificate
// issues its successor and supersedes it; a wrong secret (401), a
// replayed secret (403) and a re-enrolment with the superseded certificate
// (403) are refused, issuing nothing, and audited.
func TestESTOnSQLite(t *testing.T)   { runESTE2E(t, false) }
func TestESTOnPostgres(t *testing.T) { runESTE2E(t, true) }

func runESTE2E(t *testing.T, postgres bool) {
	f, db := newPKIFixture(t, postgres, nil)
	dir := t.TempDir()
	openssl, curl := testenv.Tool(t, "openssl"), testenv.Tool(t, "curl")
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	tlsCA := filepath.Join(f.dir, "tls", "cert.pem")
	// est calls curl on an EST path and returns the HTTP status; the body is in dir/out.
	est := func(path string, extra ...string) string {
		t.Helper()
		args := append([]string{"-sS", "--cacert", tlsCA, "-o", "out", "-w", "%{http_code}"}, extra...)
		return run(curl, append(args, f.base+"/.well-known/est/"+path)...)
	}
	// certsOf turns the base64 certs-only answer in dir/out into PEM at name.
	certsOf := func(name string) {
		t.Helper()
		run("sh", "-c", "base64 -d out > out.p7b && "+openssl+" pkcs7 -inform DER -in out.p7b -print_certs -out "+name)
	}
	csr := func(key, name string) {
		t.Helper()
		newKey(t, dir, key)
		run("sh", "-c", openssl+" req -new -key "+key+" -subj /CN=Somebody -outform DER | base64 > "+name)
	}
	issuedBefore := auditCountDB(t, db, "certificate.issue", "success")

	if st := est("cacerts"); st != "200" {
		t.Fatalf("cacerts: %s", st)
	}
	certsOf("cacerts.pem")
	if got, root := mustRead(t, filepath.Join(dir, "cacerts.pem")), strings.TrimSpace(mustRead(t, filepath.Join(f.dir, "ca", "root.pem"))); !strings.Contains(got, root) {
		t.Fatal("cacerts does not hold the root")
	}
	run(openssl, "verify", "-CAfile", filepath.Join(f.dir, "ca", "root.pem"), filepath.Join(f.dir, "ca", "citizen.pem"))
	if st := est("csrattrs"); st != "200" {
		t.Fatalf("csrattrs: %s", st)
	}

	sub := citizenSubject()
	sub["civilNumber"] = "45678901"
	ref, secret := f.enrolment(t, "citizen-auth", sub)
	csr("k1.pem", "csr1.b64")
	post := []string{"-H", "Content-Type: application/pkcs10", "--data-binary", "@csr1.b64"}
	if st := est("simpleenroll", append(post, "-u", ref+":WRONGSECRET")...); st != "401" {
		t.Fatalf("simpleenroll with a wrong secret: %s %s", st, mustRead(t, filepath.Join(dir, "out")))
	}
	if st := est("simpleenroll", post...); st != "401" {
		t.Fatalf("simpleenroll without credentials: %s", st)
	}
	if st := est("simpleenroll", append(post, "-u", ref+":"+secret)...); st != "200" {
		t.Fatalf("simpleenroll: %s %s", st, mustRead(t, filepath.Join(dir, "out")))
	}
	certsOf("c1.pem")
	run(openssl, "verify", "-CAfile", filepath.Join(f.dir, "ca", "root.pem"), "-untrusted", "cacerts.pem", "c1.pem")
	if subj := certSubject(t, filepath.Join(dir, "c1.pem")); !strings.Contains(subj, "IDCOM-45678901") || strings.Contains(subj, "Somebody") {
		t.Fatalf("the subject must come from the enrolment: %s", subj)
	}
	csr("k2.pem", "csr2.b64")
	if st := est("simpleenroll", "-H", "Content-Type: application/pkcs10", "--data-binary", "@csr2.b64", "-u", ref+":"+secret); st != "403" {
		t.Fatalf("replayed secret: %s %s", st, mustRead(t, filepath.Join(dir, "out")))
	}

	// Re-enrol with the current certificate as the TLS client certificate.
	reenrol := []string{"--cert", "c1.pem", "--key", "k1.pem", "-H", "Content-Type: application/pkcs10", "--data-binary", "@csr2.b64"}
	if st := est("simplereenroll", reenrol...); st != "200" {
		t.Fatalf("simplereenroll: %s %s", st, mustRead(t, filepath.Join(dir, "out")))
	}
	certsOf("c2.pem")
	run(openssl, "verify", "-CAfile", filepath.Join(f.dir, "ca", "root.pem"), "-untrusted", "cacerts.pem", "c2.pem")
	if a, b := certSubject(t, filepath.Join(dir, "c1.pem")), certSubject(t, filepath.Join(dir, "c2.pem")); a != b {
		t.Fatalf("re-enrolment changed the subject: %s -> %s", a, b)
	}
	if got := ocspAnswer(t, f, filepath.Join(dir, "c1.pem")); got != "revoked (superseded)" {
		t.Fatalf("OCSP for the re-enrolled certificate: %s", got)
	}
	// The superseded certificate re-enrols no more.
	csr("k3.pem", "csr3.b64")
	if st := est("simplereenroll", "--cert", "c1.pem", "--key", "k1.pem", "-H", "Content-Type: application/pkcs10", "--data-binary", "@csr3.b64"); st != "403" && st != "401" {
		t.Fatalf("simplereenroll with a revoked certificate: %s %s", st, mustRead(t, filepath.Join(dir, "out")))
	}
	if got := auditCountDB(t, db, "certificate.issue", "success"); got != issuedBefore+2 {
		t.Fatalf("%d certificates issued, want 2", got-issuedBefore)
	}
	if got := auditCountDB(t, db, "enrolment.refused", "refused"); got < 4 {
		t.Fatalf("%d refusals audited, want 4", got)
	}
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}

// TestRAEnrolment: a registration authority (a client certificate that
// auth.mtls.rules maps to registration-officer) enrols a subject it names,
// for the profile in the path, with openssl cmp (its signature protects
// the ir) and with EST (its TLS client certificate); a citizen's
// certificate may do neither.
func TestRAEnrolment(t *testing.T) {
	f, db := newPKIFixture(t, false, func(y string) string {
		return strings.Replace(y, "    clientCAFiles: [ca/citizen.pem, ca/organisation.pem]", "    clientCAFiles: [ca/citizen.pem, ca/organisation.pem]\n"+
			"    rules:\n      - {organizationIdentifierPrefix: NTROM-9, role: registration-officer}\n"+
			"      - {requireOrganizationIdentifier: true, role: agency}\n      - {serialNumberPrefix: IDC, role: citizen}", 1)
	})
	dir := t.TempDir()
	openssl := testenv.Tool(t, "openssl")
	run := func(name string, args ...string) (string, bool) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err == nil
	}
	// The RA's certificate: an organisation seal of the registration office.
	for _, k := range []string{"ra.key", "k1.pem", "k2.pem", "cit.key"} {
		newKey(t, dir, k)
	}
	csrOf := func(key string) string {
		out, ok := run(openssl, "req", "-new", "-key", key, "-subj", "/CN=x")
		if !ok {
			t.Fatal(out)
		}
		return out
	}
	ra := f.issue(t, ca.IssueRequest{Profile: "organisation-seal", CSR: csrOf("ra.key"), Subject: map[string]string{
		"organizationName": "Civil Registry", "organizationIdentifier": "NTROM-9000001", "commonName": "Civil Registry RA", "country": "OM"}})
	writeFile(t, filepath.Join(dir, "ra.pem"), ra.Certificate)
	sub := citizenSubject()
	sub["civilNumber"] = "56781234"
	cit := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", CSR: csrOf("cit.key"), Subject: sub})
	writeFile(t, filepath.Join(dir, "cit.pem"), cit.Certificate)
	srvcert := filepath.Join(f.dir, "ca", "cmp-server.pem")
	subject := "/C=OM/GN=Omar/SN=Al Rawahi/serialNumber=IDCOM-11112222/CN=Omar Al Rawahi"

	out, ok := opensslCMP(t, f, dir, "-path", ".well-known/cmp/p/citizen-auth", "-cmd", "ir", "-cert", "ra.pem", "-key", "ra.key",
		"-newkey", "k1.pem", "-subject", subject, "-srvcert", srvcert, "-certout", "c1.pem")
	if !ok || !strings.Contains(out, "received IP") {
		t.Fatalf("RA ir: %s", out)
	}
	opensslVerify(t, f.dir, "citizen", mustRead(t, filepath.Join(dir, "c1.pem")))
	if s := certSubject(t, filepath.Join(dir, "c1.pem")); !strings.Contains(s, "IDCOM-11112222") || !strings.Contains(s, "Omar Al Rawahi") {
		t.Fatalf("RA ir subject: %s", s)
	}
	out, ok = opensslCMP(t, f, dir, "-path", ".well-known/cmp/p/citizen-auth", "-cmd", "ir", "-cert", "cit.pem", "-key", "cit.key",
		"-newkey", "k2.pem", "-subject", subject, "-srvcert", srvcert, "-certout", "bad.pem")
	if ok || !strings.Contains(out, "PKIFailureInfo: notAuthorized") {
		t.Fatalf("ir signed by a citizen: %s", out)
	}

	// EST: the RA's TLS client certificate, the profile as label.
	out, ok = run("sh", "-c", openssl+" req -new -key k2.pem -subj '"+subject+"' -outform DER | base64 > k2.b64")
	if !ok {
		t.Fatal(out)
	}
	est := func(cert, key string) string {
		out, _ := run(testenv.Tool(t, "curl"), "-sS", "--cacert", filepath.Join(f.dir, "tls", "cert.pem"), "--cert", cert, "--key", key,
			"-H", "Content-Type: application/pkcs10", "--data-binary", "@k2.b64", "-o", "out", "-w", "%{http_code}", f.base+"/.well-known/est/citizen-auth/simpleenroll")
		return out
	}
	if st := est("cit.pem", "cit.key"); st != "403" {
		t.Fatalf("EST simpleenroll with a citizen's certificate: %s", st)
	}
	if st := est("ra.pem", "ra.key"); st != "200" {
		t.Fatalf("EST simpleenroll by the RA: %s %s", st, mustRead(t, filepath.Join(dir, "out")))
	}
	if out, ok := run("sh", "-c", "base64 -d out | "+openssl+" pkcs7 -inform DER -print_certs -out c2.pem"); !ok {
		t.Fatal(out)
	}
	opensslVerify(t, f.dir, "citizen", mustRead(t, filepath.Join(dir, "c2.pem")))
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log WHERE action = 'certificate.issue' AND outcome = 'success' AND actor LIKE '%Civil Registry RA%'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("issuances by the RA in the audit log: %d %v", n, err)
	}
}
