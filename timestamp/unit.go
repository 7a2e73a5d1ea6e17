package timestamp

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
)

// Unit is a TSA unit as it lives on disk and on the token: its key and its
// certificate.
type Unit struct {
	Key   UnitKey
	Cert  *x509.Certificate
	Chain []*x509.Certificate // issuing CA first, without the root
}

// UnitKey is a unit key on the token.
type UnitKey struct {
	Signer crypto.Signer
	// Label is the key's label on the token: the unit certificate's
	// credential ID.
	Label string
	// URI is the key's RFC 7512 URI, for records and logs.
	URI string
}

// KeyStore is the token holding the unit keys, as the TSA needs it (the
// token's key ring, hsm/keyring.Ring, is one). The keys it returns sign
// every token: they should be ready to sign all day. A key with a URI
// method (an hsm key) is named by that RFC 7512 URI in records and logs,
// any other by its label.
type KeyStore interface {
	// Labels lists the labels of the private keys on the token.
	Labels(ctx context.Context) ([]string, error)
	// Key returns the key labelled label, or an error wrapping
	// fs.ErrNotExist when the token has none.
	Key(ctx context.Context, label string) (crypto.Signer, error)
	// GenerateKey generates a key labelled label and records its
	// generation in the audit log.
	GenerateKey(ctx context.Context, label string) (crypto.Signer, error)
}

// unitKey is s, the key labelled label, named by its URI when it has one.
func unitKey(label string, s crypto.Signer, err error) (UnitKey, error) {
	if err != nil {
		return UnitKey{}, err
	}
	k := UnitKey{Signer: s, Label: label, URI: label}
	if u, ok := s.(interface{ URI() string }); ok {
		k.URI = u.URI()
	}
	return k, nil
}

// key returns the unit key labelled label (KeyStore.Key).
func (u *Units) key(ctx context.Context, label string) (UnitKey, error) {
	s, err := u.Keys.Key(ctx, label)
	return unitKey(label, s, err)
}

// generateKey generates the unit key labelled label (KeyStore.GenerateKey).
func (u *Units) generateKey(ctx context.Context, label string) (UnitKey, error) {
	s, err := u.Keys.GenerateKey(ctx, label)
	return unitKey(label, s, err)
}

// Certifier is the CA as the TSA needs it: it certifies unit keys
// (ca.UnitCertifier implements it over the CA, which stores and audits
// every certificate it issues).
type Certifier interface {
	// CertifyUnit returns a tsa-unit certificate for the public key pub of
	// the key labelled credentialID, and the certificate of the CA that
	// issued it. A key already certified (an init interrupted after
	// issuance) gets its unexpired certificate back instead of a second
	// one; actor is who asks for a new one.
	CertifyUnit(ctx context.Context, pub crypto.PublicKey, credentialID, actor string) (cert, issuer *x509.Certificate, err error)
}

// Units finds, certifies and renews the TSA's units: the unit certificate
// (unit.pem) and its issuing CA (chain.pem) live in Dir, the unit keys on
// the token, labelled KeyLabel or, once renewed, KeyLabel-<UTC time>.
type Units struct {
	Dir      string
	KeyLabel string
	Keys     KeyStore
	// CA certifies new unit keys; Load does without it.
	CA Certifier

	// mu guards pending.
	mu sync.Mutex
	// pending is the key Renew generated last whose certification failed
	// (the CA down): the next Renew certifies it instead of generating
	// another, so renewals retried every few seconds (a revoked unit)
	// leave at most one unused key on the token.
	pending *UnitKey
}

// UnitPath is where the unit certificate lives (PEM).
func (u *Units) UnitPath() string { return filepath.Join(u.Dir, "unit.pem") }

// ChainPath is where the unit certificate's issuing CA certificate lives
// (PEM).
func (u *Units) ChainPath() string { return filepath.Join(u.Dir, "chain.pem") }

// readCertsPEM reads one or more PEM certificates.
func readCertsPEM(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, raw = pem.Decode(raw)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: unexpected PEM block %q", path, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 || strings.TrimSpace(string(raw)) != "" {
		return nil, fmt.Errorf("%s: want PEM certificates only", path)
	}
	return out, nil
}

// Load reads the unit certificate and chain and finds the key on the token
// whose public key the certificate carries: KeyLabel or one of its
// renewals. It returns an error wrapping fs.ErrNotExist when there is no
// unit certificate yet.
func (u *Units) Load(ctx context.Context) (*Unit, error) {
	certs, err := readCertsPEM(u.UnitPath())
	if err != nil {
		return nil, fmt.Errorf("TSA unit certificate: %w", err)
	}
	chain, err := readCertsPEM(u.ChainPath())
	if err != nil {
		return nil, fmt.Errorf("TSA unit chain: %w", err)
	}
	key, err := u.findKey(ctx, certs[0])
	if err != nil {
		return nil, err
	}
	if key != nil {
		return &Unit{Key: *key, Cert: certs[0], Chain: chain}, nil
	}
	return nil, fmt.Errorf("the token holds no key %s (or renewal of it) matching %s", u.KeyLabel, u.UnitPath())
}

