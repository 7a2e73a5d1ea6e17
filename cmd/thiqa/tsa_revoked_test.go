package main

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// `thiqa revoke` of the TSA unit certificate while the server runs (the
// revocation poller tells the TSA): the server stops signing with it and
// renews the unit with a new key at once, without a restart, and says so
// in its log (timestamp's own tests cover the cluster on SQLite and
// PostgreSQL).
func TestTSAUnitRevokedThroughTheBinary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	unitPath := filepath.Join(dir, "tsa", "unit.pem")
	unitOf := func() *x509.Certificate {
		t.Helper()
		blk, _ := pem.Decode([]byte(mustRead(t, unitPath)))
		if blk == nil {
			t.Fatal("tsa/unit.pem: no PEM block")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := unitOf()
	srv := startServer(t, dir, nil)
	if r := stampAs(t, srv, ""); r.Status.Status != tsp.StatusGranted {
		t.Fatalf("time-stamp before the revocation: %s", r.Status)
	}
	serial := hex.EncodeToString(first.SerialNumber.Bytes())
	mustThiqa(t, nil, "revoke", "--data", dir, "--serial", serial, "--reason", "keyCompromise")
	waitFor(t, 30*time.Second, func() string {
		if unitOf().Equal(first) {
			return "tsa/unit.pem still names the revoked unit"
		}
		if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"tsa":"ok"`) {
			return "not ready with the new unit: " + string(body)
		}
		return ""
	})
	next := unitOf()
	if pub, ok := next.PublicKey.(interface{ Equal(any) bool }); ok && pub.Equal(first.PublicKey) {
		t.Fatal("the new unit has the revoked unit's key")
	}
	if r := stampAs(t, srv, ""); r.Status.Status != tsp.StatusGranted {
		t.Fatalf("time-stamp with the new unit: %s", r.Status)
	}
	srv.stop(t)
	for _, want := range []string{"the TSA unit certificate was revoked", "TSA unit renewed: its certificate was revoked"} {
		if !strings.Contains(srv.stderr.String(), want) {
			t.Errorf("the server log lacks %q", want)
		}
	}
}
