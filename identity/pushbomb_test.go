package identity

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPendingLoginsBounded: whoever knows a civil number can start mobile
// logins for it; without a bound, a script buries the citizen's phone
// under approval requests (push bombing) and pushes the citizen's own
// login off the phone's list. Past Config.MaxPendingLogins a start is
// refused (429, audited) alike for a number with a mobile ID and one
// without, and a login that ends makes room again.
func TestPendingLoginsBounded(t *testing.T) {
	e := newEnv(t, false)
	start := func(civil string) (*http.Response, string) {
		t.Helper()
		f := e.authQuery()
		f.Set("civil_number", civil)
		resp, err := e.browser.PostForm(e.srv.URL+PathAuthorize, f)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}
	var first, firstCode string
	for i := range defaultMaxPendingLogins {
		s, _, c := e.startMobile(e.authQuery(), testCivil)
		if i == 0 {
			first, firstCode = s, c
		}
	}
	resp, body := start(testCivil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many logins") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("start past the bound: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, `name="key"`) {
		t.Fatal("a refused start got a login session")
	}
	if st, list := e.listAs(citizenCredential(testCivil), ""); st != 200 || len(list) != defaultMaxPendingLogins {
		t.Fatalf("phone list: %d %d", st, len(list))
	}
	refused := e.audit.find("oidc.login", "refused")
	if len(refused) != 1 || !strings.Contains(refused[0].Details.(map[string]any)["reason"].(string), "await approval") {
		t.Fatalf("audit: %+v", refused)
	}

	// A number without a mobile ID answers alike: the bound tells nothing.
	for range defaultMaxPendingLogins {
		e.startMobile(e.authQuery(), "87654321")
	}
	if resp, body := start("87654321"); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many logins") {
		t.Fatalf("unknown number past the bound: %d", resp.StatusCode)
	}

	// One login ends (approved): there is room for one more.
	if st := e.approve(first, firstCode, testPIN); st != 200 {
		t.Fatalf("approve: %d", st)
	}
	e.startMobile(e.authQuery(), testCivil)
	if resp, _ := start(testCivil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second start past the bound: %d", resp.StatusCode)
	}
}

// gatedStore holds the answer of every CountPendingLogins call until n callers
// have read (or a short while has passed), so that concurrent starts read
// the count before any of them inserts, as they can on a busy server.
type gatedStore struct {
	Store
	mu      sync.Mutex
	waiting int
	n       int
	open    chan struct{}
}

func (g *gatedStore) CountPendingLogins(ctx context.Context, civil, clientKey string, now time.Time) (PendingCount, error) {
	n, err := g.Store.CountPendingLogins(ctx, civil, clientKey, now)
	g.mu.Lock()
	g.waiting++
	if g.waiting == g.n {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(50 * time.Millisecond):
	}
	return n, err
}

// TestPendingLoginsBoundConcurrent: the count of a number's pending
// logins and the insert of a new one were two steps, so starts sent at
// the same moment all counted the same logins and all got in, past
// MaxPendingLogins (a script's burst from one address is 30). However
// they interleave, at most MaxPendingLogins from one address await
// approval.
func TestPendingLoginsBoundConcurrent(t *testing.T) {
	const n = 8
	e := newEnvWith(t, false, func(c *Config) {
		c.Store = &gatedStore{Store: c.Store, n: n, open: make(chan struct{})}
	})
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := e.authQuery()
			f.Set("civil_number", testCivil)
			codes[i] = e.serveFrom(fmt.Sprintf("192.0.2.1:%d", 4000+i), http.MethodPost, PathAuthorize, f, nil).Code
		}()
	}
	wg.Wait()
	pending := 0
	e.store.mu.Lock()
	for _, l := range e.store.logins {
		if l.CivilNumber == testCivil && l.State == LoginPending {
			pending++
		}
	}
	e.store.mu.Unlock()
	if pending != defaultMaxPendingLogins {
		t.Fatalf("%d logins await approval after %d concurrent starts (answers %v), want %d", pending, n, codes, defaultMaxPendingLogins)
	}
}
