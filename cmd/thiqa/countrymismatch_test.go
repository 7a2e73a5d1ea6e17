package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// thiqa.yaml's citizen CA country edited to AE after `thiqa init` made its
// certificate with C=OM: `thiqa config check` still says ok but warns,
// naming the certificate and both countries, and `thiqa serve` starts
// and logs the same at start-up. Neither refuses: the operator's other
// commands (revocation among them) must keep working while it is fixed.
func TestCountryMismatchWarned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustThiqa(t, nil, "init", "--data", dir)
	conf := filepath.Join(dir, "thiqa.yaml")
	if r := mustThiqa(t, nil, "config", "check", "--data", dir); strings.Contains(r.stderr, "warning") {
		t.Fatalf("config check of a fresh folder warns: %s", r.stderr)
	}
	raw := mustRead(t, conf)
	i := strings.Index(raw, "- name: citizen")
	j := strings.Index(raw[max(i, 0):], "country: OM")
	if i < 0 || j < 0 {
		t.Fatalf("no citizen CA country in thiqa.yaml:\n%s", raw)
	}
	j += i
	writeFile(t, conf, raw[:j]+"country: AE"+raw[j+len("country: OM"):])

	r := mustThiqa(t, nil, "config", "check", "--data", dir)
	cert := filepath.Join(dir, "ca", "citizen.pem")
	if r.stdout != conf+": ok\n" || !strings.Contains(r.stderr, "thiqa config: "+conf+": warning: thiqa.yaml gives CA citizen the country AE, but its certificate "+cert+" names C=OM") {
		t.Fatalf("config check: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	srv := startServer(t, dir, nil)
	logs := srv.stderr.String()
	if !strings.Contains(logs, "the country in thiqa.yaml is not the C of the CA's certificate") || !strings.Contains(logs, cert) ||
		!strings.Contains(logs, "AE") {
		t.Fatalf("serve logs no warning of the country:\n%s", logs)
	}
	srv.stop(t)
}
