package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/hsm"
)

// TestInitRefusesToJoinAnExistingSoftHSMToken: `thiqa init` on an empty
// folder whose SoftHSM section names a token that exists already (the
// first node's, as on a second node), without that token's PIN file,
// stops before it logs in to the token, says how a node joins (copy the
// folder) and leaves nothing behind; the token still opens with its PIN.
// Seen in a two-node rehearsal: init wrote new PIN files and logged in
// with the new PIN, a failed login counted against the shared token. With
// the PIN from the environment (pinEnv) init goes on to log in as before.
func TestInitRefusesToJoinAnExistingSoftHSMToken(t *testing.T) {
	root := t.TempDir()
	first := filepath.Join(root, "first")
	initData(t, first)
	base := defaultConfig(t)
	write := func(name, conf, tokens string, pinEnv bool) string {
		t.Helper()
		c := strings.Replace(base, "conf: softhsm2.conf", "conf: "+conf, 1)
		c = strings.Replace(c, "tokenDir: tokens", "tokenDir: "+tokens, 1)
		if pinEnv {
			c = strings.Replace(c, `pinEnv: ""`, "pinEnv: THIQA_TEST_JOIN_PIN", 1)
		}
		if c == base {
			t.Fatal("the default configuration has no SoftHSM section to change")
		}
		p := filepath.Join(root, name+".yaml")
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ name, conf, tokens, where string }{
		// the shape docs/operations.md names: absolute conf and tokenDir
		{"shared-conf", filepath.Join(first, "softhsm2.conf"), filepath.Join(first, "tokens"), "SoftHSM configuration"},
		// a configuration of its own, naming the first node's token folder
		{"shared-tokens", "softhsm2.conf", filepath.Join(first, "tokens"), "token folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.name)
			r := thiqa(t, nil, "init", "--data", dir, "--config", write(tc.name, tc.conf, tc.tokens, false))
			if r.code == 0 {
				t.Fatalf("init joined an existing token:\n%s", r.stdout)
			}
			line := errorLine(t, r)
			for _, want := range []string{"thiqa init does not join a cluster", `SoftHSM token "thiqa" exists already`, tc.where,
				filepath.Join(dir, "secrets", "user.pin") + " is missing", "copy the whole data folder of the first node", "nothing was written"} {
				if !strings.Contains(line, want) {
					t.Errorf("error line lacks %q:\n%s", want, line)
				}
			}
			if strings.Contains(r.stderr, "PIN incorrect") {
				t.Errorf("init logged in with a PIN of its own:\n%s", r.stderr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("init left %s behind: %v", dir, err)
			}
		})
	}
	// The first node's token and folder are untouched.
	mustThiqa(t, nil, "keys", "list", "--data", first)

	// With the PIN from the environment init logs in as it did, and stops
	// as docs/operations.md says: the token holds the first node's keys.
	pin, err := os.ReadFile(filepath.Join(first, "secrets", "user.pin"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pin-env")
	cfg := write("pin-env", filepath.Join(first, "softhsm2.conf"), filepath.Join(first, "tokens"), true)
	r := thiqa(t, []string{"THIQA_TEST_JOIN_PIN=" + strings.TrimSpace(string(pin))}, "init", "--data", dir, "--config", cfg)
	if r.code == 0 || strings.Contains(r.stderr, "does not join a cluster") || strings.Contains(r.stderr, "PIN incorrect") ||
		!strings.Contains(errorLine(t, r), "the token holds key") {
		t.Fatalf("init with pinEnv: exit %d\n%s", r.code, r.stderr)
	}
}

// TestInitNewTokenBesideAJoinCheck: the check that init joins no existing
// token lets every new token through. A SoftHSM configuration written
// beforehand that names a token folder not made yet (init makes it; the
// check started SoftHSM on it, which fails without the folder, and init
// stopped with "looking for SoftHSM token") and a token folder that holds
// another label's token (the check lists the slots, finalises the module,
// and init then creates and opens its token in the same process) both end
// in a ready data folder.
func TestInitNewTokenBesideAJoinCheck(t *testing.T) {
	root := t.TempDir()
	base := defaultConfig(t)
	config := func(name, conf, tokens, label string) string {
		t.Helper()
		c := strings.Replace(base, "conf: softhsm2.conf", "conf: "+conf, 1)
		c = strings.Replace(c, "tokenDir: tokens", "tokenDir: "+tokens, 1)
		c = strings.Replace(c, "tokenLabel: thiqa", "tokenLabel: "+label, 1)
		c = strings.ReplaceAll(c, "pkcs11:token=thiqa;", "pkcs11:token="+label+";")
		p := filepath.Join(root, name+".yaml")
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		t.Fatal(err)
	}
	conf, tokens := filepath.Join(etc, "softhsm2.conf"), filepath.Join(root, "tokens")
	if err := os.WriteFile(conf, hsm.SoftHSMConf(tokens, "the operator"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(root, "first")
	mustThiqa(t, nil, "init", "--data", first, "--config", config("first", conf, tokens, "thiqa"))
	mustThiqa(t, nil, "keys", "list", "--data", first)

	second := filepath.Join(root, "second")
	mustThiqa(t, nil, "init", "--data", second, "--config", config("second", conf, tokens, "second"))
	r := mustThiqa(t, nil, "keys", "list", "--data", second)
	if !strings.Contains(r.stdout, "token=second") {
		t.Errorf("keys list of the second folder names no key on token second:\n%s", r.stdout)
	}
}

// TestInitOwnTokenWithoutPINFile: init on a data folder whose own SoftHSM
// token is there but whose user PIN file was lost stops before it logs in,
// as for a node that would join, but says to put the PIN files back from
// the token's backup, not to copy another node's folder over this one.
func TestInitOwnTokenWithoutPINFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	if err := os.Remove(filepath.Join(dir, "secrets", "user.pin")); err != nil {
		t.Fatal(err)
	}
	r := thiqa(t, nil, "init", "--data", dir)
	if r.code == 0 {
		t.Fatalf("init went on without the PIN file:\n%s", r.stdout)
	}
	line := errorLine(t, r)
	for _, want := range []string{"PIN file of this folder's SoftHSM token is lost", "its PIN file " + filepath.Join(dir, "secrets", "user.pin") + " is missing", "Put the PIN files back from the token's backup", "nothing was written"} {
		if !strings.Contains(line, want) {
			t.Errorf("error line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "copy the whole data folder") {
		t.Errorf("init tells to copy another node's folder over this one:\n%s", line)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets", "user.pin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("init wrote a PIN file: %v", err)
	}
}
