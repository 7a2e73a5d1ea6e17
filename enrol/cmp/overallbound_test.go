package cmp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
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
			var last audit.Record
			if err := f.db.AuditRecords(context.Background(), 1, func(r audit.Record) error { last = r; return nil }); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(last.Details), `"unrecordedOverall":`) {
				t.Fatalf("the next recorded refusal: %s, want unrecordedOverall", last.Details)
			}
		})
	}
}
