package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnrolVoid: `thiqa enrol void` withdraws an enrolment made with
// `thiqa enrol create` (exit 0, its state void, the reason audited);
// voiding it again exits 0; an unknown reference exits non-zero saying
// so; `thiqa enrol -h` lists the verb; openssl cmp's ir under the void
// enrolment is refused as under a used one (notAuthorized), issuing
// nothing; the officer's API void of another enrolment answers 200.
func TestEnrolVoid(t *testing.T) {
	f, db := newPKIFixture(t, false, nil)
	dir := t.TempDir()
	if r := thiqa(t, nil, "enrol", "-h"); r.code != 0 || !strings.Contains(r.stderr, "thiqa enrol void --data DIR REFERENCE") {
		t.Fatalf("thiqa enrol -h: %d %s", r.code, r.stderr)
	}
	writeFile(t, filepath.Join(dir, "org.json"), `{"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "Ministry of Health seal", "country": "OM"}`)
	var created struct{ Reference, Secret string }
	if err := json.Unmarshal([]byte(mustThiqa(t, nil, "enrol", "create", "--data", f.dir, "--profile", "organisation-seal",
		"--subject-file", filepath.Join(dir, "org.json")).stdout), &created); err != nil || created.Secret == "" {
		t.Fatalf("thiqa enrol create: %v", err)
	}
	var voided struct{ Reference, State string }
	if err := json.Unmarshal([]byte(mustThiqa(t, nil, "enrol", "void", "--data", f.dir, created.Reference, "--reason", "letter lost").stdout), &voided); err != nil ||
		voided.State != "void" || voided.Reference != created.Reference {
		t.Fatalf("thiqa enrol void: %+v %v", voided, err)
	}
	mustThiqa(t, nil, "enrol", "void", "--data", f.dir, created.Reference)
	if r := thiqa(t, nil, "enrol", "void", "--data", f.dir, "AAAAAAAAAAAAAAAA"); r.code == 0 || !strings.Contains(r.stderr, "no enrolment with reference AAAAAAAAAAAAAAAA") {
		t.Fatalf("void of an unknown reference: %d %s", r.code, r.stderr)
	}
	var reason string
	if err := db.QueryRow("SELECT details FROM audit_log WHERE action = 'enrolment.void' AND outcome = 'success' ORDER BY seq LIMIT 1").Scan(&reason); err != nil || !strings.Contains(reason, "letter lost") {
		t.Fatalf("void record: %q %v", reason, err)
	}

	issuedBefore := auditCountDB(t, db, "certificate.issue", "success")
	newKey(t, dir, "k1.pem")
	out, ok := opensslCMP(t, f, dir, "-cmd", "ir", "-ref", created.Reference, "-secret", "pass:"+created.Secret, "-newkey", "k1.pem",
		"-subject", "/CN=x", "-recipient", "/CN=Thiqa", "-certout", "c1.pem")
	if ok || !strings.Contains(out, "PKIFailureInfo: notAuthorized") {
		t.Fatalf("ir under a void enrolment: ok=%v\n%s", ok, out)
	}
	if n := auditCountDB(t, db, "certificate.issue", "success"); n != issuedBefore {
		t.Fatal("a certificate was issued under a void enrolment")
	}

	ref, _ := f.enrolment(t, "citizen-auth", citizenSubject())
	st, body, _ := f.do(t, f.client(nil), http.MethodPost, "/api/v1/enrolments/"+ref+"/void", "application/json", `{"reason": "sent over plain HTTP"}`, f.officer)
	if st != http.StatusOK || !strings.Contains(body, `"state":"void"`) {
		t.Fatalf("API void: %d %s", st, body)
	}
}
