package identity

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thiqa/thiqa/internal/ratelimit"
)

// TestUserinfoRefusalsBoundedOverall: the budget per address (a /64 for
// IPv6) let anyone holding a /48 write a record for each of 65,536 keys'
// bursts. 2,000 addresses sending a forged token each record at most the
// service's overall budget (ratelimit.OverallBurst at once); the others
// are answered 401 invalid_token as always, counted in
// thiqa_oidc_rate_limited_total{limit="userinfo_overall"}, and the next
// recorded refusal, once the budget refills, says how many went
// unrecorded.
func TestUserinfoRefusalsBoundedOverall(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnvWith(t, false, func(c *Config) { c.Now = clock })
	ask := func(remote string) {
		t.Helper()
		w := e.serveFrom(remote, http.MethodGet, PathUserinfo, nil, http.Header{"Authorization": {"Bearer abc.def.ghi"}})
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("%s: %d %v %s", remote, w.Code, w.Header(), w.Body.String())
		}
	}
	before := len(e.audit.find(ActionUserinfo, "refused"))
	const addrs = 2000
	for i := range addrs {
		ask(fmt.Sprintf("[2001:db8:0:%x::1]:4000", i))
	}
	if n := len(e.audit.find(ActionUserinfo, "refused")) - before; n != ratelimit.OverallBurst {
		t.Fatalf("%d records for %d addresses' refusals, want %d", n, addrs, ratelimit.OverallBurst)
	}
	if n := testutil.ToFloat64(e.p.m.limited.WithLabelValues(limitUserinfoOverall)); n != addrs-ratelimit.OverallBurst {
		t.Fatalf(`thiqa_oidc_rate_limited_total{limit="userinfo_overall"} = %v, want %d`, n, addrs-ratelimit.OverallBurst)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	ask("[2001:db8:1::1]:4000")
	recs := e.audit.find(ActionUserinfo, "refused")
	if d := recs[len(recs)-1].Details.(map[string]any); fmt.Sprint(d["unrecordedOverall"]) != fmt.Sprint(addrs-ratelimit.OverallBurst) {
		t.Fatalf("the next recorded refusal: %+v, want unrecordedOverall %d", d, addrs-ratelimit.OverallBurst)
	}
}

// TestUserinfoOverallCountedOnce: a refusal past both budgets (the
// address's first past its own, which the overall budget then leaves
// unrecorded) was counted under both userinfo and userinfo_overall; each
// refusal is counted once.
func TestUserinfoOverallCountedOnce(t *testing.T) {
	now := time.Now() // frozen: neither budget refills
	e := newEnvWith(t, false, func(c *Config) { c.TokenBurst, c.Now = 2, func() time.Time { return now } })
	ask := func(remote string) {
		t.Helper()
		w := e.serveFrom(remote, http.MethodGet, PathUserinfo, nil, http.Header{"Authorization": {"Bearer abc.def.ghi"}})
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d %s", remote, w.Code, w.Body.String())
		}
	}
	for i := range ratelimit.OverallBurst {
		ask(fmt.Sprintf("[2001:db8:0:%x::1]:4000", i))
	}
	for range 3 { // 2 within the address's budget, the first past it
		ask("[2001:db8:1::1]:4000")
	}
	overall := testutil.ToFloat64(e.p.m.limited.WithLabelValues(limitUserinfoOverall))
	perAddr := testutil.ToFloat64(e.p.m.limited.WithLabelValues(limitUserinfo))
	if overall != 2 || perAddr != 1 {
		t.Fatalf("userinfo_overall %v, userinfo %v: want 2 and 1 (3 unrecorded refusals, each counted once)", overall, perAddr)
	}
}
