package cmp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestCMPUnauthenticatedRefusalsBounded on SQLite and PostgreSQL: a
// message with a wrong secret, an unknown reference or that does not
// parse is refused and recorded, but anyone may send them: past the
// address's budget (10 at once) only the first refusal of each run is
// recorded, every one still answered with its error. Another address has
// its own budget.
func TestCMPUnauthenticatedRefusalsBounded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ref, secret := f.enrolment(t)
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			post := func(remote string, der []byte) string {
				t.Helper()
				req := httptest.NewRequest(http.MethodPost, "/.well-known/cmp", bytes.NewReader(der))
				req.Header.Set("Content-Type", "application/pkixcmp")
				req.RemoteAddr = remote
				rec := httptest.NewRecorder()
				f.srv.ServeHTTP(rec, req)
				a := parseAnswer(t, rec.Body.Bytes())
				if rec.Code != http.StatusOK || a.m.bodyType != bodyError {
					t.Fatalf("%d body %s, want an error message", rec.Code, bodyName(a.m.bodyType))
				}
				return a.failInfo
			}
			refused := func() int { return f.count(t, enrol.ActionRefused, "refused") }
			before := refused()
			for i := range 51 {
				der, want := (&client{ref: ref, secret: "WRONG"}).message(t, bodyIR, certReqBody(t, k, k, nil)), "badMessageCheck"
				switch i % 3 {
				case 1:
					der = (&client{ref: "AAAAAAAAAAAAAAAA", secret: secret}).message(t, bodyIR, certReqBody(t, k, k, nil))
				case 2:
					der, want = []byte{0x30, 0x03, 0x02, 0x01}, "badDataFormat"
				}
				if got := post("198.51.100.8:4000", der); got != want {
					t.Fatalf("request %d: failInfo %q, want %q", i+1, got, want)
				}
			}
			if n := refused() - before; n != 11 {
				t.Fatalf("%d records for 51 unauthenticated refusals from one address, want 11 (10, then the first of the run)", n)
			}
			post("192.0.2.6:4000", (&client{ref: ref, secret: "WRONG"}).message(t, bodyIR, certReqBody(t, k, k, nil)))
			if n := refused() - before; n != 12 {
				t.Fatalf("another address: %d records, want 12", n)
			}
		})
	}
}
