package cmp

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestCMPRefusalsBoundedOverall on SQLite and PostgreSQL: the budget per
// address (a /64 for IPv6) let anyone holding a /48 write a record for
// each of 65,536 keys' bursts. 2,000 addresses, each sending a message
// that does not parse, record at most the server's overall budget
// (ratelimit.OverallBurst at once, OverallRate a second while the test
// runs); every one is still answered with its error, and the next
// recorded refusal says how many went unrecorded.
func TestCMPRefusalsBoundedOverall(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			post := func(remote string) {
				t.Helper()
				req := httptest.NewRequest(http.MethodPost, "/.well-known/cmp", bytes.NewReader([]byte{0x30, 0x03, 0x02, 0x01}))
				req.Header.Set("Content-Type", "application/pkixcmp")
				req.RemoteAddr = remote
				rec := httptest.NewRecorder()
				f.srv.ServeHTTP(rec, req)
				if a := parseAnswer(t, rec.Body.Bytes()); rec.Code != http.StatusOK || a.m.bodyType != bodyError || a.failInfo != "badDataFormat" {
					t.Fatalf("%s: %d body %s %q, want an error message", remote, rec.Code, bodyName(a.m.bodyType), a.failInfo)
				}
			}
			refused := func() int { return f.count(t, enrol.ActionRefused, "refused") }
			before, start := refused(), time.Now()
			const addrs = 2000
			for i := range addrs {
				post(fmt.Sprintf("[2001:db8:0:%x::1]:4000", i))
			}
			limit := ratelimit.OverallBurst + int(ratelimit.OverallRate*time.Since(start).Seconds()) + 1
			if n := refused() - before; n > limit {
				t.Fatalf("%d records for %d addresses' refusals, want at most %d", n, addrs, limit)
			}
			time.Sleep(time.Second / ratelimit.OverallRate * 2)
			post("[2001:db8:1::1]:4000")
			// Each refusal is either recorded or counted in the next
			// record's unrecordedOverall: none lost, none counted twice.
			// (The last record alone need not carry the count: on a slow
			// machine the loop's last refusal may have found a token.)
			if got := storetest.RefusalsAccounted(t, f.db, enrol.ActionRefused, before); got != addrs+1 {
				t.Fatalf("records plus their unrecordedOverall: %d, want %d refusals", got, addrs+1)
			}
		})
	}
}
