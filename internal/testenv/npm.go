package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Missing reports a part the test cannot run without: under
// THIQA_TEST_STRICT=1 (set by scripts/testenv.sh, so by `make test` and CI)
// the test fails; otherwise it is skipped.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("THIQA_TEST_STRICT") == "1" {
		t.Fatalf("testenv: "+format, args...)
	}
	t.Skipf("testenv: "+format+" (THIQA_TEST_STRICT=1 makes this a failure)", args...)
}

// NPMPackages installs npm packages (name@version each) from the npm
// registry into a folder kept in the user's cache between runs, and returns
// the folder whose node_modules holds them: run `node` there. A missing
// node or npm, or a failed install, is Missing.
func NPMPackages(t testing.TB, pkgs ...string) string {
	t.Helper()
	node, npm := "node", "npm"
	for _, tool := range []string{node, npm} {
		if _, err := exec.LookPath(tool); err != nil {
			Missing(t, "%s is not installed (apt-get install nodejs npm): %v", tool, err)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(pkgs, " ")))
	base, err := os.UserCacheDir()
	if err != nil {
		base = TempRoot()
	}
	dir := filepath.Join(base, "thiqa-test", "npm-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".thiqa-complete")); err == nil {
		return dir
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, append([]string{"install", "--no-audit", "--no-fund", "--silent", "--prefix", tmp}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		Missing(t, "npm install %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, "node_modules", ".thiqa-complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatalf("testenv: keeping the npm install: %v", err)
	}
	return dir
}
