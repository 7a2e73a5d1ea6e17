package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

type phoneCaller struct{}

// storeHarness is a provider over one real store (storetest), under
// number matching, with the phone side authorized by "Bearer
// citizen:<civil number>", and a clock the test may set (now; the wall
// clock while zero).
type storeHarness struct {
	t     *testing.T
	db    *store.DB
	h     http.Handler
	now   time.Time
	form  url.Values
	civil string
}

var reStoreSession = regexp.MustCompile(`name="login" value="([^"]+)"`)

func newStoreHarness(t *testing.T, d storetest.Dialect) *storeHarness {
	t.Helper()
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	const redir, civil = "https://portal.example.om/cb", "12345678"
	if err := db.Identity().AddClient(t.Context(), &identity.Client{ID: "portal-1", Name: "Portal", RedirectURIs: []string{redir},
		AuthMethod: identity.AuthTLSClient, TLSSubject: "CN=portal", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s := &storeHarness{t: t, db: db, civil: civil}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, err := identity.New(identity.Config{
		Issuer: "https://id.example.om", Signer: key, PairwiseSecret: []byte(strings.Repeat("s", 32)),
		Store: db.Identity(), Status: fixedStatus{Known: true}, Audit: log, NumberMatching: true,
		Now: func() time.Time {
			if s.now.IsZero() {
				return time.Now()
			}
			return s.now
		},
		PhoneAuth: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), phoneCaller{}, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer citizen:"))))
			})
		},
		Caller: func(r *http.Request) (string, bool) {
			c, ok := r.Context().Value(phoneCaller{}).(string)
			return c, ok
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.h = p.Handler()
	sum := sha256.Sum256([]byte("verifier-verifier-verifier-verifier-verifier"))
	s.form = url.Values{"client_id": {"portal-1"}, "redirect_uri": {redir}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "civil_number": {civil}}
	return s
}

func (s *storeHarness) serve(remote, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "https://id.example.om"+path, strings.NewReader(body))
	req.RemoteAddr = remote
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

// start starts a mobile login from remote ("ip:port"): the status and
// the session (empty when refused).
func (s *storeHarness) start(remote string) (int, string) {
	s.t.Helper()
	rec := s.serve(remote, http.MethodPost, identity.PathAuthorize, s.form.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if m := reStoreSession.FindStringSubmatch(rec.Body.String()); m != nil {
		return rec.Code, m[1]
	}
	return rec.Code, ""
}

func (s *storeHarness) list() []identity.PendingSession {
	s.t.Helper()
	rec := s.serve("198.51.100.7:1", http.MethodGet, identity.PathMobileList, "", map[string]string{"Authorization": "Bearer citizen:" + s.civil})
	var out []identity.PendingSession
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		s.t.Fatalf("phone list: %d %s", rec.Code, rec.Body)
	}
	return out
}

func (s *storeHarness) denyAll() *httptest.ResponseRecorder {
	return s.serve("198.51.100.7:1", http.MethodPost, identity.PathMobileDenyAll, "", map[string]string{"Authorization": "Bearer citizen:" + s.civil})
}

// TestMobileLockoutOnStores drives the provider over the real stores,
// SQLite and PostgreSQL: someone who knows a citizen's civil number keeps
// MaxPendingLogins of the number's logins pending from one address. That
// refused the citizen's own logins (429) for as long as they kept going;
// now the citizen's start from another address gets in and is first on
// the phone's list, and the citizen's deny-all ends every pending login,
// audited.
func TestMobileLockoutOnStores(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newStoreHarness(t, d)
			db, start, list := s.db, s.start, s.list

			for i := range 5 {
				if st, _ := start(fmt.Sprintf("192.0.2.66:%d", 4000+i)); st != http.StatusOK {
					t.Fatalf("attacker start %d: %d", i, st)
				}
			}
			if st, _ := start("192.0.2.66:4999"); st != http.StatusTooManyRequests {
				t.Fatalf("sixth start from the attacker's address: %d, want 429", st)
			}
			st, own := start("198.51.100.7:5000")
			if st != http.StatusOK {
				t.Fatalf("the citizen's own start: %d, want 200", st)
			}
			if l := list(); len(l) != 6 || l[0].Session != own {
				t.Fatalf("phone list: %+v, want 6 with the citizen's own first", l)
			}

			rec := s.denyAll()
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"denied":6`) {
				t.Fatalf("deny-all: %d %s", rec.Code, rec.Body)
			}
			if l := list(); len(l) != 0 {
				t.Fatalf("phone list after deny-all: %+v", l)
			}
			if l, err := db.Identity().Login(t.Context(), own); err != nil || l.State != identity.LoginDenied {
				t.Fatalf("the citizen's login after deny-all: %+v %v", l, err)
			}
			if n := storetest.AuditCount(t, db, identity.ActionDenyAll, audit.OutcomeSuccess); n != 1 {
				t.Fatalf("%d deny-all records, want 1", n)
			}
			if rep, err := audit.Verify(t.Context(), db); err != nil || !rep.OK() {
				t.Fatalf("audit verify: %v %v", rep, err)
			}
		})
	}
}

// TestDenyAllBlocksAddressesOnStores, over SQLite and PostgreSQL: four
// addresses that knew a citizen's civil number filled the number's
// MaxPendingListed pending logins; the citizen's deny-all ended them, and
// the same four filled the bound again at once, locking the citizen out
// of mobile-ID login. Now the addresses whose logins the citizen denied
// are refused for one LoginLifetime, as past the bound (429, Retry-After,
// audited), on every node sharing the database; the citizen's browser
// elsewhere, or at the phone's address, gets in; after the lifetime the addresses may start again,
// and the purge deletes the past blocks.
func TestDenyAllBlocksAddressesOnStores(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newStoreHarness(t, d)
			s.now = time.Now()
			attackers := []string{"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"}
			for j, a := range attackers {
				for i := range identity.MaxPendingListed / len(attackers) {
					if j == len(attackers)-1 && i == 0 {
						// One is the citizen's own, from the address of
						// the phone (one home network).
						if st, _ := s.start("198.51.100.7:5001"); st != http.StatusOK {
							t.Fatalf("the citizen's own start: %d", st)
						}
						continue
					}
					if st, _ := s.start(fmt.Sprintf("%s:%d", a, 4000+i)); st != http.StatusOK {
						t.Fatalf("start %d from %s: %d", i, a, st)
					}
				}
			}
			if st, _ := s.start("198.51.100.20:5000"); st != http.StatusTooManyRequests {
				t.Fatalf("a start past %d pending: %d, want 429", identity.MaxPendingListed, st)
			}
			if rec := s.denyAll(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), fmt.Sprintf(`"denied":%d`, identity.MaxPendingListed)) {
				t.Fatalf("deny-all: %d %s", rec.Code, rec.Body)
			}
			refusedBefore := storetest.AuditCount(t, s.db, "oidc.login", "refused")
			s.now = s.now.Add(time.Second)
			for _, a := range attackers {
				rec := s.serve(a+":4999", http.MethodPost, identity.PathAuthorize, s.form.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
				if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "300" || reStoreSession.MatchString(rec.Body.String()) {
					t.Fatalf("start from %s right after deny-all: %d %q, want 429 with Retry-After", a, rec.Code, rec.Header().Get("Retry-After"))
				}
			}
			if n := storetest.AuditCount(t, s.db, "oidc.login", "refused"); n != refusedBefore+len(attackers) {
				t.Fatalf("%d refusals recorded, want %d", n-refusedBefore, len(attackers))
			}
			if l := s.list(); len(l) != 0 {
				t.Fatalf("phone list after deny-all: %+v", l)
			}
			st, own := s.start("203.0.113.50:5000")
			if st != http.StatusOK || own == "" {
				t.Fatalf("the citizen's start from another address after deny-all: %d, want 200", st)
			}
			if l := s.list(); len(l) != 1 || l[0].Session != own {
				t.Fatalf("phone list: %+v, want only the citizen's own login", l)
			}
			// The address the citizen denied from is not blocked, though
			// a login from it was denied.
			if st, _ := s.start("198.51.100.7:5002"); st != http.StatusOK {
				t.Fatalf("the citizen's start from the phone's address after deny-all: %d, want 200", st)
			}

			// One lifetime (5m, the default) after the deny-all: A may start again.
			s.now = s.now.Add(5 * time.Minute)
			if st, _ := s.start(attackers[0] + ":4998"); st != http.StatusOK {
				t.Fatalf("start from %s a lifetime after deny-all: %d, want 200", attackers[0], st)
			}
			if n, err := s.db.Identity().Purge(t.Context(), s.now); err != nil || n != int64(len(attackers)) {
				t.Fatalf("purge: %d %v, want the %d past blocks", n, err, len(attackers))
			}
		})
	}
}
