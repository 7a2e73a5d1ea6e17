package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/hsm"
)

// Set-up that many tests share, done once per test binary: `thiqa init`
// generates a dozen keys on SoftHSM (two of them RSA-3072) and takes
// seconds, which the tests would otherwise pay again and again.

// defaultConfig returns the thiqa.yaml `thiqa init` writes into a fresh
// folder: the template's (see initData). It depends on neither the
// folder nor the environment (the default configuration is a constant of
// the binary), so one init per test binary stands for all.
func defaultConfig(t *testing.T) string {
	t.Helper()
	return mustRead(t, filepath.Join(templateDir(t), "thiqa.yaml"))
}

// initTemplate is a data folder made by a plain `thiqa init --data`
// (SQLite, the default configuration), made once per test binary in a
// folder removed when the tests end (TestMain).
var initTemplate struct {
	mu  sync.Mutex
	dir string
}

// initData gives dir, which must not exist, what `thiqa init --data dir`
// makes: a copy of the template data folder with its own copy of the
// SoftHSM token (its softhsm2.conf rewritten to name the copy, so no two
// folders share a token). The copy is the same deployment as the template
// (the same keys, certificates and deployment ID) and its audit log
// names the template's folder, so a test that needs two deployments, or
// proves what `thiqa init` itself does, runs `thiqa init` instead.
func initData(t *testing.T, dir string) {
	t.Helper()
	tmpl := templateDir(t)
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("initData: %s exists", dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	// cp -a keeps the modes (secrets 0600, the token folder 0700).
	if out, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the template data folder: %v\n%s", err, out)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, hsm.SoftHSMConf(filepath.Join(dir, "tokens"), "thiqa init"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// templateDir returns the template data folder, made by the first caller.
// Nothing writes to it after that.
func templateDir(t *testing.T) string {
	t.Helper()
	initTemplate.mu.Lock()
	defer initTemplate.mu.Unlock()
	if initTemplate.dir == "" {
		tmpl := filepath.Join(binDir, "template")
		mustThiqa(t, nil, "init", "--data", tmpl)
		initTemplate.dir = tmpl
	}
	return initTemplate.dir
}
