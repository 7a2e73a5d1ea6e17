package hierarchy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// memKey is a key of memToken.
type memKey struct {
	*ecdsa.PrivateKey
	uri string
}

func (k memKey) URI() string { return k.uri }

// memToken is a token in memory (Token).
type memToken struct{ keys map[string]memKey }

func (t *memToken) FindKey(_ context.Context, label string) (Key, error) {
	if k, ok := t.keys[label]; ok {
		return k, nil
	}
	return nil, ErrKeyNotFound
}

func (t *memToken) GenerateKey(_ context.Context, label, _ string) (Key, error) {
	if _, ok := t.keys[label]; ok {
		return nil, errors.New("exists")
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	t.keys[label] = memKey{k, "pkcs11:token=t;object=" + label}
	return t.keys[label], nil
}

func (t *memToken) Keys(context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	for _, k := range t.keys {
		out = append(out, KeyInfo{URI: k.uri, Public: k.Public()})
	}
	return out, nil
}

// memAudit collects the entries (Auditor).
type memAudit struct{ actions []string }

func (a *memAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	a.actions = append(a.actions, e.Action)
	return audit.Record{}, nil
}

// Prepare collects the entries when they are sealed (ca.Auditor).
func (a *memAudit) Prepare(entries ...audit.Entry) (audit.Sealer, error) {
	return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) {
		for _, e := range entries {
			a.actions = append(a.actions, e.Action)
		}
		return nil, nil
	}), nil
}

func testConfig(dir string) Config {
	ca := func(name string) CA {
		return CA{Name: name, Key: "pkcs11:token=t;object=" + name + "-ca", KeyLabel: name + "-ca", KeyType: "ec-p256",
			CommonName: "Test " + name, Organization: "Thiqa", Country: "OM", Validity: "3650d"}
	}
	return Config{Dir: dir, CertDir: dir + "/ca", Root: ca("root"), Issuers: []CA{ca("citizen")}, BaseURL: "http://thiqa.example"}
}

// TestInitFindAndIdentity: Init creates the development hierarchy once,
// Find and Issuing read it back, the identity is the root's fingerprint;
// a certificate gone from the folder stops Init with nothing replaced.
func TestInitFindAndIdentity(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t.TempDir())
	tok, log := &memToken{keys: map[string]memKey{}}, &memAudit{}
	if err := Init(ctx, c, tok, log, io.Discard); err != nil {
		t.Fatal(err)
	}
	if len(tok.keys) != 2 || strings.Join(log.actions, ",") != "ca.certificate.create,ca.certificate.create" {
		t.Fatalf("keys %d, audit %v", len(tok.keys), log.actions)
	}
	if err := Init(ctx, c, tok, log, io.Discard); err != nil || len(log.actions) != 2 {
		t.Fatalf("second Init: %v, audit %v", err, log.actions)
	}
	parts, err := Find(ctx, c, tok)
	if err != nil || len(parts) != 2 || parts[1].Cert.CheckSignatureFrom(parts[0].Cert) != nil {
		t.Fatalf("Find: %v %v", parts, err)
	}
	active, err := Issuing(c, parts)
	if err != nil || len(active) != 1 || active[0].CA() != "citizen" || active[0].Generation() != 1 {
		t.Fatalf("Issuing: %v %v", active, err)
	}
	id, err := ReadIdentity(CertPath(c.CertDir, "root"))
	if err != nil || len(id.RootSHA256) != 64 {
		t.Fatalf("identity: %v %v", id, err)
	}
	if err := id.Mismatch("00", time.Now()); !errors.Is(err, ErrDeploymentMismatch) {
		t.Fatalf("Mismatch: %v", err)
	}
	if err := os.Remove(parts[1].Path); err != nil {
		t.Fatal(err)
	}
	if err := Init(ctx, c, tok, log, io.Discard); err == nil || !strings.Contains(err.Error(), "nothing was created or replaced") {
		t.Fatalf("Init with a key but no certificate: %v", err)
	}
}

