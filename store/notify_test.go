package store_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/notify"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

var notifySecret = []byte("store-test-webhook-secret-0123456789")

// notifyGateway is the citizens' notification gateway on loopback: it
// checks each signature and keeps what it took.
type notifyGateway struct {
	t      testing.TB
	mu     sync.Mutex
	got    []notify.Notification
	bodies []string
	srv    *httptest.Server
}

func newNotifyGateway(t testing.TB) *notifyGateway {
	g := &notifyGateway{t: t}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !hmac.Equal([]byte(r.Header.Get(notify.HeaderSignature)), []byte(notify.Sign(notifySecret, r.Header.Get(notify.HeaderTimestamp), body))) {
			g.t.Errorf("bad signature on %s", body)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n notify.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			g.t.Errorf("body %s: %v", body, err)
		}
		g.mu.Lock()
		g.got = append(g.got, n)
		g.bodies = append(g.bodies, string(body))
		g.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *notifyGateway) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.got)
}

// newNotifier is a notifier over db delivering to g.
func newNotifier(t testing.TB, db *store.DB, g *notifyGateway, o notify.Options) *notify.Notifier {
	t.Helper()
	o.Config.Enabled = true
	o.Config.Webhook = notify.WebhookConfig{URL: g.srv.URL, SecretFile: "unused"}
	o.Secret, o.Store = notifySecret, db.Notify()
	if o.Poll == 0 {
		o.Poll = 5 * time.Millisecond
	}
	n, err := notify.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func drainNotifier(t testing.TB, n *notify.Notifier) {
	t.Helper()
	for range 100000 {
		busy, err := n.Round(context.Background())
		if err != nil {
			t.Fatalf("round: %v", err)
		}
		if !busy {
			return
		}
	}
	t.Fatal("never idle")
}

// What happens to citizen A's digital ID (a certificate issued, the PIN
// reset, the certificate revoked, a login) is told to A, by role and
// never by name or address, and none of it to B; B is told of B's own.
// Staff whose subject equals A's civil number revoking B's certificate is
// not A's doing: B is told, A is not.
func TestNotifyCitizens(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			a := newAuditedAuthority(t, db.Certificates(nil), log)
			g := newNotifyGateway(t)
			n := newNotifier(t, db, g, notify.Options{})
			drainNotifier(t, n) // the lease, the cursor at the head
			if _, err := log.Append(ctx, audit.Entry{Actor: "thiqa-serve", Action: "service.start", Object: "x", Outcome: "success"}); err != nil {
				t.Fatal(err)
			}
			issue := func(civil, cred string) string {
				req := citizenRequest(t)
				req.Subject["civilNumber"], req.CredentialID = civil, cred
				got, err := a.Issue(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				return got.Serial
			}
			serialA, serialB := issue("11111111", "cred-a"), issue("22222222", "cred-b")
			officer := map[string]any{"roles": []string{"registration-officer"}, "subject": "officer-1", "ip": "10.1.2.3"}
			for _, e := range []audit.Entry{
				{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success",
					Details: map[string]any{"credential": "cred-a", "kind": "citizen", "owner": "Aisha Al Harthy"}},
				{Actor: "officer-1", Action: "certificate.revoke", Object: serialA, Outcome: "success",
					Details: map[string]any{"ca": "citizen", "reason": "keyCompromise", "subject": "CN=Aisha Al Harthy", "caller": officer}},
				{Actor: "officer-1", Action: "certificate.revoke", Object: "profile:x", Outcome: "refused", Details: map[string]any{"caller": officer}},
				{Actor: "11111111", Action: "certificate.revoke", Object: serialB, Outcome: "success",
					Details: map[string]any{"reason": "superseded", "subject": "CN=Aisha Al Harthy"}},
				{Actor: "citizen:11111111", Action: "oidc.login", Object: "tax-client", Outcome: "success", Details: map[string]any{"method": "mtls", "ip": "192.0.2.7"}},
				{Actor: "11111111", Action: "document.sign", Object: "cred-a", Outcome: "success"},
			} {
				if _, err := log.Append(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			drainNotifier(t, n)
			var forA, forB []string
			for _, x := range g.got {
				desc := x.Event + ":" + x.Serial + ":" + fmt.Sprint(x.Details["by"])
				switch x.CivilNumber {
				case "11111111":
					forA = append(forA, desc)
				case "22222222":
					forB = append(forB, desc)
				default:
					t.Errorf("a notification for %q: %+v", x.CivilNumber, x)
				}
				if x.Description.EN == "" || x.Description.AR == "" || !strings.HasPrefix(x.ID, "audit-") || x.Time.IsZero() {
					t.Errorf("notification %+v", x)
				}
			}
			wantA := []string{"certificate.issue:" + serialA + ":someone-else", "credential.pin.reset::registration-officer",
				"certificate.revoke:" + serialA + ":registration-officer", "oidc.login::you"}
			wantB := []string{"certificate.issue:" + serialB + ":someone-else", "certificate.revoke:" + serialB + ":someone-else"}
			if !slices.Equal(forA, wantA) || !slices.Equal(forB, wantB) {
				t.Fatalf("A got %v, want %v\nB got %v, want %v", forA, wantA, forB, wantB)
			}
			for _, b := range g.bodies {
				for _, secret := range []string{"Aisha", "Harthy", "officer-1", "10.1.2.3", "192.0.2.7", "subject", "owner"} {
					if strings.Contains(b, secret) {
						t.Errorf("%q in a notification: %s", secret, b)
					}
				}
			}
		})
	}
}

// Reminders: each valid certificate of a citizen expiring within a window
// is reminded once, for the smallest window it is in, also after a
// restart; a revoked one is not.
func TestNotifyExpiryReminders(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			a := newAuthority(t, db.Certificates(nil))
			var serials []string
			for _, civil := range []string{"11111111", "22222222"} {
				req := citizenRequest(t)
				req.Subject["civilNumber"] = civil
				got, err := a.Issue(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				serials = append(serials, got.Serial)
			}
			if _, err := db.Revocations().Revoke(ctx, serials[1], 1, "officer-1", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			g := newNotifyGateway(t)
			// Windows far enough for a fresh certificate (the CA lives 5 years).
			windows := []time.Duration{87600 * time.Hour, 70080 * time.Hour}
			for i := range 2 { // a restart: a new node, the same database
				n := newNotifier(t, db, g, notify.Options{Config: notify.Config{ExpiryReminders: windows}, Holder: fmt.Sprint("node-", i)})
				drainNotifier(t, n)
				if err := db.Notify().ReleaseLease(ctx, fmt.Sprint("node-", i)); err != nil {
					t.Fatal(err)
				}
			}
			if len(g.got) != 1 || g.got[0].ID != "expiry-"+serials[0]+"-70080h" || g.got[0].CivilNumber != "11111111" ||
				g.got[0].Event != notify.EventExpiring || g.got[0].Serial != serials[0] {
				t.Fatalf("reminders: %+v", g.got)
			}
		})
	}
}

