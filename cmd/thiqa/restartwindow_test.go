package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// renewAhead renews, in process, the TSA unit and the citizen OCSP
// responder of the data folder dir with a CA whose clock is ahead by
// ahead (as a node whose clock ran ahead would), and returns the unit and
// responder certificates they replaced and the new ones.
func renewAhead(t *testing.T, dir string, ahead time.Duration) (oldUnit, newUnit, oldResp, newResp *x509.Certificate) {
	t.Helper()
	ctx := t.Context()
	cfg, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, closeAll, err := openPlatform(ctx, cfg, slog.New(slog.DiscardHandler), nil, openToken)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	h, err := hierarchyConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := hierarchy.OpenAuthority(ctx, h, keyring.CAToken{Token: p.token}, ca.IssuerOptions{}, ca.AuthorityConfig{
		Store: p.db.Certificates(nil), Auditor: p.audit, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Now().Add(ahead) },
	})
	if err != nil {
		t.Fatal(err)
	}
	certifier := &ca.UnitCertifier{Open: func(_ context.Context) (*ca.Authority, error) { return a, nil },
		CA: cfg.TSA.CAOrDefault(), Subject: cfg.TSA.UnitSubject()}
	units, err := tsaUnits(cfg, keyring.Ring{Token: p.token, Audit: p.audit}, certifier)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := units.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next, err := units.Renew(ctx, time.Now().Add(ahead), "thiqa-serve")
	if err != nil {
		t.Fatal(err)
	}
	set, err := cfg.Revocation.Settings(cfg.PublicBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	kt, err := hsm.ParseKeyType(set.ResponderKeyType)
	if err != nil {
		t.Fatal(err)
	}
	rp := revocation.NewResponders(revocation.ResponderOptions{
		Dir: cfg.Resolve(cfg.CA.CertDir), Keys: keyring.Ring{Token: p.token, KeyType: kt, Audit: p.audit},
		CA: ca.Generations{Authority: a}, Actor: "thiqa-serve", Renewals: p.db.OCSPResponderRenewals(), Audit: p.audit,
	})
	respPath, _ := rp.Paths("citizen")
	oldResp = readCertFile(t, respPath)
	rn, err := rp.RenewResponder(ctx, "citizen", oldResp)
	if err != nil || rn.Responder.Cert == nil {
		t.Fatalf("renewing the citizen responder: %v", err)
	}
	return cur.Cert, next.Cert, oldResp, rn.Responder.Cert
}

// readCertFile reads the one PEM certificate of path.
func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode([]byte(mustRead(t, path)))
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServeRestartBeforeRenewedValid: `thiqa serve` restarted right after
// the TSA unit and an OCSP responder were renewed by a CA whose clock ran
// a few minutes ahead (so the clock is before the new certificates'
// notBefore) starts, is ready (/readyz tsa ok), time-stamps with the unit
// the renewal replaced and answers OCSP with the responder it replaced.
func TestServeRestartBeforeRenewedValid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustThiqa(t, nil, "init", "--data", dir)
	oldUnit, newUnit, oldResp, newResp := renewAhead(t, dir, 3*time.Minute)
	if now := time.Now(); !now.Before(newUnit.NotBefore) || !now.Before(newResp.NotBefore) {
		t.Fatalf("the renewed certificates are valid from %s and %s: no window to test", newUnit.NotBefore, newResp.NotBefore)
	}
	srv := startServer(t, dir, nil)
	if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"tsa":"ok"`) {
		t.Fatalf("/readyz: %d %s\n%s", code, body, srv.stderr.String())
	}
	r := stampAs(t, srv, "")
	if r.Status.Status != tsp.StatusGranted {
		t.Fatalf("time-stamp: %s", r.Status)
	}
	tok, err := tsp.ParseToken(r.Token)
	if err != nil || len(tok.Certificates) == 0 {
		t.Fatalf("token: %v", err)
	}
	var signer *x509.Certificate
	for _, raw := range tok.Certificates {
		if c, err := x509.ParseCertificate(raw); err == nil && !c.IsCA {
			signer = c
		}
	}
	if signer == nil || !signer.Equal(oldUnit) {
		t.Fatalf("the time-stamp is not signed by the unit the renewal replaced\n%s", srv.stderr.String())
	}

	citizen := readCertFile(t, filepath.Join(dir, "ca", "citizen.pem"))
	req, err := ocsp.NewRequest(citizen, big.NewInt(424242), crypto.SHA256, []byte("restart-window-01"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.base+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	parsed, err := xocsp.ParseResponse(der, citizen)
	if err != nil || parsed.Certificate == nil || !parsed.Certificate.Equal(oldResp) {
		t.Fatalf("OCSP answer not signed by the responder the renewal replaced: %v\n%s", err, srv.stderr.String())
	}
	srv.stop(t)
}
