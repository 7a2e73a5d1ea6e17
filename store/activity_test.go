package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// A citizen's holdings are the certificates naming exactly their civil
// number (not one that merely contains it), newest first, bounded.
func TestActivityHoldings(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			a := newAuthority(t, db.Certificates(nil))
			serials := map[string][]string{}
			for _, civil := range []string{"12345678", "87654321", "123456789", "12345678"} {
				req := citizenRequest(t)
				req.Subject["civilNumber"] = civil
				got, err := a.Issue(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				serials[civil] = append(serials[civil], got.Serial)
			}
			got, err := db.Activity().Holdings(ctx, "12345678", 10)
			if err != nil {
				t.Fatal(err)
			}
			var have []string
			for _, h := range got {
				have = append(have, h.Serial)
			}
			if want := serials["12345678"]; len(have) != 2 || !slices.Contains(have, want[0]) || !slices.Contains(have, want[1]) {
				t.Fatalf("holdings of 12345678: %v, want %v (not %v)", have, want, serials["123456789"])
			}
			if got, _ := db.Activity().Holdings(ctx, "12345678", 1); len(got) != 1 {
				t.Fatalf("limit 1: %+v", got)
			}
			if got, _ := db.Activity().Holdings(ctx, "1234567", 10); len(got) != 0 {
				t.Fatalf("a prefix of civil numbers: %+v", got)
			}
		})
	}
}

// The records of a citizen: by object (certificate, credential, person)
// or by actor, newest first, each once, below the cursor, bounded; none of
// another citizen's.
func TestActivityRecords(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			for _, e := range []audit.Entry{
				{Actor: "officer-1", Action: "certificate.issue", Object: "0aaa", Outcome: "success"},                      // 1: A's
				{Actor: "officer-1", Action: "certificate.issue", Object: "0bbb", Outcome: "success"},                      // 2: B's
				{Actor: "citizen:11111111", Action: "oidc.login", Object: "tax", Outcome: "success"},                       // 3: A's
				{Actor: "22222222", Action: "document.sign", Object: "cred-b", Outcome: "success"},                         // 4: B's
				{Actor: "11111111", Action: "document.sign", Object: "cred-a", Outcome: "success"},                         // 5: A's, twice matched
				{Actor: "citizen:11111111", Action: "oidc.login.deny-all", Object: "citizen:11111111", Outcome: "success"}, // 6
				{Actor: "111111111", Action: "document.sign", Object: "cred-c", Outcome: "success"},                        // 7: another
			} {
				if _, err := log.Append(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			q := activity.Query{Objects: []string{"0aaa", "cred-a", "citizen:11111111"}, Actors: activity.CitizenActors("11111111"), Limit: 10}
			seqs := func(q activity.Query) []int64 {
				t.Helper()
				got, err := db.Activity().ActivityRecords(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var out []int64
				for _, r := range got {
					out = append(out, r.Seq)
				}
				return out
			}
			if got := seqs(q); fmt.Sprint(got) != "[6 5 3 1]" {
				t.Fatalf("A's records: %v, want [6 5 3 1]", got)
			}
			q.Limit = 2
			if got := seqs(q); fmt.Sprint(got) != "[6 5]" {
				t.Fatalf("limit 2: %v", got)
			}
			q.Before = 5
			if got := seqs(q); fmt.Sprint(got) != "[3 1]" {
				t.Fatalf("before 5: %v", got)
			}
			q.Before = 1
			if got := seqs(q); len(got) != 0 {
				t.Fatalf("before 1: %v", got)
			}
		})
	}
}

// The names of the portals come from their registration.
func TestActivityClientNames(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			c, err := identity.NewClient(identity.ClientRegistration{Name: "Tax portal", RedirectURIs: []string{"https://tax.example/cb"}, TLSSubject: "CN=Tax,O=Tax,C=OM"})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Identity().AddClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			got, err := db.Activity().ClientNames(ctx, []string{c.ID, "no-such-client", c.ID})
			if err != nil || len(got) != 1 || got[c.ID] != "Tax portal" {
				t.Fatalf("names: %v %v", got, err)
			}
		})
	}
}

// TestActivityQueryPlan checks that a page reads each object and each
// actor through its index, newest first and bounded, never the whole log:
// the actor "citizen:…" of a hot identity provider or the seal credential
// are a large share of it.
func TestActivityQueryPlan(t *testing.T) {
	const n = 3000
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			objs := make([]string, n)
			for i := range objs {
				objs[i] = fmt.Sprintf("o-%d", i%97)
			}
			appendObjects(t, db, objs) // actor "org"
			q := activity.Query{Objects: []string{"o-1", "o-2"}, Actors: []string{"org", "citizen:1"}, Before: n / 2, Limit: 51}
			got, err := db.Activity().ActivityRecords(ctx, q)
			if err != nil || len(got) != 51 || got[0].Seq != n/2-1 {
				t.Fatalf("records: %d %v", len(got), err)
			}
			stmt, args := store.ActivityQuery(q)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					t.Fatal(err)
				}
				lines, err := db.QueryLines(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+stmt, args...)
				if err != nil {
					t.Fatal(err)
				}
				plan := strings.Join(lines, "\n")
				inner := strings.Count(plan, "->  Limit")
				if inner != 4 || strings.Contains(plan, "Seq Scan on audit_log") || !strings.Contains(plan, "audit_log_actor") ||
					!strings.Contains(plan, "audit_log_object") {
					t.Errorf("%d per-branch limits for 4 branches, or a scan of the log:\n%s", inner, plan)
				}
				t.Logf("plan:\n%s", plan)
				return
			}
			lines, err := db.QueryLines(ctx, "EXPLAIN QUERY PLAN "+stmt, args...)
			if err != nil {
				t.Fatal(err)
			}
			objects, actors := 0, 0
			for _, l := range lines {
				f := strings.Fields(l)
				switch {
				case strings.Contains(l, "audit_log USING INDEX audit_log_object (object=? AND seq<?)"):
					objects++
				case strings.Contains(l, "audit_log USING INDEX audit_log_actor (actor=? AND seq<?)"):
					actors++
				case strings.Contains(l, "audit_log"):
					t.Errorf("a page reads audit_log other than through its indexes: %s", l)
				case strings.Contains(l, "TEMP B-TREE") && len(f) > 1 && f[1] == "0":
					t.Errorf("a page sorts at the top level: %s", l)
				}
			}
			if objects != 2 || actors != 2 {
				t.Errorf("%d object and %d actor index searches, want 2 and 2", objects, actors)
			}
			t.Logf("plan:\n%s", strings.Join(lines, "\n"))
		})
	}
}
