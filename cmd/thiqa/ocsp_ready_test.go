package main

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

// `thiqa revoke` of the citizen CA's OCSP responder while the server runs
// and its token is full, so that the renewal fails: /readyz stays 200 (the
// TSA and signing still work on this node) but its "ocsp" entry says the
// responder of CA citizen is revoked, and thiqa_ready_warning{check="ocsp"}
// is 1 for the alert rules. Once the token has room again the retried
// renewal succeeds and "ocsp" says ok again, without a restart.
func TestResponderRevokedReadyzThroughTheBinary(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 8<<20)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(disk.Dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The token folder (hsm.softhsm.tokenDir, "tokens") lives on the small disk.
	if err := os.Symlink(filepath.Join(disk.Dir, "tokens"), filepath.Join(dir, "tokens")); err != nil {
		t.Fatal(err)
	}
	mustThiqa(t, nil, "init", "--data", dir)
	respPath := filepath.Join(dir, "ca", "ocsp-citizen.pem")
	responderOf := func() *x509.Certificate {
		t.Helper()
		blk, _ := pem.Decode([]byte(mustRead(t, respPath)))
		if blk == nil {
			t.Fatal("ocsp-citizen.pem: no PEM block")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := responderOf()
	srv := startServer(t, dir, nil)
	readyz := func() (int, map[string]string) {
		t.Helper()
		code, _, body := srv.get(t, "/readyz", "")
		var entries map[string]string
		if err := json.Unmarshal(body, &entries); err != nil {
			t.Fatalf("/readyz %d %q: %v", code, body, err)
		}
		return code, entries
	}
	warningMetric := func() string {
		t.Helper()
		_, _, body := srv.get(t, "/metrics", "")
		for line := range strings.Lines(string(body)) {
			if strings.HasPrefix(line, `thiqa_ready_warning{check="ocsp"}`) {
				return strings.TrimSpace(line)
			}
		}
		return "no thiqa_ready_warning{check=\"ocsp\"}"
	}
	if code, e := readyz(); code != http.StatusOK || e["ocsp"] != "ok" || e["tsa"] != "ok" {
		t.Fatalf("/readyz before the revocation: %d %v", code, e)
	}
	if m := warningMetric(); m != `thiqa_ready_warning{check="ocsp"} 0` {
		t.Fatalf("before the revocation: %s", m)
	}

	disk.Fill(t) // no room for the new responder key: the renewal fails
	mustThiqa(t, nil, "revoke", "--data", dir, "--serial", hex.EncodeToString(first.SerialNumber.Bytes()), "--reason", "keyCompromise")
	waitFor(t, 30*time.Second, func() string {
		code, e := readyz()
		if code != http.StatusOK || e["tsa"] != "ok" || e["store"] != "ok" {
			t.Fatalf("/readyz while the OCSP responder is revoked: %d %v (want 200: only a warning)", code, e)
		}
		if w := e["ocsp"]; !strings.HasPrefix(w, "warning: CA citizen: the OCSP responder certificate is revoked") ||
			!strings.Contains(w, first.SerialNumber.Text(16)) {
			return "ocsp: " + w
		}
		return ""
	})
	if m := warningMetric(); m != `thiqa_ready_warning{check="ocsp"} 1` {
		t.Fatalf("while the responder is revoked: %s", m)
	}

	disk.Free(t)
	waitFor(t, 60*time.Second, func() string {
		if code, e := readyz(); code != http.StatusOK || e["ocsp"] != "ok" {
			return "not renewed yet: " + e["ocsp"]
		}
		return ""
	})
	if responderOf().Equal(first) {
		t.Fatal("ocsp ok again, but ocsp-citizen.pem still names the revoked responder")
	}
	if m := warningMetric(); m != `thiqa_ready_warning{check="ocsp"} 0` {
		t.Fatalf("after the renewal: %s", m)
	}
}
