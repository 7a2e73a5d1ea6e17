package est_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestESTOverPlainHTTPIsRecorded on SQLite and PostgreSQL: an enrolment
// request over plain HTTP is refused 403 "TLS required" with an
// enrolment.refused record written first, naming the enrolment whose
// reference came in HTTP Basic and saying that its secret crossed the
// network in clear, without the secret; while the log cannot record it,
// the answer is 500.
func TestESTOverPlainHTTPIsRecorded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			var gate *audittest.Gate
			db, svc, mux := newESTServer(t, d, func(log enrol.Auditor) enrol.Auditor { gate = audittest.New(log); return gate })
			ts := httptest.NewServer(mux) // no TLS
			t.Cleanup(ts.Close)
			c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
				map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			post := func(path string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader("MIIB"))
				req.Header.Set("Content-Type", "application/pkcs10")
				req.SetBasicAuth(c.Reference, c.Secret)
				resp, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var p struct{ Title string }
				_ = json.NewDecoder(resp.Body).Decode(&p)
				return resp.StatusCode, p.Title
			}
			for _, path := range []string{"/.well-known/est/simpleenroll", "/.well-known/est/citizen-auth/simpleenroll", "/.well-known/est/simplereenroll"} {
				before := storetest.AuditCount(t, db, enrol.ActionRefused, "refused")
				if st, title := post(path); st != http.StatusForbidden || title != "TLS required" {
					t.Fatalf("%s over HTTP: %d %q", path, st, title)
				}
				if n := storetest.AuditCount(t, db, enrol.ActionRefused, "refused") - before; n != 1 {
					t.Fatalf("%s over HTTP: %d refusal records, want 1", path, n)
				}
			}
			var last audit.Record
			if err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error { last = r; return nil }); err != nil {
				t.Fatal(err)
			}
			if last.Actor != "enrolment:"+c.Reference || last.Object != "est:/.well-known/est/simplereenroll" ||
				!strings.Contains(string(last.Details), `"secretInClear":true`) || strings.Contains(string(last.Details), c.Secret) {
				t.Fatalf("record: actor %q, object %q, details %s", last.Actor, last.Object, last.Details)
			}
			gate.Down.Store(true)
			if st, _ := post("/.well-known/est/simpleenroll"); st != http.StatusInternalServerError {
				t.Fatalf("refusal unrecorded: %d, want 500", st)
			}
		})
	}
}

// TestESTOverPlainHTTPBounded on SQLite and PostgreSQL: EST is mounted on
// every deployment and anyone may send it plain HTTP, so each request
// wrote an enrolment.refused record, naming as actor whatever user name it
// carried, of any length. Past the address's budget (10 at once) only the
// first refusal of each run is recorded, every one still answered 403; a
// user name that is no enrolment reference is not named.
func TestESTOverPlainHTTPBounded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, _, mux := newESTServer(t, d, nil)
			post := func(remote, user string) int {
				t.Helper()
				req := httptest.NewRequest(http.MethodPost, "/.well-known/est/simpleenroll", strings.NewReader("MIIB"))
				req.Header.Set("Content-Type", "application/pkcs10")
				req.SetBasicAuth(user, "secret")
				req.RemoteAddr = remote
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				return w.Code
			}
			junk := strings.Repeat("x", 4096)
			before := storetest.AuditCount(t, db, enrol.ActionRefused, "refused")
			for i := range 50 {
				if st := post("198.51.100.7:4000", junk); st != http.StatusForbidden {
					t.Fatalf("request %d: %d, want 403", i+1, st)
				}
			}
			if n := storetest.AuditCount(t, db, enrol.ActionRefused, "refused") - before; n != 11 {
				t.Fatalf("%d records for 50 plain-HTTP requests from one address, want 11 (10, then the first of the run)", n)
			}
			var last audit.Record
			if err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error { last = r; return nil }); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(last.Actor, junk) || !strings.Contains(string(last.Details), `"secretInClear":true`) {
				t.Fatalf("record: actor %.40q, details %s", last.Actor, last.Details)
			}
			if st := post("192.0.2.4:4000", junk); st != http.StatusForbidden ||
				storetest.AuditCount(t, db, enrol.ActionRefused, "refused")-before != 12 {
				t.Fatalf("another address: %d, not recorded", st)
			}
		})
	}
}
