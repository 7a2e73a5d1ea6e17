package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// issueFor issues a citizen certificate naming civil, with commonName cn.
func issueFor(t *testing.T, a *ca.Authority, civil, cn string) *ca.Issued {
	t.Helper()
	req := citizenRequest(t)
	req.Subject["civilNumber"] = civil
	req.Subject["commonName"] = cn
	got, err := a.Issue(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// holderOf reads a certificate's holder_civil ("<NULL>" when NULL).
func holderOf(t *testing.T, db *store.DB, serial string) string {
	t.Helper()
	lines, err := db.QueryLines(ctxT(t), "SELECT COALESCE(holder_civil, '<NULL>') FROM certificates WHERE serial = ?", serial)
	if err != nil || len(lines) != 1 {
		t.Fatalf("holder_civil of %s: %v %v", serial, lines, err)
	}
	return strings.TrimSpace(lines[0])
}

// holdings returns the serials of Holdings(civil, limit).
func holdings(t *testing.T, db *store.DB, civil string, limit int) []string {
	t.Helper()
	got, err := db.Activity().Holdings(ctxT(t), civil, limit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range got {
		out = append(out, h.Serial)
	}
	return out
}

// insertPre0020 inserts n issued certificates as a release before
// migration 0020 wrote them (no holder_civil), each with der and subject,
// issued before every certificate issued so far.
func insertPre0020(t *testing.T, db *store.DB, from, n int, der []byte, subject string) []string {
	t.Helper()
	ctx := ctxT(t)
	var serials []string
	at := time.Now().Add(-time.Hour)
	for start := 0; start < n; start += 500 {
		end := min(start+500, n)
		var q strings.Builder
		var args []any
		q.WriteString(`INSERT INTO certificates (serial, ca, profile, state, tbs_hash, key_hash, requested_by, not_after, created_at,
			der, subject, not_before, issued_at) VALUES `)
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(",")
			}
			key := make([]byte, 8)
			binary.BigEndian.PutUint64(key, uint64(from+i))
			serial := fmt.Sprintf("0f%08x", from+i)
			serials = append(serials, serial)
			q.WriteString("(?, 'citizen', 'pre-0020', 'issued', ?, ?, 'officer-1', ?, ?, ?, ?, ?, ?)")
			args = append(args, serial, key, key, at.Add(time.Hour*24*365).Unix(), at.UnixNano(), der, subject, at.Unix(),
				at.Add(-time.Duration(i)*time.Millisecond).UnixNano())
		}
		if err := db.ExecTx(ctx, q.String(), args...); err != nil {
			t.Fatal(err)
		}
	}
	return serials
}

// Every certificate the CA stores records its holder's civil number
// exactly (the subject's serialNumber), and a citizen's holdings are those
// of their number only: not 1234567's for 123456, nor a common name "Ali-123456"
// for 123456 (both match the subject text "-123456").
func TestHolderCivilOnIssue(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			a := newAuthority(t, db.Certificates(nil))
			mine := issueFor(t, a, "123456", "Aisha Al Harthy")
			longer := issueFor(t, a, "1234567", "Aisha Al Harthy")
			lookalike := issueFor(t, a, "999999", "Ali-123456")
			for serial, want := range map[string]string{mine.Serial: "123456", longer.Serial: "1234567", lookalike.Serial: "999999"} {
				if got := holderOf(t, db, serial); got != want {
					t.Errorf("holder_civil of %s: %q, want %q", serial, got, want)
				}
			}
			if got := holdings(t, db, "123456", 10); !slices.Equal(got, []string{mine.Serial}) {
				t.Errorf("holdings of 123456: %v, want only %s (not %s, %s)", got, mine.Serial, longer.Serial, lookalike.Serial)
			}
			if got := holdings(t, db, "999999", 10); !slices.Equal(got, []string{lookalike.Serial}) {
				t.Errorf("holdings of 999999: %v", got)
			}
		})
	}
}

