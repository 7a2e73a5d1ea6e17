package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/store/storetest"
)

func TestIdentityStore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			s := db.Identity()
			now := time.Now()

			// Clients.
			if _, err := s.Client(ctx, "nobody"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("unknown client: %v", err)
			}
			c := &identity.Client{ID: "c1", Name: "Portal", RedirectURIs: []string{"https://a/cb", "https://a/cb2"}, AllowCivilNumber: true,
				SectorIdentifier: "a", AuthMethod: identity.AuthPrivateKeyJWT, JWKS: []byte(`{"keys":[]}`), Created: now}
			if err := s.AddClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			if err := s.AddClient(ctx, c); !errors.Is(err, identity.ErrConflict) {
				t.Fatalf("duplicate client: %v", err)
			}
			tls := &identity.Client{ID: "c2", Name: "TLS", RedirectURIs: []string{"https://b/cb"}, AuthMethod: identity.AuthTLSClient, TLSSubject: "CN=b", Created: now}
			if err := s.AddClient(ctx, tls); err != nil {
				t.Fatal(err)
			}
			got, err := s.Client(ctx, "c1")
			if err != nil || got.Name != "Portal" || len(got.RedirectURIs) != 2 || !got.AllowCivilNumber || string(got.JWKS) != `{"keys":[]}` || got.SectorIdentifier != "a" {
				t.Fatalf("client: %+v %v", got, err)
			}
			if got, _ := s.Client(ctx, "c2"); got.TLSSubject != "CN=b" || got.JWKS != nil || got.AllowCivilNumber {
				t.Fatalf("tls client: %+v", got)
			}
			if all, err := s.Clients(ctx); err != nil || len(all) != 2 {
				t.Fatalf("clients: %v %v", all, err)
			}

			// Logins: created pending, moved once.
			req := identity.AuthRequest{ClientID: "c1", RedirectURI: "https://a/cb", State: "s", Nonce: "n", Scope: "openid", CodeChallenge: "x"}
			l := &identity.Login{ID: "l1", BrowserKeyHash: []byte{1, 2}, Request: req, CivilNumber: "12345678", VerificationCode: "0042",
				State: identity.LoginPending, Created: now, Expires: now.Add(time.Minute)}
			if err := s.CreateLogin(ctx, l); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateLogin(ctx, l); !errors.Is(err, identity.ErrConflict) {
				t.Fatalf("duplicate login: %v", err)
			}
			old := &identity.Login{ID: "l0", BrowserKeyHash: []byte{1}, Request: req, CivilNumber: "12345678", VerificationCode: "1",
				State: identity.LoginPending, Created: now.Add(-time.Hour), Expires: now.Add(-time.Minute)}
			if err := s.CreateLogin(ctx, old); err != nil {
				t.Fatal(err)
			}
			pend, err := s.PendingLogins(ctx, "12345678", now)
			if err != nil || len(pend) != 1 || pend[0].ID != "l1" || pend[0].Request != req || pend[0].VerificationCode != "0042" {
				t.Fatalf("pending: %+v %v", pend, err)
			}
			l.State, l.Citizen, l.AuthTime = identity.LoginApproved, &identity.Citizen{CivilNumber: "12345678", GivenName: "عائشة"}, now
			if err := s.UpdateLogin(ctx, l, identity.LoginPending); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdateLogin(ctx, l, identity.LoginPending); !errors.Is(err, identity.ErrConflict) {
				t.Fatalf("second update from pending: %v", err)
			}
			back, err := s.Login(ctx, "l1")
			if err != nil || back.State != identity.LoginApproved || back.Citizen == nil || back.Citizen.GivenName != "عائشة" || !back.AuthTime.Equal(now) || string(back.BrowserKeyHash) != "\x01\x02" {
				t.Fatalf("login: %+v %v", back, err)
			}
			if _, err := s.Login(ctx, "zz"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("unknown login: %v", err)
			}

			// Grants: a code redeems once; the second time revokes.
			g := &identity.Grant{ID: "g1", CodeHash: []byte("hash-1"), Request: req, Citizen: identity.Citizen{CivilNumber: "12345678"},
				Method: identity.MethodMobile, ACR: "acr", AMR: []string{"pop", "pin"}, AuthTime: now, Created: now, CodeExpires: now.Add(time.Minute)}
			if err := s.CreateGrant(ctx, g); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RedeemCode(ctx, []byte("nope"), now, now); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("unknown code: %v", err)
			}
			r, err := s.RedeemCode(ctx, []byte("hash-1"), now, now.Add(time.Hour))
			if err != nil || r.Redeemed || r.ID != "g1" || len(r.AMR) != 2 || r.Request != req {
				t.Fatalf("redeem: %+v %v", r, err)
			}
			if gg, _ := s.Grant(ctx, "g1"); !gg.Redeemed || gg.Revoked || gg.AccessExpires.IsZero() {
				t.Fatalf("after redeem: %+v", gg)
			}
			if r, err := s.RedeemCode(ctx, []byte("hash-1"), now, now); !errors.Is(err, identity.ErrCodeReused) || r == nil || r.ID != "g1" {
				t.Fatalf("reuse: %+v %v", r, err)
			}
			if gg, _ := s.Grant(ctx, "g1"); !gg.Revoked {
				t.Fatal("reuse did not revoke the grant")
			}

			// Concurrent redemption: exactly one winner.
			g2 := *g
			g2.ID, g2.CodeHash = "g2", []byte("hash-2")
			if err := s.CreateGrant(ctx, &g2); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.RedeemCode(ctx, []byte("hash-2"), now, now); err == nil {
						mu.Lock()
						wins++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Fatalf("%d concurrent redemptions won", wins)
			}
			if err := s.RevokeGrant(ctx, "g2"); err != nil {
				t.Fatal(err)
			}

			// Client assertion IDs are single-use per client.
			if err := s.UseAssertion(ctx, "c1", "j1", now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := s.UseAssertion(ctx, "c1", "j1", now.Add(time.Minute)); !errors.Is(err, identity.ErrReplay) {
				t.Fatalf("replay: %v", err)
			}
			if err := s.UseAssertion(ctx, "c2", "j1", now.Add(time.Minute)); err != nil {
				t.Fatalf("same jti, other client: %v", err)
			}
			if n, err := s.Purge(ctx, now.Add(2*time.Minute)); err != nil || n != 2 {
				t.Fatalf("purge: %d %v", n, err)
			}
			if err := s.UseAssertion(ctx, "c1", "j1", now.Add(time.Hour)); err != nil {
				t.Fatalf("after purge: %v", err)
			}

			// Mobile ID enrolment and login PINs through package pin.
			if _, err := s.MobileCredentialID(ctx, "12345678"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("no enrolment: %v", err)
			}
			if err := s.EnrolMobileID(ctx, "cred-a", "12345678", now); err != nil {
				t.Fatal(err)
			}
			if err := s.EnrolMobileID(ctx, "cred-a", "12345678", now); !errors.Is(err, identity.ErrConflict) {
				t.Fatalf("double enrolment: %v", err)
			}
			if _, err := s.MobileCredentialID(ctx, "12345678"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("enrolment without PIN found: %v", err)
			}
			p := pin.DefaultParams()
			p.MemoryKiB, p.Time = 64, 1
			m, err := pin.New(s, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Set(ctx, "cred-a", "135790"); err != nil {
				t.Fatal(err)
			}
			if err := m.Set(ctx, "cred-a", "583920"); !errors.Is(err, pin.ErrAlreadySet) {
				t.Fatalf("second set: %v", err)
			}
			if id, err := s.MobileCredentialID(ctx, "12345678"); err != nil || id != "cred-a" {
				t.Fatalf("credential: %q %v", id, err)
			}
			if err := m.Check(ctx, "cred-a", "135790"); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if err := m.Check(ctx, "cred-a", "111111"); !errors.Is(err, pin.ErrWrong) {
					t.Fatalf("wrong %d: %v", i, err)
				}
			}
			if err := m.Check(ctx, "cred-a", "135790"); !errors.Is(err, pin.ErrLocked) {
				t.Fatalf("locked: %v", err)
			}
			// A newer enrolment wins.
			if err := s.EnrolMobileID(ctx, "cred-b", "12345678", now.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := m.Set(ctx, "cred-b", "246801"); err != nil {
				t.Fatal(err)
			}
			if id, _ := s.MobileCredentialID(ctx, "12345678"); id != "cred-b" {
				t.Fatalf("newest enrolment: %q", id)
			}
		})
	}
}

