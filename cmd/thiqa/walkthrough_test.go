package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/thiqa/thiqa/api/apitest"
	"github.com/thiqa/thiqa/internal/testenv"
)

var updateExamples = flag.Bool("update-api-examples", false, "write the responses TestWalkthrough captured to api/examples.json")

// walkthroughCapture maps a file the walk-through leaves in its scratch
// folder to the operation it is the request (status 0) or response of,
// and to its example name in the OpenAPI document.
var walkthroughCapture = []struct {
	file, example, summary string
	method, path           string
	status                 int
	mediaType              string
}{
	{"healthz.json", "healthz", "Alive", "GET", "/healthz", 200, ""},
	{"readyz.json", "readyz", "Store and token answer", "GET", "/readyz", 200, ""},
	{"whoami.json", "whoami", "A citizen's development token", "GET", "/api/v1/whoami", 200, ""},
	{"unauthenticated.json", "unauthenticated", "No credentials", "GET", "/api/v1/whoami", 401, "application/problem+json"},
	{"issue-request-csr.json", "issue-request-csr", "A citizen-auth certificate for a CSR", "POST", "/api/v1/certificates", 0, ""},
	{"issue-request-keyinhsm.json", "issue-request-keyinhsm", "A citizen-signing credential, key on the token", "POST", "/api/v1/certificates", 0, ""},
	{"issue-created.json", "issue-created", "Issued (PEM shortened)", "POST", "/api/v1/certificates", 201, ""},
	{"issue-bad-subject.json", "issue-bad-subject", "Every bad field at once", "POST", "/api/v1/certificates", 400, "application/problem+json"},
	{"forbidden.json", "forbidden", "A citizen may not issue", "POST", "/api/v1/certificates", 403, "application/problem+json"},
	{"certificate.json", "certificate", "A certificate (PEM shortened)", "GET", "/api/v1/certificates/{serial}", 200, ""},
	{"revoke-request.json", "revoke-request", "Superseded", "POST", "/api/v1/certificates/{serial}/revoke", 0, ""},
	{"revoke-ok.json", "revoke-ok", "Revoked", "POST", "/api/v1/certificates/{serial}/revoke", 200, ""},
	{"seal-batch.json", "seal-batch", "Two PDFs sealed (base64 shortened)", "POST", "/api/v1/seal/batch", 200, ""},
	{"pin-request.json", "pin-request", "The signing PIN", "POST", "/api/v1/credentials/{id}/pin", 0, ""},
	{"pin-set.json", "pin-set", "Set", "POST", "/api/v1/credentials/{id}/pin", 201, ""},
	{"sign-prepare.json", "sign-prepare", "The hash to authorise", "POST", "/api/v1/sign/prepare", 200, ""},
	{"csc-info.json", "csc-info", "The service", "POST", "/csc/v2/info", 200, ""},
	{"csc-list-request.json", "csc-list-request", "With details", "POST", "/csc/v2/credentials/list", 0, ""},
	{"csc-list.json", "csc-list", "A citizen's credential", "POST", "/csc/v2/credentials/list", 200, ""},
	{"csc-credential-info-request.json", "csc-credential-info-request", "With certificate details", "POST", "/csc/v2/credentials/info", 0, ""},
	{"csc-credential-info.json", "csc-credential-info", "A citizen-signing credential", "POST", "/csc/v2/credentials/info", 200, ""},
	{"csc-authorize-request.json", "csc-authorize-request", "The prepared hash and the PIN", "POST", "/csc/v2/credentials/authorize", 0, ""},
	{"csc-authorize.json", "csc-authorize", "A SAD", "POST", "/csc/v2/credentials/authorize", 200, ""},
	{"csc-signhash-request.json", "csc-signhash-request", "One SHA-256 hash, ECDSA", "POST", "/csc/v2/signatures/signHash", 0, ""},
	{"csc-signhash.json", "csc-signhash", "Its signature", "POST", "/csc/v2/signatures/signHash", 200, ""},
	{"csc-error.json", "csc-error", "The SAD was used already", "POST", "/csc/v2/signatures/signHash", 400, ""},
	{"client-request.json", "client-request", "A portal with an Ed25519 JWK set", "POST", "/api/v1/oidc/clients", 0, ""},
	{"client.json", "client-registered", "Registered", "POST", "/api/v1/oidc/clients", 201, ""},
	{"oidc-discovery.json", "oidc-discovery", "Provider metadata", "GET", "/.well-known/openid-configuration", 200, ""},
	{"oidc-jwks.json", "oidc-jwks", "The ID-token signing key", "GET", "/oidc/jwks", 200, ""},
	{"mobile-sessions.json", "mobile-sessions", "One pending login", "GET", "/oidc/mobile/sessions", 200, ""},
	{"mobile-approve-request.json", "mobile-approve-request", "The code the browser shows, and the PIN", "POST", "/oidc/mobile/approve", 0, ""},
	{"mobile-approve.json", "mobile-approve", "Approved", "POST", "/oidc/mobile/approve", 200, ""},
	{"oidc-token.json", "oidc-token", "Tokens (shortened)", "POST", "/oidc/token", 200, ""},
	{"oidc-token-error.json", "oidc-token-error", "A code redeemed twice", "POST", "/oidc/token", 400, ""},
	{"oidc-userinfo.json", "oidc-userinfo", "The citizen's claims", "GET", "/oidc/userinfo", 200, ""},
	{"verify-report.json", "verify-report", "A sealed PDF, TOTAL-PASSED (shortened)", "POST", "/api/v1/verify", 200, ""},
}

