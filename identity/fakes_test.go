package identity

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// memStore is an in-memory Store for unit tests.
type memStore struct {
	mu      sync.Mutex
	clients map[string]*Client
	logins  map[string]Login
	grants  map[string]Grant
	byCode  map[string]string
	jtis    map[string]time.Time
	blocks  map[[2]string]time.Time // civil number, client key: until
}

func newMemStore() *memStore {
	return &memStore{clients: map[string]*Client{}, logins: map[string]Login{}, grants: map[string]Grant{}, byCode: map[string]string{}, jtis: map[string]time.Time{}, blocks: map[[2]string]time.Time{}}
}

func (s *memStore) Client(_ context.Context, id string) (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, ErrNotFound
	}
	cc := *c
	return &cc, nil
}

func (s *memStore) CreateLogin(_ context.Context, l *Login) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.logins[l.ID]; ok {
		return ErrConflict
	}
	s.logins[l.ID] = *l
	return nil
}

func (s *memStore) Login(_ context.Context, id string) (*Login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logins[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &l, nil
}

func (s *memStore) UpdateLogin(_ context.Context, l *Login, from LoginState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.logins[l.ID]
	if !ok {
		return ErrNotFound
	}
	if cur.State != from {
		return ErrConflict
	}
	s.logins[l.ID] = *l
	return nil
}

func (s *memStore) PendingLogins(_ context.Context, civil string, now time.Time) ([]*Login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Login
	for _, l := range s.logins {
		if l.CivilNumber == civil && l.State == LoginPending && now.Before(l.Expires) {
			ll := l
			out = append(out, &ll)
		}
	}
	// As the real store: the newest first, at most MaxPendingListed.
	slices.SortFunc(out, func(a, b *Login) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(out) > MaxPendingListed {
		out = out[:MaxPendingListed]
	}
	return out, nil
}

func (s *memStore) CountPendingLogins(_ context.Context, civil, clientKey string, now time.Time) (PendingCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c PendingCount
	for _, l := range s.logins {
		if l.CivilNumber == civil && l.State == LoginPending && now.Before(l.Expires) {
			c.Total++
			if l.ClientKey == clientKey {
				c.FromClient++
			}
		}
	}
	c.Blocked = now.Before(s.blocks[[2]string{civil, clientKey}])
	return c, nil
}

func (s *memStore) BlockLoginStarts(_ context.Context, civil string, clientKeys []string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range clientKeys {
		if until.After(s.blocks[[2]string{civil, k}]) {
			s.blocks[[2]string{civil, k}] = until
		}
	}
	return nil
}

func (s *memStore) CreateGrant(_ context.Context, g *Grant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[g.ID] = *g
	s.byCode[hex.EncodeToString(g.CodeHash)] = g.ID
	return nil
}

func (s *memStore) RedeemCode(_ context.Context, h []byte, now, accessExp time.Time) (*Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byCode[hex.EncodeToString(h)]
	if !ok {
		return nil, ErrNotFound
	}
	g := s.grants[id]
	before := g
	if g.Redeemed {
		g.Revoked = true
		s.grants[id] = g
		return &before, ErrCodeReused
	}
	g.Redeemed, g.AccessExpires = true, accessExp
	s.grants[id] = g
	return &before, nil
}

func (s *memStore) RevokeGrant(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	if !ok {
		return ErrNotFound
	}
	g.Revoked = true
	s.grants[id] = g
	return nil
}

func (s *memStore) Grant(_ context.Context, id string) (*Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &g, nil
}

func (s *memStore) UseAssertion(_ context.Context, clientID, jti string, exp time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := clientID + "\x00" + jti
	if _, ok := s.jtis[k]; ok {
		return ErrReplay
	}
	s.jtis[k] = exp
	return nil
}

// memStatus answers from a map of serials.
type memStatus struct {
	mu       sync.Mutex
	profiles map[string]string
	revoked  map[string]bool
	onToken  map[string]bool // keys generated on the token (keyInHSM)
	blocked  map[string]bool // keys reported compromised
}

func (m *memStatus) Status(_ context.Context, cert *x509.Certificate) (CertificateStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := cert.SerialNumber.String()
	p, ok := m.profiles[k]
	if !ok {
		return CertificateStatus{}, nil
	}
	return CertificateStatus{Known: true, Profile: p, Revoked: m.revoked[k], RevokedAt: time.Now(), KeyOnToken: m.onToken[k], KeyBlocked: m.blocked[k]}, nil
}

func (m *memStatus) revoke(c *x509.Certificate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoked[c.SerialNumber.String()] = true
}

// memDirectory maps civil numbers to credentials and keys.
type memDirectory struct {
	creds map[string]*RemoteCredential
	// older are enrolments of the same number behind the newest (creds).
	older map[string][]*RemoteCredential
	keys  map[string]crypto.Signer
}

func (d *memDirectory) RemoteCredentials(_ context.Context, civil string) ([]*RemoteCredential, error) {
	c, ok := d.creds[civil]
	if !ok {
		return nil, ErrNotFound
	}
	return append([]*RemoteCredential{c}, d.older[civil]...), nil
}

func (d *memDirectory) Key(_ context.Context, id string) (crypto.Signer, error) {
	k, ok := d.keys[id]
	if !ok {
		return nil, fmt.Errorf("no key %s", id)
	}
	return k, nil
}

// memPINs locks a credential after 5 wrong PINs.
type memPINs struct {
	mu    sync.Mutex
	pins  map[string]string
	fails map[string]int
}

func (m *memPINs) CheckPIN(_ context.Context, id, _, pin string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fails[id] >= 5 {
		return ErrPINLocked
	}
	if m.pins[id] != pin {
		m.fails[id]++
		if m.fails[id] >= 5 {
			return ErrPINLocked
		}
		return ErrWrongPIN
	}
	m.fails[id] = 0
	return nil
}

// memAudit records entries.
type memAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
	fail    bool
}

func (a *memAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return audit.Record{}, errors.New("audit store down")
	}
	a.entries = append(a.entries, e)
	return audit.Record{Seq: int64(len(a.entries))}, nil
}