// Two nodes on one database: one holds the lease and delivers, each
// notification once.
func TestNotifyTwoNodes(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			g := newNotifyGateway(t)
			var sent [2]atomic.Int64
			var nodes [2]*notify.Notifier
			for i := range nodes {
				client := &http.Client{Transport: countingTransport{n: &sent[i]}}
				nodes[i] = newNotifier(t, db, g, notify.Options{Holder: fmt.Sprint("node-", i), Client: client})
			}
			drainNotifier(t, nodes[0]) // the cursor at the head
			runCtx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for _, n := range nodes {
				wg.Add(1)
				go func() { defer wg.Done(); n.Run(runCtx) }()
			}
			const total = 40
			for i := range total {
				if _, err := log.Append(ctx, audit.Entry{Actor: fmt.Sprintf("citizen:%08d", i%7), Action: "oidc.login", Object: "tax", Outcome: "success"}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for g.count() < total && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // time for a second delivery, were there one
			stop()
			wg.Wait()
			seen := map[string]int{}
			for _, x := range g.got {
				seen[x.ID]++
			}
			if len(g.got) != total || len(seen) != total {
				t.Fatalf("%d delivered, %d distinct, want %d", len(g.got), len(seen), total)
			}
			if a, b := sent[0].Load(), sent[1].Load(); !(a == total && b == 0) && !(a == 0 && b == total) {
				t.Fatalf("node 0 sent %d, node 1 %d: want one node to send all", a, b)
			}
		})
	}
}