// TestPendingLoginsByClient: each login records the address key of the
// client that started it, the count tells one client's pending logins
// from all of them (the bound is per address: a bound per number alone
// let anyone lock a citizen out), and the phone's list holds the newest
// MaxPendingListed, the newest first (it held the oldest 20: with more
// pending, the citizen's own fresh login was not on the phone).
func TestPendingLoginsByClient(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			s := storetest.Open(t, d.NewConfig(t)).Identity()
			now := time.Now()
			req := identity.AuthRequest{ClientID: "c1", RedirectURI: "https://a/cb", Scope: "openid", CodeChallenge: "x"}
			add := func(id, civil, key string, created time.Time, state identity.LoginState) {
				t.Helper()
				l := &identity.Login{ID: id, BrowserKeyHash: []byte{1}, Request: req, CivilNumber: civil, ClientKey: key, VerificationCode: "1",
					State: state, Created: created, Expires: created.Add(5 * time.Minute)}
				if err := s.CreateLogin(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
			const n = identity.MaxPendingListed + 5
			for i := range n {
				add(fmt.Sprintf("a%02d", i), "12345678", "192.0.2.66", now.Add(time.Duration(i-n)*time.Second), identity.LoginPending)
			}
			add("own", "12345678", "2001:db8:1:2::/64", now, identity.LoginPending)
			add("gone", "12345678", "2001:db8:1:2::/64", now.Add(-time.Second), identity.LoginDenied)
			add("late", "12345678", "2001:db8:1:2::/64", now.Add(-time.Hour), identity.LoginPending) // expired
			add("else", "87654321", "2001:db8:1:2::/64", now, identity.LoginPending)

			if l, err := s.Login(ctx, "own"); err != nil || l.ClientKey != "2001:db8:1:2::/64" {
				t.Fatalf("client key: %+v %v", l, err)
			}
			c, err := s.CountPendingLogins(ctx, "12345678", "2001:db8:1:2::/64", now)
			if err != nil || c != (identity.PendingCount{Total: n + 1, FromClient: 1}) {
				t.Fatalf("count: %+v %v", c, err)
			}
			if c, err := s.CountPendingLogins(ctx, "12345678", "192.0.2.66", now); err != nil || c.FromClient != n {
				t.Fatalf("count of the other address: %+v %v", c, err)
			}
			if c, err := s.CountPendingLogins(ctx, "11111111", "192.0.2.66", now); err != nil || c != (identity.PendingCount{}) {
				t.Fatalf("count of nobody: %+v %v", c, err)
			}
			pend, err := s.PendingLogins(ctx, "12345678", now)
			if err != nil || len(pend) != identity.MaxPendingListed {
				t.Fatalf("pending: %d %v", len(pend), err)
			}
			if pend[0].ID != "own" || pend[1].ID != fmt.Sprintf("a%02d", n-1) || pend[len(pend)-1].ID != fmt.Sprintf("a%02d", n-identity.MaxPendingListed+1) {
				t.Fatalf("pending order: %s, %s … %s; want the newest first", pend[0].ID, pend[1].ID, pend[len(pend)-1].ID)
			}
		})
	}
}

