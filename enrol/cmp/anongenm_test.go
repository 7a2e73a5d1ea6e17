package cmp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestCMPAnonymousGenmBounded on SQLite and PostgreSQL: an unprotected
// genm (the CA certificates are public, so anyone may ask) is a message
// that is not authenticated: its records, the cmp.genm of an answer and
// the enrolment.refused of a malformed one, come out of the client
// address's budget (10 at once, then the first of each run), as the
// refusals of other unauthenticated messages do, instead of one record
// per request. Every request is still answered. Another address has its
// own budget; a MAC-protected genm is authenticated and always recorded.
func TestCMPAnonymousGenmBounded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			post := func(remote string, der []byte) answer {
				t.Helper()
				req := httptest.NewRequest(http.MethodPost, "/.well-known/cmp", bytes.NewReader(der))
				req.Header.Set("Content-Type", "application/pkixcmp")
				req.RemoteAddr = remote
				rec := httptest.NewRecorder()
				f.srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("HTTP %d", rec.Code)
				}
				return parseAnswer(t, rec.Body.Bytes())
			}
			records := func() int {
				return f.count(t, "cmp.genm", "success") + f.count(t, enrol.ActionRefused, "refused")
			}
			good := (&client{}).message(t, bodyGenM, []byte{0x30, 0})
			// A GenMsgContent whose InfoTypeAndValue has no OID.
			bad := (&client{}).message(t, bodyGenM, []byte{0x30, 0x04, 0x30, 0x02, 0x04, 0x00})
			before := records()
			for i := range 60 {
				if i%2 == 0 {
					if a := post("198.51.100.9:4000", good); a.m.bodyType != bodyGenP {
						t.Fatalf("request %d: genm answered %s %q, want genp", i+1, bodyName(a.m.bodyType), a.failInfo)
					}
					continue
				}
				if a := post("198.51.100.9:4000", bad); a.m.bodyType != bodyError || a.failInfo != "badDataFormat" {
					t.Fatalf("request %d: malformed genm answered %s %q, want error badDataFormat", i+1, bodyName(a.m.bodyType), a.failInfo)
				}
			}
			if n := records() - before; n != 11 {
				t.Fatalf("%d records for 60 anonymous genm from one address, want 11 (10, then the first of the run)", n)
			}
			post("192.0.2.7:4000", good)
			if n := records() - before; n != 12 {
				t.Fatalf("another address: %d records, want 12", n)
			}
			ref, secret := f.enrolment(t)
			genms := f.count(t, "cmp.genm", "success")
			for range 3 {
				if a := post("198.51.100.9:4000", (&client{ref: ref, secret: secret}).message(t, bodyGenM, []byte{0x30, 0})); a.m.bodyType != bodyGenP {
					t.Fatalf("MAC-protected genm answered %s %q", bodyName(a.m.bodyType), a.failInfo)
				}
			}
			if n := f.count(t, "cmp.genm", "success") - genms; n != 3 {
				t.Fatalf("%d records of 3 MAC-protected genm, want 3", n)
			}
		})
	}
}