// The README's quick start, scripts/walkthrough.sh, runs in working order
// against a fresh data folder and a real server; every JSON request and
// response it leaves behind matches the OpenAPI document, and every member
// of a response is described there. With
// -update-api-examples they become the document's examples.
func TestWalkthrough(t *testing.T) {
	testenv.PKCS11Module(t)
	for _, tool := range []string{"bash", "curl", "openssl", "basenc", "sed", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s is not installed: %v", tool, err)
		}
	}
	work := filepath.Join(t.TempDir(), "walkthrough")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../../scripts/walkthrough.sh", work)
	cmd.Env = append(os.Environ(), "THIQA="+thiqaBin, "PORT="+strconv.Itoa(idFreePort(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		serveLog, _ := os.ReadFile(filepath.Join(work, "serve.log"))
		t.Fatalf("scripts/walkthrough.sh: %v\n%s\nserver log (tail):\n%s", err, out, tail(serveLog, 4000))
	}

	doc, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string]any{}
	for _, c := range walkthroughCapture {
		body, err := os.ReadFile(filepath.Join(work, c.file))
		if err != nil {
			t.Errorf("the walk-through left no %s: %v", c.file, err)
			continue
		}
		mt := c.mediaType
		if mt == "" {
			mt = "application/json"
		}
		check := doc.CheckDescribed // an answer: every member is described
		if c.status == 0 {
			check = doc.Check
		}
		if err := check(c.method, c.path, c.status, mt, body); err != nil {
			t.Errorf("%s (%s %s %d) does not match the OpenAPI document: %v", c.file, c.method, c.path, c.status, err)
			continue
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		examples[c.example] = map[string]any{"summary": c.summary, "value": shortened(v)}
	}
	if *updateExamples && !t.Failed() {
		raw, err := json.MarshalIndent(examples, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../../api/examples.json", append(raw, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shortened returns v with every string longer than 160 characters cut to
// its first 100 (certificates, signed PDFs and tokens make examples
// unreadable; their shape is what an example shows).
func shortened(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			x[k] = shortened(c)
		}
	case []any:
		for i, c := range x {
			x[i] = shortened(c)
		}
	case string:
		if n := utf8.RuneCountInString(x); n > 160 {
			return fmt.Sprintf("%s… (%d characters)", string([]rune(x)[:100]), n)
		}
	}
	return v
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// The README's quick start shows the walk-through's own commands: each
// command line of its sh blocks is a line of scripts/walkthrough.sh, but
// for the few that only make sense pasted by hand.
func TestReadmeQuickStartIsTheWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("../../scripts/walkthrough.sh")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Quick start, step by step")
	section, _, _ = strings.Cut(section, "\n## ")
	if !ok {
		t.Fatal("README.md has no quick-start section")
	}
	scriptLines := map[string]bool{}
	for _, l := range strings.Split(string(script), "\n") {
		scriptLines[strings.TrimSpace(l)] = true
	}
	handOnly := []string{"THIQA=", "mkdir -p /tmp/thiqa-try", "call() {", "[ \"$got\"", "\"$THIQA\" init --data data >", "\"$THIQA\" serve --data data", "kill %1"}
	checked := 0
	for _, b := range shBlock.FindAllStringSubmatch(section, -1) {
		for _, l := range strings.Split(b[1], "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") || slices.ContainsFunc(handOnly, func(p string) bool { return strings.HasPrefix(l, p) }) {
				continue
			}
			checked++
			if !scriptLines[l] {
				t.Errorf("README quick-start line is not in scripts/walkthrough.sh: %s", l)
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d README lines checked", checked)
	}
}