// TestLoginStartBlocks: the addresses whose logins a citizen denied all at
// once are blocked for that citizen alone until their time, for every
// node sharing the database; a later, shorter block does not shorten
// one; the purge deletes the past ones.
func TestLoginStartBlocks(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			s := storetest.Open(t, d.NewConfig(t)).Identity()
			now := time.Now()
			if err := s.BlockLoginStarts(ctx, "12345678", nil, now.Add(time.Minute)); err != nil {
				t.Fatalf("no addresses: %v", err)
			}
			if err := s.BlockLoginStarts(ctx, "12345678", []string{"192.0.2.66", "2001:db8:1:2::/64"}, now.Add(5*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := s.BlockLoginStarts(ctx, "12345678", []string{"192.0.2.66"}, now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			blocked := func(civil, key string, at time.Time) bool {
				t.Helper()
				c, err := s.CountPendingLogins(ctx, civil, key, at)
				if err != nil {
					t.Fatal(err)
				}
				return c.Blocked
			}
			if !blocked("12345678", "192.0.2.66", now) || !blocked("12345678", "2001:db8:1:2::/64", now) {
				t.Fatal("denied addresses not blocked")
			}
			if blocked("12345678", "198.51.100.7", now) || blocked("87654321", "192.0.2.66", now) {
				t.Fatal("a block reaches another address or another citizen")
			}
			if !blocked("12345678", "192.0.2.66", now.Add(2*time.Minute)) {
				t.Fatal("a shorter block shortened a longer one")
			}
			if blocked("12345678", "192.0.2.66", now.Add(5*time.Minute)) {
				t.Fatal("a block outlived its time")
			}
			if n, err := s.Purge(ctx, now.Add(time.Minute)); err != nil || n != 0 {
				t.Fatalf("purge of live blocks: %d %v", n, err)
			}
			if n, err := s.Purge(ctx, now.Add(5*time.Minute)); err != nil || n != 2 {
				t.Fatalf("purge of past blocks: %d %v", n, err)
			}
		})
	}
}
