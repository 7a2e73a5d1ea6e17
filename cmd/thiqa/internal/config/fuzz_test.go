package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
)

// FuzzParse feeds arbitrary bytes to the strict configuration decoder: it
// must return a configuration that validates, or an error, never panic.
func FuzzParse(f *testing.F) {
	good, err := Default("/data").Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("hsm: {module: x, tokenLabel: t, pinEnv: P}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw, "/data")
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a configuration that does not validate: %v", err)
		}
	})
}

// FuzzSetRootOffline feeds arbitrary thiqa.yaml files to the rewrite that
// takes the root offline (`thiqa ca root retire-online`): it never panics;
// when it refuses, the file is as it was; when it rewrites, the new file
// validates, names the root offline under the same name and configures
// everything else exactly as before; and a second run changes nothing.
func FuzzSetRootOffline(f *testing.F) {
	good, err := Default("/data").Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("# note\n" + strings.Replace(string(good), "  root:\n", "  # the root\n  root: # online\n", 1)))
	f.Add([]byte(strings.Replace(string(good), "ca:\n", "ca: &ca\n", 1) + "x: *ca\n"))
	f.Add([]byte(strings.Replace(string(good), "    name: root\n", "", 1)))
	f.Add([]byte("ca: {root: {name: r}}\n"))
	// An issuing CA that merges the root's settings (a YAML anchor).
	f.Add([]byte(strings.Replace(strings.Replace(string(good), "  root:\n", "  root: &root\n", 1),
		"    - name: citizen\n", "    - <<: *root\n      name: citizen\n", 1)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(Path(dir), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		changed, err := SetRootOffline(dir)
		got, rerr := os.ReadFile(Path(dir))
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil || !changed {
			if !bytes.Equal(got, raw) {
				t.Fatalf("SetRootOffline (%v, %v) changed the file:\n%s", changed, err, got)
			}
			return
		}
		old, err := Parse(raw, dir)
		if err != nil {
			t.Fatalf("rewrote a file that does not parse: %v", err)
		}
		c, err := Parse(got, dir)
		if err != nil {
			t.Fatalf("the rewritten file does not parse: %v\n%s", err, got)
		}
		if !c.CA.Root.Offline || c.CA.Root.Name != old.CA.Root.Name {
			t.Fatalf("root %+v after the rewrite of %+v", c.CA.Root, old.CA.Root)
		}
		c.CA.Root, old.CA.Root = ca.KeyConfig{}, ca.KeyConfig{}
		c.sha256, old.sha256 = "", "" // the files differ: so do their digests
		if !reflect.DeepEqual(c, old) {
			t.Fatalf("the rewrite changed more than ca.root:\n%s\ninto\n%s", raw, got)
		}
		if changed, err := SetRootOffline(dir); err != nil || changed {
			t.Fatalf("second run: %v, %v", changed, err)
		}
	})
}