// Prepare implements Preparer: the records are not kept (no store seals
// them here).
func (a *memAudit) Prepare(...audit.Entry) (audit.Sealer, error) {
	return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) { return nil, nil }), nil
}

// find returns the entries with that action and outcome.
func (a *memAudit) find(action, outcome string) []audit.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Entry
	for _, e := range a.entries {
		if e.Action == action && e.Outcome == outcome {
			out = append(out, e)
		}
	}
	return out
}

// The fake phone-side authentication stands in for internal/auth: the
// credential is "Bearer <role>:<subject>", and only the role citizen passes.
type phoneCallerKey struct{}

func citizenCredential(civil string) string { return "Bearer citizen:" + civil }

func fakePhoneAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role, subject, ok := strings.Cut(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), ":")
		switch {
		case !ok || subject == "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="test"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
		case role != "citizen":
			http.Error(w, "role not allowed", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), phoneCallerKey{}, subject)))
		}
	})
}

func fakeCaller(r *http.Request) (string, bool) {
	civil, ok := r.Context().Value(phoneCallerKey{}).(string)
	return civil, ok
}

// memSigning is the signing service as the CSC authorization server sees
// it: credentials by owner, signing PINs locked after 3 wrong tries.
type memSigning struct {
	mu        sync.Mutex
	owners    map[string]string // credential → civil number
	pins      map[string]string
	fails     map[string]int
	checks    []string // "credential:outcome" of every PIN check
	activated []*CredentialRequest
}

func newMemSigning() *memSigning {
	return &memSigning{owners: map[string]string{testSignCred: testCivil, "sign-other": "87654321"},
		pins: map[string]string{testSignCred: testSignPIN, "sign-other": testSignPIN}, fails: map[string]int{}}
}

func (m *memSigning) CheckCredential(_ context.Context, civil, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.owners[id] != civil:
		return fmt.Errorf("%w: credential not found or not yours", ErrCredentialUnusable)
	case m.fails[id] >= 3:
		return ErrPINLocked
	}
	return nil
}

func (m *memSigning) CheckSigningPIN(ctx context.Context, civil, _ string, req *CredentialRequest, pin string) error {
	if err := m.CheckCredential(ctx, civil, req.CredentialID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := req.CredentialID
	if m.pins[id] != pin {
		m.fails[id]++
		m.checks = append(m.checks, id+":refused")
		if m.fails[id] >= 3 {
			return ErrPINLocked
		}
		return ErrWrongPIN
	}
	m.fails[id] = 0
	m.checks = append(m.checks, id+":success")
	return nil
}

func (m *memSigning) Activate(ctx context.Context, civil, _ string, req *CredentialRequest) (string, time.Time, error) {
	if err := m.CheckCredential(ctx, civil, req.CredentialID); err != nil {
		return "", time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.activated = append(m.activated, req)
	return fmt.Sprintf("sad-%d", len(m.activated)), time.Now().Add(2 * time.Minute), nil
}
