package main

// Wiring of trusted lists: `thiqa init` makes the list signer's key and
// certificate, `thiqa serve` publishes this deployment's list at
// GET /tsl.xml and keeps the verifier's configured lists fresh.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/tsl"
)

// oidTSLSigning is id-tsl-kp-tslSigning (ETSI TS 119 612 §5.7.1).
var oidTSLSigning = asn1.ObjectIdentifier{0, 4, 0, 2231, 3, 0}

// tslSignerValidity is the lifetime of the list signer's certificate.
const tslSignerValidity = 3 * 365 * 24 * time.Hour

// initTSLSigner makes sure the trusted-list signer key (RSA 3072: what
// every XML-signature implementation verifies) is on the token and has its
// certificate in the data folder. The certificate is self-signed by that
// key: a trusted list's signer is trusted because relying parties configure
// its certificate, as the EU publishes the LOTL signers in the Official
// Journal, not through a CA. What exists is kept.
func initTSLSigner(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	tc := p.cfg.ResolvedTSL()
	key, generated, err := ensureKey(ctx, p.cfg, p.token, tc.SignerKey, hsm.RSA3072)
	if err != nil {
		return err
	}
	if generated {
		if err := auditKeyGenerated(ctx, p.audit, key); err != nil {
			return err
		}
	}
	if cert, err := readTSLSignerCert(tc.SignerCertificate); err == nil {
		if !bytes.Equal(cert.RawSubjectPublicKeyInfo, mustSPKI(key.Public())) {
			return fmt.Errorf("%s holds another key than the trusted-list signer %s on the token (nothing was replaced)", tc.SignerCertificate, key.URI())
		}
		fmt.Fprintf(out, "  trusted-list signer  %s  %s\n", key.URI(), tc.SignerCertificate)
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	org, country := "Thiqa", ""
	if roots, err := readAnchors(caCertPath(p.cfg, p.cfg.CA.Root.Name)); err == nil {
		if o := roots[0].Subject.Organization; len(o) > 0 {
			org = o[0]
		}
		if c := roots[0].Subject.Country; len(c) > 0 {
			country = c[0]
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("serial number: %w", err)
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: tc.Operator + " trusted list signer", Organization: []string{org}},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(tslSignerValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidTSLSigning},
		BasicConstraintsValid: true,
	}
	if country != "" {
		tmpl.Subject.Country = []string{country}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("self-signing the trusted-list signer certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(tc.SignerCertificate), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(tc.SignerCertificate), err)
	}
	if err := writeFileExclusive(tc.SignerCertificate, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tc.SignerCertificate, err)
	}
	fmt.Fprintf(out, "  trusted-list signer  %s  %s\n", key.URI(), tc.SignerCertificate)
	return nil
}

func mustSPKI(pub any) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return der
}

func readTSLSignerCert(path string) (*x509.Certificate, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	certs, err := readAnchors(path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// tslSigner returns the trusted-list signer key and its certificate.
func tslSigner(ctx context.Context, p *platform) (*hsm.Signer, *x509.Certificate, error) {
	tc := p.cfg.ResolvedTSL()
	label, err := keyLabel(p.cfg, tc.SignerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tsl.signerKey: %w", err)
	}
	key, err := p.token.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, nil, fmt.Errorf("the trusted-list signer key %s is not on the token: run `thiqa init --data %s`", tc.SignerKey, p.cfg.Dir())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("trusted-list signer key %s: %w", tc.SignerKey, err)
	}
	cert, err := readTSLSignerCert(tc.SignerCertificate)
	if err != nil {
		return nil, nil, fmt.Errorf("trusted-list signer certificate (run `thiqa init --data %s`): %w", p.cfg.Dir(), err)
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, mustSPKI(key.Public())) {
		return nil, nil, fmt.Errorf("%s does not certify the key %s", tc.SignerCertificate, tc.SignerKey)
	}
	return key, cert, nil
}

// wireTSL serves this deployment's trusted list at GET /tsl.xml (the file
// `thiqa tsl build` wrote; read again when it changes).
func wireTSL(_ context.Context, p *platform, s *serving) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	f := &tslFile{path: p.cfg.ResolvedTSL().File, log: p.logger.With("service", "tsl")}
	s.mux.Handle("GET /tsl.xml", f)
	if _, err := os.Stat(f.path); err != nil {
		f.log.Warn("no trusted list to publish yet: run `thiqa tsl build`", "file", f.path)
	}
	return nil
}

// tslFile serves a file, re-read when its modification time changes.
type tslFile struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	mtime time.Time
	body  []byte
}

func (f *tslFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st, err := os.Stat(f.path)
	if err != nil {
		problem.Error(w, http.StatusNotFound, "no trusted list has been published yet")
		return
	}
	f.mu.Lock()
	if !st.ModTime().Equal(f.mtime) || f.body == nil {
		body, err := os.ReadFile(f.path)
		if err != nil {
			f.mu.Unlock()
			f.log.Error("reading the trusted list", "file", f.path, "error", err)
			problem.Error(w, http.StatusInternalServerError, "the trusted list cannot be read")
			return
		}
		f.body, f.mtime = body, st.ModTime()
	}
	body, mtime := f.body, f.mtime
	f.mu.Unlock()
	w.Header().Set("Content-Type", tsl.MimeTypeTSL)
	http.ServeContent(w, r, "tsl.xml", mtime, bytes.NewReader(body))
}

// serveTrustedLists loads verify.trustedLists for `thiqa serve` and reloads
// them every verify.trustedListRefresh. A list that cannot be loaded at
// start is logged, not fatal: verification runs and says "unknown" until a
// reload succeeds. Nil when none is configured.
func serveTrustedLists(ctx context.Context, p *platform, s *serving, logger *slog.Logger) verify.TrustedLists {
	vc := p.cfg.Verify
	if len(vc.TrustedLists) == 0 {
		return nil
	}
	live := &tsl.Live{}
	timeout := vc.WithDefaults().FetchTimeout * 3
	load := func(ctx context.Context) {
		lists, warnings, err := loadTrustedLists(ctx, p.cfg, nil, nil, false, timeout)
		if err != nil {
			logger.Error("trusted lists not loaded", "error", err)
			return
		}
		for _, w := range warnings {
			logger.Warn("trusted list", "warning", w)
		}
		if t, ok := lists.(*tsl.Trust); ok {
			live.Set(t)
			logger.Info("trusted lists loaded", "lists", len(t.Lists()), "services", t.ServiceCount())
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	load(lctx)
	cancel()
	every := vc.TrustedListRefresh
	if every == 0 {
		every = config.DefaultTrustedListRefresh
	}
	s.background = append(s.background, func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				load(ctx)
			}
		}
	})
	return live
}
