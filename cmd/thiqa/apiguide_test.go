package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

// shBlock finds the ```sh code blocks of a Markdown page.
var shBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// The integration guide's curl examples (docs/api.md) run, in order, as
// one script against a fresh data folder and a real server.
func TestAPIGuide(t *testing.T) {
	testenv.PKCS11Module(t)
	for _, tool := range []string{"bash", "curl", "openssl", "basenc", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s is not installed: %v", tool, err)
		}
	}
	page, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	blocks := shBlock.FindAllSubmatch(page, -1)
	if len(blocks) < 10 {
		t.Fatalf("docs/api.md has only %d sh blocks", len(blocks))
	}
	for _, b := range blocks {
		script.Write(b[1])
	}
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "THIQA="+thiqaBin, "PORT="+strconv.Itoa(idFreePort(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		serveLog, _ := os.ReadFile(filepath.Join(work, "api-guide", "serve.log"))
		t.Fatalf("the sh blocks of docs/api.md failed: %v\n%s\nserver log (tail):\n%s", err, out, tail(serveLog, 3000))
	}
	for _, want := range []string{"X-Thiqa-Document-Digest", `"indication":"TOTAL-PASSED"`, `"status":"approved"`, `"sub":`, "Status: Granted", "card2.pem: revoked", "card.pem: OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the guide's output lacks %q:\n%s", want, out)
		}
	}
}

// The JSON helpers the guide, the README's quick start and the
// walk-through define take the first member of a name, as they say: the
// citizen's pending logins are listed newest first, and with two pending a
// helper taking the last gave the older login's verification code for the
// newer login, which the provider refused (403) and cancelled.
func TestGuideJSONHelpersTakeTheFirstMember(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.Missing(t, "bash is not installed: %v", err)
	}
	helper := func(file, name string) string {
		t.Helper()
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(l, name+"() {") {
				return l
			}
		}
		t.Fatalf("%s defines no %s()", file, name)
		return ""
	}
	sessions := `[{"session":"new","verificationCode":"1234","clientName":"Contract signing app"},` +
		`{"session":"old","verificationCode":"5678","clientName":"Tax portal"}]`
	pretty := "{\n  \"hash\": \"h1\",\n  \"hashAlgorithmOID\": \"2.16.840.1.101.3.4.2.1\",\n  \"credentialID\": \"c1\"\n}\n"
	for _, c := range []struct{ file, def, call string }{
		{"../../docs/api.md", helper("../../docs/api.md", "json"), "json %s < %s"},
		{"../../README.md", helper("../../README.md", "field"), "field %s %s"},
		{"../../scripts/walkthrough.sh", helper("../../scripts/walkthrough.sh", "field"), "field %s %s"},
	} {
		// "\n" in a replacement is GNU sed's: BSD sed (macOS) writes an n, and the
		// helper finds nothing. The README asks only for sed.
		if strings.Contains(c.def, `\n`) {
			t.Errorf("%s: the helper needs GNU sed (\\n in a replacement): %s", c.file, c.def)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "sessions.json"), []byte(sessions), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "prepared.json"), []byte(pretty), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct{ name, file, want string }{
			{"session", "sessions.json", "new"},
			{"verificationCode", "sessions.json", "1234"},
			{"hash", "prepared.json", "h1"},
			{"credentialID", "prepared.json", "c1"},
			{"absent", "sessions.json", ""},
		} {
			script := "set -euo pipefail\n" + c.def + "\n" + fmt.Sprintf(c.call, q.name, q.file) + "\n"
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("%s: %s %s: %v", c.file, q.name, q.file, err)
				continue
			}
			if got := strings.TrimSpace(string(out)); got != q.want {
				t.Errorf("%s: member %s of %s = %q, want %q (the first)", c.file, q.name, q.file, got, q.want)
			}
			// The same in a POSIX sh (dash where /bin/sh is dash).
			cmd = exec.Command("sh", "-c", strings.Replace(script, "set -euo pipefail", "set -eu", 1))
			cmd.Dir = dir
			if out, err = cmd.Output(); err != nil || strings.TrimSpace(string(out)) != q.want {
				t.Errorf("%s under sh: member %s of %s = %q (%v), want %q", c.file, q.name, q.file, out, err, q.want)
			}
		}
	}
}
