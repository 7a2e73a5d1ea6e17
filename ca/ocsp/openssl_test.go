package ocsp

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestOpenSSLClient drives the real openssl ocsp client against the
// responder: good, revoked and unknown, with and without a nonce.
func TestOpenSSLClient(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	p := newPKI(t, "Thiqa Test")
	src := &memStatus{}
	good, revoked, unknown := p.leaf(t, 1001), p.leaf(t, 1002), p.leaf(t, 1003)
	src.set("citizen", 1001, Status{State: Good})
	src.set("citizen", 1002, Status{State: Revoked, RevokedAt: time.Now().Add(-time.Hour), Reason: 1})
	// 1003 was never recorded by the store: unknown.
	reg := prometheus.NewRegistry()
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 7*24*time.Hour)}},
		src, NewCache(0), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PresignAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	dir := t.TempDir()
	issuer := catest.WritePEM(t, dir, "issuer.pem", p.ca)
	root := catest.WritePEM(t, dir, "root.pem", p.root)
	for _, c := range []struct {
		name, want string
		serial     int64
	}{{"good.pem", "good", 1001}, {"revoked.pem", "revoked", 1002}, {"unknown.pem", "unknown", 1003}} {
		leaf := map[int64]string{1001: catest.WritePEM(t, dir, "good.pem", good), 1002: catest.WritePEM(t, dir, "revoked.pem", revoked),
			1003: catest.WritePEM(t, dir, "unknown.pem", unknown)}[c.serial]
		for _, nonce := range []string{"-nonce", "-no_nonce"} {
			before := counter(t, reg, "thiqa_ocsp_responses_total", map[string]string{"status": c.want, "presigned": "true"})
			out, _ := exec.Command(openssl, "ocsp", "-issuer", issuer, "-cert", leaf, "-url", srv.URL+"/ocsp",
				"-CAfile", root, nonce).CombinedOutput()
			s := string(out)
			if !strings.Contains(s, "Response verify OK") || !strings.Contains(s, leaf+": "+c.want) {
				t.Fatalf("%s %s:\n%s", c.name, nonce, s)
			}
			if strings.Contains(s, "WARNING") {
				t.Errorf("%s %s: openssl warns:\n%s", c.name, nonce, s)
			}
			if c.want == "revoked" && !strings.Contains(s, "Reason: keyCompromise") {
				t.Errorf("revoked without reason:\n%s", s)
			}
			after := counter(t, reg, "thiqa_ocsp_responses_total", map[string]string{"status": c.want, "presigned": "true"})
			fromCache := after > before
			if wantCache := nonce == "-no_nonce" && c.want != "unknown"; fromCache != wantCache {
				t.Errorf("%s %s: served from cache %v, want %v", c.name, nonce, fromCache, wantCache)
			}
		}
	}
	// Revocation replaces the pre-signed answer at once.
	src.set("citizen", 1001, Status{State: Revoked, RevokedAt: time.Now().Add(-time.Second), Reason: 4})
	if err := r.Revoked(context.Background(), "citizen", good.SerialNumber); err != nil {
		t.Fatal(err)
	}
	leaf := catest.WritePEM(t, dir, "good.pem", good)
	out, _ := exec.Command(openssl, "ocsp", "-issuer", issuer, "-cert", leaf, "-url", srv.URL+"/ocsp", "-CAfile", root, "-no_nonce").CombinedOutput()
	if s := string(out); !strings.Contains(s, "Response verify OK") || !strings.Contains(s, leaf+": revoked") || !strings.Contains(s, "superseded") {
		t.Fatalf("after revocation:\n%s", s)
	}
	// SHA-256 CertIDs are answered too.
	out, _ = exec.Command(openssl, "ocsp", "-sha256", "-issuer", issuer, "-cert", catest.WritePEM(t, dir, "r.pem", revoked), "-url", srv.URL+"/ocsp",
		"-CAfile", root, "-nonce").CombinedOutput()
	if s := string(out); !strings.Contains(s, "Response verify OK") || !strings.Contains(s, ": revoked") {
		t.Fatalf("sha256 CertID:\n%s", s)
	}
}

// TestOpenSSLForeignCA: a certificate of another CA gets unauthorized.
func TestOpenSSLForeignCA(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	p, other := newPKI(t, "Thiqa"), newPKI(t, "Other")
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}},
		&memStatus{}, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	dir := t.TempDir()
	out, _ := exec.Command(openssl, "ocsp", "-issuer", catest.WritePEM(t, dir, "i.pem", other.ca), "-cert", catest.WritePEM(t, dir, "l.pem", other.leaf(t, 5)),
		"-url", srv.URL+"/ocsp", "-CAfile", catest.WritePEM(t, dir, "r.pem", other.root)).CombinedOutput()
	if !strings.Contains(string(out), "unauthorized") {
		t.Fatalf("foreign CA:\n%s", out)
	}
}
