package main

import (
	"context"
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
