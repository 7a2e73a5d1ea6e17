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
	"github.com/thiqa/thiqa/store/storetest"
)

type phoneCaller struct{}

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
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			const redir, civil = "https://portal.example.om/cb", "12345678"
			if err := db.Identity().AddClient(t.Context(), &identity.Client{ID: "portal-1", Name: "Portal", RedirectURIs: []string{redir},
				AuthMethod: identity.AuthTLSClient, TLSSubject: "CN=portal", Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			p, err := identity.New(identity.Config{
				Issuer: "https://id.example.om", Signer: key, PairwiseSecret: []byte(strings.Repeat("s", 32)),
				Store: db.Identity(), Status: fixedStatus{Known: true}, Audit: log, NumberMatching: true,
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
			h := p.Handler()
			serve := func(remote, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(method, "https://id.example.om"+path, strings.NewReader(body))
				req.RemoteAddr = remote
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			sum := sha256.Sum256([]byte("verifier-verifier-verifier-verifier-verifier"))
			form := url.Values{"client_id": {"portal-1"}, "redirect_uri": {redir}, "response_type": {"code"}, "scope": {"openid"},
				"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "civil_number": {civil}}
			reSession := regexp.MustCompile(`name="login" value="([^"]+)"`)
			start := func(remote string) (int, string) {
				t.Helper()
				rec := serve(remote, http.MethodPost, identity.PathAuthorize, form.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
				if m := reSession.FindStringSubmatch(rec.Body.String()); m != nil {
					return rec.Code, m[1]
				}
				return rec.Code, ""
			}
			list := func() []identity.PendingSession {
				t.Helper()
				rec := serve("198.51.100.7:1", http.MethodGet, identity.PathMobileList, "", map[string]string{"Authorization": "Bearer citizen:" + civil})
				var out []identity.PendingSession
				if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
					t.Fatalf("phone list: %d %s", rec.Code, rec.Body)
				}
				return out
			}

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

			rec := serve("198.51.100.7:1", http.MethodPost, identity.PathMobileDenyAll, "", map[string]string{"Authorization": "Bearer citizen:" + civil})
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