// countingTransport counts the requests of one node.
type countingTransport struct{ n *atomic.Int64 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// A certificate renewed (the renewal kept it valid: no superseder, or
// RenewRequest.KeepReplaced) is not to be renewed again: its holder is
// reminded of the new certificate's expiry only, as the store's own
// expiry queries see it.
func TestNotifyExpiryRemindersSkipRenewed(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(nil)
			a := newAuthority(t, certs)
			rn, err := ca.NewRenewer(ca.RenewerConfig{Authority: a, Store: certs}) // no superseder: the old one stays valid
			if err != nil {
				t.Fatal(err)
			}
			req := citizenRequest(t)
			req.Subject["civilNumber"] = "12345678"
			old, err := a.Issue(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			citizen := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
			nw, err := rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, Caller: citizen})
			if err != nil {
				t.Fatal(err)
			}
			g := newNotifyGateway(t)
			n := newNotifier(t, db, g, notify.Options{Config: notify.Config{ExpiryReminders: []time.Duration{87600 * time.Hour}}})
			drainNotifier(t, n)
			if len(g.got) != 1 || g.got[0].Serial != nw.Serial {
				t.Fatalf("reminders %+v, want one of the renewal %s (not of %s, which it replaces)", g.got, nw.Serial, old.Serial)
			}
		})
	}
}

// A pass of the reminders pages through a window by (notAfter, serial),
// one batch a round: certificates issued within the same second (the
// same notAfter) are each reminded once, none skipped.
func TestNotifyExpiryRemindersPaged(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			a := newAuthority(t, db.Certificates(nil))
			want := map[string]bool{}
			for i := range 5 {
				req := citizenRequest(t)
				req.Subject["civilNumber"] = fmt.Sprintf("1111111%d", i)
				got, err := a.Issue(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				want[got.Serial] = true
			}
			g := newNotifyGateway(t)
			n := newNotifier(t, db, g, notify.Options{Config: notify.Config{Batch: 2, ExpiryReminders: []time.Duration{87600 * time.Hour}}})
			rounds := 0
			for busy := true; busy; rounds++ {
				var err error
				if busy, err = n.Round(ctx); err != nil {
					t.Fatal(err)
				}
			}
			seen := map[string]int{}
			for _, x := range g.got {
				seen[x.Serial]++
			}
			if len(g.got) != len(want) || len(seen) != len(want) || rounds < 3 {
				t.Fatalf("%d reminders in %d rounds: %v, want each of %v once, two a round", len(g.got), rounds, seen, want)
			}
		})
	}
}

// A notification's id carries the start of its record's hash, read with
// the record: after a restore, whose log goes on from the backup's head,
// a seq delivered before names another record, and another id.
func TestNotifyIDCarriesHash(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			g := newNotifyGateway(t)
			n := newNotifier(t, db, g, notify.Options{})
			drainNotifier(t, n)
			rec, err := log.Append(ctx, audit.Entry{Actor: "citizen:11111111", Action: "oidc.login", Object: "tax", Outcome: "success"})
			if err != nil {
				t.Fatal(err)
			}
			drainNotifier(t, n)
			if want := fmt.Sprintf("audit-%d-%x", rec.Seq, rec.Hash[:6]); len(g.got) != 1 || g.got[0].ID != want {
				t.Fatalf("notifications %+v, want id %s", g.got, want)
			}
		})
	}
}

// The tail never skips a record: the audit log's seqs are handed out under
// the head's lock (SELECT … FOR UPDATE, or the one-statement move of the
// head, on PostgreSQL; the write lock on SQLite), and a record becomes
// visible before the next seq can be taken, so no record with a lower seq
// commits after a higher one was read. Two nodes' logs append at once
// while the notifier tails: every record is told, once.
func TestNotifyNoneSkippedUnderConcurrentAppends(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := d.NewConfig(t)
			dbs := []*store.DB{storetest.Open(t, cfg), storetest.Open(t, cfg)}
			g := newNotifyGateway(t)
			n := newNotifier(t, dbs[0], g, notify.Options{Config: notify.Config{Batch: 7}})
			drainNotifier(t, n)
			const writers, each = 4, 40
			var wg sync.WaitGroup
			for w := range writers {
				log := audit.New(dbs[w%2], slog.New(slog.DiscardHandler), nil, audit.Options{})
				defer log.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						if _, err := log.Append(ctx, audit.Entry{Actor: fmt.Sprintf("citizen:%08d", w*each+i), Action: "oidc.login", Object: "tax", Outcome: "success"}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for tailing := true; tailing; {
				select {
				case <-done:
					tailing = false
				default:
				}
				if _, err := n.Round(ctx); err != nil {
					t.Fatal(err)
				}
			}
			drainNotifier(t, n)
			seen := map[string]bool{}
			for _, x := range g.got {
				seen[x.CivilNumber] = true
			}
			if len(seen) != writers*each {
				t.Fatalf("%d citizens told of %d logins (%d notifications)", len(seen), writers*each, len(g.got))
			}
		})
	}
}
