// Package catest builds throwaway CA hierarchies for the tests of the
// services that need a CA (revocation, the TSA): a root and the issuing
// CAs of the default profiles with in-process keys, and an Authority that
// issues into the store the test gives it.
package catest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// PKI is a CA hierarchy and the Authority issuing under it.
type PKI struct {
	Root *x509.Certificate
	// CAs are the issuing CAs' certificates and Keys their keys (and the
	// root's, "root"), by name: citizen, organisation, tsa.
	CAs       map[string]*x509.Certificate
	Keys      map[string]crypto.Signer
	Authority *ca.Authority
	// skew moves the Authority's clock (Skew).
	skew atomic.Int64
	// crlNumber numbers the root CRLs of RevokeCA.
	crlNumber atomic.Int64
	// What New built the Authority from, for Rollover.
	issuers  []*ca.Issuer
	profiles *policies.ProfileSet
	store    ca.Store
	log      *audit.Log
	baseURL  string
}

// RevokeCA has the root revoke issuing CA name (keyCompromise) on a new
// root CRL and the Authority apply it (ca.Authority.ApplyRootCRL): from
// then on it refuses every issuance from that CA with ca.ErrIssuerRevoked.
func (p *PKI) RevokeCA(t testing.TB, name string) {
	t.Helper()
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(p.crlNumber.Add(1)), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(30 * 24 * time.Hour), RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: p.CAs[name].SerialNumber, RevocationTime: now.Add(-time.Minute), ReasonCode: 1}}}, p.Root, p.Keys["root"])
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Authority.ApplyRootCRL(t.Context(), rl); err != nil {
		t.Fatal(err)
	}
}

// Skew moves the Authority's clock d away from the real one (0: back to
// it), to issue as if at another time: near the end of an issuing CA's
// validity, say.
func (p *PKI) Skew(d time.Duration) { p.skew.Store(int64(d)) }

// New builds the hierarchy under baseURL (the URL of CRLs and CA
// certificates in what it issues) and an Authority over st that records in
// log.
func New(t testing.TB, st ca.Store, log *audit.Log, baseURL string) *PKI {
	t.Helper()
	newKey := func() crypto.Signer {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	p := &PKI{CAs: map[string]*x509.Certificate{}, Keys: map[string]crypto.Signer{"root": newKey()}}
	var err error
	p.Root, err = ca.CreateRoot(p.Keys["root"], ca.RootConfig{CommonName: "Thiqa Test Root CA", Organization: "Thiqa Test", Country: "OM", Validity: 20 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var issuers []*ca.Issuer
	for _, name := range []string{policies.IssuerCitizen, policies.IssuerOrganisation, policies.IssuerTSA} {
		p.Keys[name] = newKey()
		p.CAs[name], err = ca.CreateIssuingCA(p.Root, p.Keys["root"], p.Keys[name], ca.IssuingCAConfig{
			Name: name, CommonName: "Thiqa Test " + name + " CA", Organization: "Thiqa Test", Country: "OM",
			Validity: 10 * 365 * 24 * time.Hour, BaseURL: baseURL, Policies: ca.IssuingCAPolicies(profiles, name),
		})
		if err != nil {
			t.Fatal(err)
		}
		is, err := ca.NewIssuer(p.CAs[name], p.Keys[name], ca.IssuerOptions{Name: name, BaseURL: baseURL})
		if err != nil {
			t.Fatal(err)
		}
		issuers = append(issuers, is)
	}
	p.issuers, p.profiles, p.store, p.log, p.baseURL = issuers, profiles, st, log, baseURL
	p.Authority, err = ca.NewAuthority(ca.AuthorityConfig{Root: p.Root, Issuers: issuers, Profiles: profiles, Store: st, Auditor: log,
		Now: func() time.Time { return time.Now().Add(time.Duration(p.skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Rollover gives issuing CA name a new generation (a new key certified by
// the root, the same subject, issuer name NAME_N), as `thiqa ca rollover`, the ceremony and
// `thiqa ca import` do, and replaces Authority with one that issues from
// it and shares the old one's revoked issuing CAs (ca.RevokedIssuers). It
// returns the new generation's certificate (also CAs[NAME_N]). Those who
// hold the old Authority keep issuing from the old generation.
func (p *PKI) Rollover(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	gen := 2
	for _, is := range p.issuers {
		if is.CA() == name && is.Generation() >= gen {
			gen = is.Generation() + 1
		}
	}
	issuerName := fmt.Sprintf("%s_%d", name, gen)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.CreateIssuingCA(p.Root, p.Keys["root"], key, ca.IssuingCAConfig{
		Name: issuerName, CommonName: "Thiqa Test " + name + " CA", Organization: "Thiqa Test", Country: "OM",
		Validity: 10 * 365 * 24 * time.Hour, BaseURL: p.baseURL, Policies: ca.IssuingCAPolicies(p.profiles, name),
	})
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.NewIssuer(cert, key, ca.IssuerOptions{Name: issuerName, CA: name, Generation: gen, BaseURL: p.baseURL})
	if err != nil {
		t.Fatal(err)
	}
	p.CAs[issuerName], p.Keys[issuerName] = cert, key
	p.issuers = append(p.issuers, is)
	p.Authority, err = ca.NewAuthority(ca.AuthorityConfig{Root: p.Root, Issuers: p.issuers, Profiles: p.profiles, Store: p.store, Auditor: p.log,
		Revoked: p.Authority.Revoked(), Now: func() time.Time { return time.Now().Add(time.Duration(p.skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// WritePEM writes certs, PEM-encoded, to dir/name and returns its path.
func WritePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