// An upgraded deployment: certificates stored without holder_civil (more
// than one batch of them, one whose DER does not parse) are filled by the
// backfill that Open starts, by two nodes at once; the holdings are right
// before, during and after, never another number's.
func TestHolderBackfill(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := d.NewConfig(t)
			db, err := store.Open(ctx, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := newAuthority(t, db.Certificates(nil))
			mine := issueFor(t, a, "123456", "Aisha Al Harthy")
			longer := issueFor(t, a, "1234567", "Aisha Al Harthy")
			lookalike := issueFor(t, a, "999999", "Ali-123456")
			// As a release before 0020 left them: no holder_civil.
			if err := db.ExecTx(ctx, "UPDATE certificates SET holder_civil = NULL"); err != nil {
				t.Fatal(err)
			}
			old := insertPre0020(t, db, 0, 2500, longer.Certificate.Raw, longer.Certificate.Subject.String())
			broken := insertPre0020(t, db, 2500, 1, []byte("not a certificate"), "SERIALNUMBER=IDCOM-123456,CN=Broken")[0]

			check := func(when string) {
				t.Helper()
				if got := holdings(t, db, "123456", 10); !slices.Equal(got, []string{mine.Serial}) {
					t.Errorf("%s: holdings of 123456: %v, want only %s", when, got, mine.Serial)
				}
				if got := holdings(t, db, "999999", 10); !slices.Equal(got, []string{lookalike.Serial}) {
					t.Errorf("%s: holdings of 999999: %v", when, got)
				}
				if got := holdings(t, db, "1234567", 3); !slices.Equal(got, []string{longer.Serial, old[0], old[1]}) {
					t.Errorf("%s: the newest 3 holdings of 1234567: %v", when, got)
				}
			}
			check("before the backfill")
			// Half filled: the first batch only.
			if err := db.ExecTx(ctx, "UPDATE certificates SET holder_civil = '1234567' WHERE serial IN (?, ?)", old[0], old[2]); err != nil {
				t.Fatal(err)
			}
			check("during the backfill")
			db.Close()

			// Two nodes start at once; each Open finds rows to fill.
			var wg sync.WaitGroup
			dbs := make([]*store.DB, 2)
			ran := make([]bool, 2)
			for i := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					x, err := store.Open(ctx, cfg, nil)
					if err != nil {
						t.Error(err)
						return
					}
					dbs[i] = x
					ran[i] = x.WaitHolderFill()
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			db = dbs[0]
			t.Cleanup(func() { dbs[0].Close(); dbs[1].Close() })
			if !ran[0] && !ran[1] {
				t.Fatal("no Open started a backfill")
			}
			if n, err := db.QueryInt64(ctx, "SELECT count(*) FROM certificates WHERE holder_civil IS NULL AND state = 'issued'"); err != nil || n != 0 {
				t.Fatalf("%d certificates left unfilled (%v)", n, err)
			}
			if n, err := db.QueryInt64(ctx, "SELECT count(*) FROM certificates WHERE holder_civil = '1234567'"); err != nil || n != 2501 {
				t.Fatalf("%d certificates of 1234567, want 2501 (%v)", n, err)
			}
			for serial, want := range map[string]string{mine.Serial: "123456", lookalike.Serial: "999999", broken: ""} {
				if got := holderOf(t, db, serial); got != want {
					t.Errorf("holder_civil of %s: %q, want %q", serial, got, want)
				}
			}
			check("after the backfill")
			// Idempotent: a third run finds nothing.
			if n, err := db.FillHolders(ctx); err != nil || n != 0 {
				t.Fatalf("a second backfill filled %d (%v)", n, err)
			}
			if x, err := store.Open(ctx, cfg, nil); err != nil || x.WaitHolderFill() {
				t.Fatalf("an Open after the backfill started another (%v)", err)
			} else {
				x.Close()
			}
		})
	}
}

// TestHoldingsQueryPlan checks that a citizen's certificates are read
// through certificates_holder (both the filled rows and those still
// NULL), never by a scan of the table: a national CA holds millions.
func TestHoldingsQueryPlan(t *testing.T) {
	const n = 5000
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			insertPre0020(t, db, 0, n, []byte{0x30}, "SERIALNUMBER=IDCOM-1,CN=X")
			if err := db.ExecTx(ctx, "UPDATE certificates SET holder_civil = CAST(1000 + issued_at % 997 AS TEXT)"); err != nil {
				t.Fatal(err)
			}
			stmt, args := store.HoldingsQuery("1001", 100)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE certificates"); err != nil {
					t.Fatal(err)
				}
				lines, err := db.QueryLines(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+stmt, args...)
				if err != nil {
					t.Fatal(err)
				}
				plan := strings.Join(lines, "\n")
				if strings.Contains(plan, "Seq Scan on certificates") || strings.Count(plan, "certificates_holder") != 2 {
					t.Errorf("a scan of certificates, or not both branches by certificates_holder:\n%s", plan)
				}
				t.Logf("plan:\n%s", plan)
				return
			}
			lines, err := db.QueryLines(ctx, "EXPLAIN QUERY PLAN "+stmt, args...)
			if err != nil {
				t.Fatal(err)
			}
			searches := 0
			for _, l := range lines {
				switch {
				case strings.Contains(l, "SEARCH certificates USING INDEX certificates_holder (holder_civil=?"):
					searches++
				case strings.Contains(l, "certificates"):
					t.Errorf("a read of certificates other than by certificates_holder: %s", l)
				}
			}
			if searches != 2 {
				t.Errorf("%d searches of certificates_holder, want 2", searches)
			}
			t.Logf("plan:\n%s", strings.Join(lines, "\n"))
		})
	}
}
