package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
)

// thiqa.yaml's citizen CA country edited to AE after `thiqa init` made its
// certificate with C=OM: `thiqa config check` still says ok but warns,
// naming the certificate and both countries, and `thiqa serve` starts
// and logs the same at start-up. Neither refuses: the operator's other
// commands (revocation among them) must keep working while it is fixed.
func TestCountryMismatchWarned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
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

// The citizen CA's generations disagree on C (thiqa.yaml's country edited
// before thiqa ca rollover: generation 2 certified with AE, generation 1
// with OM): config check and serve still warn of generation 1, but no
// longer advise making thiqa.yaml's country OM, which would make
// generation 2 disagree; they say the generations disagree and name the
// one that agrees.
func TestCountryMismatchGenerationsDisagree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	conf := filepath.Join(dir, "thiqa.yaml")
	raw := mustRead(t, conf)
	i := strings.Index(raw, "- name: citizen")
	j := strings.Index(raw[max(i, 0):], "country: OM")
	if i < 0 || j < 0 {
		t.Fatalf("no citizen CA country in thiqa.yaml:\n%s", raw)
	}
	j += i
	writeFile(t, conf, raw[:j]+"country: AE"+raw[j+len("country: OM"):])
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Citizen CA G2", Country: []string{"AE"}},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	gen2 := filepath.Join(dir, "ca", "citizen_2.pem")
	writeFile(t, gen2, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))

	r := mustThiqa(t, nil, "config", "check", "--data", dir)
	if !strings.Contains(r.stderr, "names C=OM") || !strings.Contains(r.stderr, "as its certificate(s) "+gen2+" do") ||
		!strings.Contains(r.stderr, "editing thiqa.yaml cannot make them agree") || strings.Contains(r.stderr, "make the CA's country in thiqa.yaml") {
		t.Fatalf("config check: stderr %q", r.stderr)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	warnCountry(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if s := logs.String(); !strings.Contains(s, "the CA's generations disagree") || !strings.Contains(s, "agreeing="+gen2) ||
		strings.Contains(s, "make the CA's country in thiqa.yaml") {
		t.Fatalf("serve's warning:\n%s", s)
	}
}