// TestOfflineRootPending: with an offline root, InitOffline gives the
// issuing CA a key and a CSR and says it is pending; Issuing refuses to
// serve until its certificate is imported.
func TestOfflineRootPending(t *testing.T) {
	ctx := context.Background()
	dev := testConfig(t.TempDir())
	devTok := &memToken{keys: map[string]memKey{}}
	if err := Init(ctx, dev, devTok, &memAudit{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	parts, _ := Find(ctx, dev, devTok)
	c := testConfig(t.TempDir())
	c.RootOffline, c.Root.Key, c.Root.KeyLabel = true, "", ""
	if _, err := InstallRoot(c, parts[0].Cert); err != nil {
		t.Fatal(err)
	}
	tok := &memToken{keys: map[string]memKey{}}
	err := Init(ctx, c, tok, &memAudit{}, io.Discard)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("InitOffline: %v", err)
	}
	if _, err := os.Stat(c.CertDir + "/citizen.csr"); err != nil {
		t.Fatal(err)
	}
	all, err := Find(ctx, c, tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Issuing(c, all); err == nil || !strings.Contains(err.Error(), "thiqa ca import") {
		t.Fatalf("Issuing while pending: %v", err)
	}
}

// FromConfig describes the section's CAs with their key labels; an
// offline root names no key, and a key the token cannot name stops it.
func TestFromConfig(t *testing.T) {
	c := ca.DefaultConfig()
	label := func(uri string) (string, error) {
		_, obj, ok := strings.Cut(uri, "object=")
		if !ok {
			return "", errors.New("no object")
		}
		return obj, nil
	}
	h, err := FromConfig(c, "/data", "/data/ca", "https://thiqa.example", label)
	if err != nil {
		t.Fatal(err)
	}
	if h.Root.KeyLabel != "root-ca" || h.Root.KeyType != "ec-p384" || len(h.Issuers) != 3 || h.Issuers[0].KeyLabel != "citizen-ca" ||
		h.CertDir != "/data/ca" || h.BaseURL != "https://thiqa.example" || h.RootOffline || h.Country != "OM" {
		t.Fatalf("FromConfig: %+v", h)
	}
	c.Root = ca.KeyConfig{Name: "root", Offline: true}
	if h, err = FromConfig(c, "/data", "/data/ca", "", label); err != nil || !h.RootOffline || h.Root.KeyLabel != "" {
		t.Fatalf("FromConfig with an offline root: %+v, %v", h, err)
	}
	c.Issuers[1].Key = "pkcs11:token=thiqa"
	if _, err := FromConfig(c, "/data", "/data/ca", "", label); err == nil || !strings.Contains(err.Error(), "CA organisation") {
		t.Fatalf("FromConfig with a key without a label: %v", err)
	}
}

// TestOpenAuthority: the issuance service over a hierarchy issues from
// the issuers Init made, under its root, with the default profiles; the
// profiles' settings are checked before the token is asked.
func TestOpenAuthority(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t.TempDir())
	tok, log := &memToken{keys: map[string]memKey{}}, &memAudit{}
	if err := Init(ctx, c, tok, log, io.Discard); err != nil {
		t.Fatal(err)
	}
	parts, err := Find(ctx, c, tok)
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenAuthority(ctx, c, tok, ca.IssuerOptions{}, ca.AuthorityConfig{Store: struct{ ca.Store }{}, Auditor: log})
	if err != nil {
		t.Fatal(err)
	}
	if root, ok := a.CACertificate("root"); !ok || !root.Equal(parts[0].Cert) {
		t.Fatal("the authority's root is not the hierarchy's")
	}
	if cur, ok := a.CurrentCACertificate("citizen"); !ok || !cur.Equal(parts[1].Cert) {
		t.Fatal("the authority's citizen CA is not the hierarchy's")
	}
	if err := a.CheckRequest(ca.Request{Profile: "no-such-profile"}); !errors.Is(err, policies.ErrUnknownProfile) {
		t.Fatalf("unknown profile: %v", err)
	}
	// The deployment's country: a citizen of another is refused, unless
	// ca.profiles.countries lists it; none known, any.
	foreign := map[string]string{"givenName": "A", "surname": "B", "commonName": "A B", "civilNumber": "12345678", "country": "AE"}
	citizenAuth := ca.Request{Profile: policies.ProfileCitizenAuth, Subject: foreign}
	var se *policies.SubjectError
	c.Country = "OM"
	if a, err = OpenAuthority(ctx, c, tok, ca.IssuerOptions{}, ca.AuthorityConfig{Store: struct{ ca.Store }{}, Auditor: log}); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckRequest(citizenAuth); !errors.As(err, &se) || se.Field != "country" || !strings.Contains(se.Reason, "OM only") {
		t.Fatalf("citizen of AE in an OM deployment: %v", err)
	}
	c.Profiles.Countries = map[string][]string{policies.ProfileCitizenAuth: {"OM", "AE"}}
	if a, err = OpenAuthority(ctx, c, tok, ca.IssuerOptions{}, ca.AuthorityConfig{Store: struct{ ca.Store }{}, Auditor: log}); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckRequest(citizenAuth); err != nil {
		t.Fatalf("citizen of AE, ca.profiles.countries listing AE: %v", err)
	}
	c.Country, c.Profiles.Countries = "", nil
	if a, err = OpenAuthority(ctx, c, tok, ca.IssuerOptions{}, ca.AuthorityConfig{Store: struct{ ca.Store }{}, Auditor: log}); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckRequest(citizenAuth); err != nil {
		t.Fatalf("citizen of AE, no country known: %v", err)
	}
	c.Profiles.CryptoPeriods = map[string]string{"no-such-profile": "365d"}
	if _, err := OpenAuthority(ctx, c, &memToken{}, ca.IssuerOptions{}, ca.AuthorityConfig{}); !errors.Is(err, policies.ErrUnknownProfile) {
		t.Fatalf("a crypto-period of an unknown profile: %v", err)
	}
}
