package config

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
)

func TestCeremonyRoundTripsAndRejects(t *testing.T) {
	dir := t.TempDir()
	good, err := DefaultCeremony(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCeremony(good, dir)
	if err != nil || c.HSM.SoftHSM == nil || c.Resolve(c.HSM.PINFile) != dir+"/secrets/user.pin" {
		t.Fatalf("default ceremony configuration: %v\n%s", err, good)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", string(good) + "bogus: 1\n", "field bogus not found"},
		{"https base URL", strings.Replace(string(good), "publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: https://pki.example.om", 1), "publicBaseURL"},
		{"trailing slash", strings.Replace(string(good), "publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: http://pki.example.om/", 1), "publicBaseURL"},
		{"root key not a URI", strings.Replace(string(good), "rootKey: pkcs11:token=thiqa-root;object=root-ca", "rootKey: root-ca", 1), "rootKey"},
		{"no PIN source", strings.Replace(string(good), "pinFile: secrets/user.pin", "pinFile: \"\"", 1), "pinFile or pinEnv"},
		{"bad policy OID", string(good) + "profiles:\n  caPolicyOID: not-an-oid\n", "profiles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCeremony([]byte(tc.yaml), dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestOfflineRoot(t *testing.T) {
	dir := t.TempDir()
	c := Default(dir)
	c.CA.Root = ca.KeyConfig{Name: "root", Offline: true}
	raw, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(raw, dir)
	if err != nil || !back.CA.Enabled() || !back.CA.Root.Offline {
		t.Fatalf("offline root: %v\n%s", err, raw)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"offline root with a key", "key: \"\"", "key: pkcs11:token=thiqa;object=root-ca", "ca.root.key"},
		{"issuer named like a generation", "name: citizen\n", "name: citizen_2\n", "generations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(string(raw), tc.from, tc.to, 1)
			if y == string(raw) {
				t.Fatalf("no %q in\n%s", tc.from, raw)
			}
			if _, err := Parse([]byte(y), dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