// Init makes sure there is a unit: the one in Dir, or else the key
// KeyLabel (generated when the token has none) certified by the CA. What
// exists is kept.
func (u *Units) Init(ctx context.Context, actor string) (*Unit, error) {
	unit, err := u.Load(ctx)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return unit, err
	}
	key, err := u.key(ctx, u.KeyLabel)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = u.generateKey(ctx, u.KeyLabel)
	}
	if err != nil {
		return nil, fmt.Errorf("TSA unit key %s: %w", u.KeyLabel, err)
	}
	return u.Certify(ctx, key, actor)
}

// Certify has the CA certify key and writes chain.pem and unit.pem.
func (u *Units) Certify(ctx context.Context, key UnitKey, actor string) (*Unit, error) {
	cert, issuer, err := u.CA.CertifyUnit(ctx, key.Signer.Public(), key.Label, actor)
	if err != nil {
		return nil, fmt.Errorf("certifying the TSA unit key %s: %w", key.Label, err)
	}
	unit := &Unit{Key: key, Cert: cert, Chain: []*x509.Certificate{issuer}}
	if err := u.write(unit); err != nil {
		return nil, err
	}
	return unit, nil
}

// write writes unit's chain.pem and unit.pem.
func (u *Units) write(unit *Unit) error {
	if err := os.MkdirAll(u.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the TSA certificate folder: %w", err)
	}
	var chain []byte
	for _, c := range unit.Chain {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	// The unit replaced is kept: after a restart while the clock is before
	// the new one's notBefore, it signs (LoadPrevious).
	if err := u.keepPrevious(unit.Cert); err != nil {
		return err
	}
	// The chain first, so that unit.pem never names an issuer chain.pem lacks.
	if err := atomicfile.Write(u.ChainPath(), chain, 0o644); err != nil {
		return err
	}
	return atomicfile.Write(u.UnitPath(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: unit.Cert.Raw}), 0o644)
}

// Adopt takes over the unit another instance of the TSA renewed: it finds
// the key labelled r.KeyLabel on the token, checks that it is the key
// r.Cert certifies, and brings chain.pem and unit.pem up to date, unless
// unit.pem names that unit already or one that expires later (the files
// never go back to an older unit).
func (u *Units) Adopt(ctx context.Context, r RenewedUnit) (*Unit, error) {
	cert, err := x509.ParseCertificate(r.Cert)
	if err != nil {
		return nil, fmt.Errorf("the renewed TSA unit certificate: %w", err)
	}
	chain, err := x509.ParseCertificates(r.Chain)
	if err != nil {
		return nil, fmt.Errorf("the renewed TSA unit chain: %w", err)
	}
	if len(chain) == 0 {
		return nil, errors.New("the renewed TSA unit chain is empty")
	}
	key, err := u.key(ctx, r.KeyLabel)
	if err != nil {
		return nil, fmt.Errorf("finding the renewed TSA unit key %q: %w", r.KeyLabel, err)
	}
	if pub, ok := key.Signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the key %q on the token is not the one the renewed TSA unit certificate certifies", r.KeyLabel)
	}
	unit := &Unit{Key: key, Cert: cert, Chain: chain}
	if cur, err := readCertsPEM(u.UnitPath()); err == nil && (cur[0].Equal(cert) || cur[0].NotAfter.After(cert.NotAfter)) {
		return unit, nil
	}
	if err := u.write(unit); err != nil {
		return nil, err
	}
	return unit, nil
}

// Renew generates a new unit key (labelled KeyLabel-<now, UTC>) and has it
// certified. EN 319 421 §7.6: a unit key must not sign beyond its
// certificate's validity, so renewal is a new key certified afresh, never
// the old key re-certified.
//
// A key whose certification failed is certified by the next Renew (it
// never signed: it is as new), not left on the token for another.
func (u *Units) Renew(ctx context.Context, now time.Time, actor string) (*Unit, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key := u.pending
	if key == nil {
		label := u.KeyLabel + "-" + now.UTC().Format("20060102T150405.000Z")
		k, err := u.generateKey(ctx, label)
		if err != nil {
			return nil, fmt.Errorf("generating the new unit key: %w", err)
		}
		key = &k
	}
	unit, err := u.Certify(ctx, *key, actor)
	if err != nil {
		u.pending = key
		return nil, err
	}
	u.pending = nil
	return unit, nil
}
