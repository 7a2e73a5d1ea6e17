package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// memStore is an in-memory Store for unit tests.
type memStore struct {
	mu      sync.Mutex
	intents map[string]Intent
	certs   map[string]CertificateRecord
	reqIDs  map[string]string
	byKey   map[string]string // profile + key hash -> serial
	blocked map[[32]byte]*KeyBlock
}

func newMemStore() *memStore {
	return &memStore{intents: map[string]Intent{}, certs: map[string]CertificateRecord{}, reqIDs: map[string]string{}, byKey: map[string]string{}, blocked: map[[32]byte]*KeyBlock{}}
}

func (m *memStore) InsertIntent(_ context.Context, in Intent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.intents[in.Serial]; ok {
		return ErrDuplicateSerial
	}
	if in.RequestID != "" {
		if _, ok := m.reqIDs[in.RequestID]; ok {
			return ErrDuplicateRequest
		}
		m.reqIDs[in.RequestID] = in.Serial
	}
	m.intents[in.Serial] = in
	return nil
}

func (m *memStore) InsertCertificate(_ context.Context, r CertificateRecord, seal audit.Sealer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.intents[r.Serial]; !ok {
		return ErrNotFound
	}
	if seal != nil {
		if _, err := seal.Seal(audit.Head{Hash: audit.GenesisHash()}); err != nil {
			return err // the certificate is stored with its record or not at all
		}
	}
	m.certs[r.Serial] = r
	m.byKey[r.Profile+string(r.KeyHash[:])] = r.Serial
	return nil
}

func (m *memStore) GetCertificate(_ context.Context, serial string) (*CertificateRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.certs[serial]
	if !ok {
		return nil, ErrNotFound
	}
	return &r, nil
}

func (m *memStore) FindIssued(_ context.Context, profile string, keyHash [32]byte, now time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byKey[profile+string(keyHash[:])]
	if r := m.certs[s]; ok && !r.Revoked && now.Before(r.NotAfter) {
		return s, nil
	}
	return "", nil
}

func (m *memStore) KeyBlocked(_ context.Context, keyHash [32]byte) (*KeyBlock, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blocked[keyHash], nil
}

func (m *memStore) counts() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.intents), len(m.certs)
}

type memAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (m *memAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return audit.Record{Seq: int64(len(m.entries))}, nil
}

// Prepare collects the entries when the store seals them.
func (m *memAudit) Prepare(entries ...audit.Entry) (audit.Sealer, error) {
	return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.entries = append(m.entries, entries...)
		return nil, nil
	}), nil
}

func (m *memAudit) last() audit.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[len(m.entries)-1]
}

const testBaseURL = "http://pki.thiqa.test"

// testPKI is a root and the three issuing CAs with in-process keys.
type testPKI struct {
	root      *x509.Certificate
	rootKey   crypto.Signer
	issuers   map[string]*Issuer
	authority *Authority
	store     *memStore
	audit     *memAudit
}

func p384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestPKI(t testing.TB, caKey func(testing.TB) crypto.Signer) *testPKI {
	t.Helper()
	return newTestPKIAt(t, caKey, testBaseURL)
}

// newTestPKIAt is newTestPKI with the public base URL of AIA and CRL URLs.
func newTestPKIAt(t testing.TB, caKey func(testing.TB) crypto.Signer, baseURL string) *testPKI {
	t.Helper()
	rootKey := caKey(t)
	root, err := CreateRoot(rootKey, RootConfig{CommonName: "Thiqa Test Root CA", Organization: "Thiqa Test", Country: "OM", Validity: 20 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pki := &testPKI{root: root, rootKey: rootKey, issuers: map[string]*Issuer{}, store: newMemStore(), audit: &memAudit{}}
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var list []*Issuer
	for _, name := range []string{policies.IssuerCitizen, policies.IssuerOrganisation, policies.IssuerTSA} {
		k := caKey(t)
		c, err := CreateIssuingCA(root, rootKey, k, IssuingCAConfig{
			Name: name, CommonName: "Thiqa Test " + name + " CA", Organization: "Thiqa Test", Country: "OM",
			Validity: 10 * 365 * 24 * time.Hour, BaseURL: baseURL,
			Policies: IssuingCAPolicies(profiles, name),
		})
		if err != nil {
			t.Fatal(err)
		}
		is, err := NewIssuer(c, k, IssuerOptions{Name: name, BaseURL: baseURL})
		if err != nil {
			t.Fatal(err)
		}
		pki.issuers[name] = is
		list = append(list, is)
	}
	pki.authority, err = NewAuthority(AuthorityConfig{Root: root, Issuers: list, Profiles: profiles, Store: pki.store, Auditor: pki.audit})
	if err != nil {
		t.Fatal(err)
	}
	return pki
}

func newCSR(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored CSR subject"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func writePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func subjectFor(profile string) map[string]string {
	switch profile {
	case policies.ProfileCitizenSigning, policies.ProfileCitizenAuth:
		return map[string]string{"givenName": "Aisha", "surname": "Al Balushi", "commonName": "Aisha Al Balushi",
			"civilNumber": "12345678", "country": "OM", "email": "aisha@example.om"}
	case policies.ProfileOrganisationSeal:
		return map[string]string{"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567",
			"commonName": "Ministry of Health e-seal", "country": "OM"}
	default:
		return map[string]string{"commonName": "Thiqa " + profile, "organizationName": "Thiqa Test", "country": "OM"}
	}
}
