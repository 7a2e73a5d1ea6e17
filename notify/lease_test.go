package notify

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
)

// spanTransport records when each request of one node was in flight.
type spanTransport struct {
	mu    *sync.Mutex
	spans *[]span
	node  int
}

type span struct {
	node       int
	start, end time.Time
}

func (s spanTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := http.DefaultTransport.RoundTrip(r)
	s.mu.Lock()
	*s.spans = append(*s.spans, span{node: s.node, start: start, end: time.Now()})
	s.mu.Unlock()
	return resp, err
}

// A gateway slower than the lease: the node whose lease lapses while a
// request is in flight gives it up before another node may take the
// lease over, so two nodes never deliver at once (the notifications stay
// in order), and the default lease outlasts a request's timeout.
func TestSlowGatewayNeverTwoDeliverers(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	var mu sync.Mutex
	var spans []span
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := true
	g.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := slow
		slow = false
		mu.Unlock()
		if first { // the first request hangs far past the lease
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}
		g.serve(w, r)
	})
	const lease = 600 * time.Millisecond
	var nodes [2]*Notifier
	for i := range nodes {
		o := Options{Holder: string(rune('A' + i)), Lease: lease, Attempts: 1,
			Client: &http.Client{Transport: spanTransport{mu: &mu, spans: &spans, node: i}}}
		o.Config.Webhook.Timeout = 10 * time.Second
		nodes[i] = testNotifier(t, st, g.srv.URL, o)
	}
	drain(t, nodes[0]) // the cursor at the head
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = nodes[0].Round(ctx) }() // A holds the lease, stuck on audit-1
	time.Sleep(50 * time.Millisecond)
	wg.Add(1)
	go func() { defer wg.Done(); nodes[1].Run(ctx) }() // B waits for the lease
	deadline := time.Now().Add(10 * time.Second)
	for len(g.ids()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, a := range spans {
		for _, b := range spans {
			if a.node != b.node && a.start.Before(b.end) && b.start.Before(a.end) {
				t.Fatalf("node %d and node %d were delivering at once: %+v", a.node, b.node, spans)
			}
		}
	}
	if got := g.ids(); len(got) < 2 || got[0] != "audit-1" || got[1] != "audit-2" {
		t.Fatalf("delivered %v", got)
	}

	// The default lease outlasts the request timeout.
	o := Options{}
	o.Config.Webhook.Timeout = 2 * time.Minute
	if n := testNotifier(t, newMemStore(), g.srv.URL, o); n.lease < 3*o.Config.Webhook.Timeout {
		t.Fatalf("lease %s for a timeout of %s", n.lease, o.Config.Webhook.Timeout)
	}
}

// A flood of reminders (a mass issuance expiring at once) does not hold
// up what happens meanwhile: a round sends at most one batch of them,
// after the audit log's, and the pass goes on where it stopped.
func TestRemindersInterleaved(t *testing.T) {
	st := ownedStore()
	now := time.Now()
	for i := range 7 {
		st.expiring = append(st.expiring, Expiring{Serial: fmt.Sprintf("%04x", i), CivilNumber: "22222222", NotAfter: now.Add(5 * 24 * time.Hour)})
	}
	g := newGateway(t, testSecret)
	o := Options{}
	o.Config.Batch = 2
	o.Config.ExpiryReminders = []time.Duration{168 * time.Hour}
	n := testNotifier(t, st, g.srv.URL, o)
	if busy, err := n.Round(context.Background()); err != nil || !busy {
		t.Fatalf("first round: busy %v, %v", busy, err)
	}
	if got := len(g.ids()); got != 2 {
		t.Fatalf("first round sent %d reminders, want one batch (2)", got)
	}
	st.add(activity.Record{Actor: "officer-1", Action: "certificate.revoke", Object: "0aaa", Outcome: "success"})
	if _, err := n.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := g.ids(); len(got) != 5 || got[2] != "audit-1" {
		t.Fatalf("second round: %v, want the revocation before more reminders", got)
	}
	drain(t, n)
	if got := len(g.ids()); got != 8 || n.lastExpiry.IsZero() {
		t.Fatalf("sent %d (want 7 reminders and the revocation), pass done %v", got, !n.lastExpiry.IsZero())
	}
}

// After a restore the audit log goes on from the backup's head: seqs that
// were delivered before are used again by other records. Their ids differ
// (the record's hash is part of them), so a gateway that sends each id on
// once does not swallow them as duplicates; a record delivered again keeps
// its id.
func TestIDsDifferAfterRestore(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	n := testNotifier(t, st, g.srv.URL, Options{})
	drain(t, n)
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success", Hash: []byte{1, 2, 3, 4, 5, 6, 7, 8}})
	drain(t, n)
	// The restore: the record is gone, the cursor is back before it, and
	// another record takes its seq.
	st.mu.Lock()
	st.recs, st.cursor = st.recs[:0], 0
	st.mu.Unlock()
	st.add(activity.Record{Actor: "officer-1", Action: "certificate.revoke", Object: "0aaa", Outcome: "success", Hash: []byte{9, 9, 9, 9, 9, 9, 9, 9}})
	drain(t, n)
	got := g.ids()
	if len(got) != 2 || got[0] == got[1] || !strings.HasPrefix(got[0], "audit-1-") || !strings.HasPrefix(got[1], "audit-1-") {
		t.Fatalf("ids %v: want two distinct ids for seq 1", got)
	}
	if got[0] != "audit-1-010203040506" {
		t.Fatalf("id %s", got[0])
	}
}

// steppingStore is a memStore that steps a node's wall clock back once it
// reads the audit log (after the node claimed the lease).
type steppingStore struct {
	*memStore
	step func()
}

func (s steppingStore) AuditAfter(ctx context.Context, after int64, limit int) ([]activity.Record, error) {
	s.step()
	return s.memStore.AuditAfter(ctx, after, limit)
}

// A node whose wall clock (Options.Now) is stepped back a minute after it
// claimed the lease still reckons the lease by the time gone since: its
// request to a hanging gateway is cut before the lease lapses, and the
// node that takes over once it lapsed never delivers at the same time.
// Before, the node reckoned its lease by its wall clock and thought it had
// a minute left: both delivered at once.
func TestLeaseNotTimedByWallClock(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	var mu sync.Mutex
	var spans []span
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := true
	g.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := slow
		slow = false
		mu.Unlock()
		if first { // the first request hangs far past the lease
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}
		g.serve(w, r)
	})
	const lease = 600 * time.Millisecond
	var stepped atomic.Bool
	wall := func() time.Time {
		if stepped.Load() {
			return time.Now().Add(-time.Minute)
		}
		return time.Now()
	}
	var nodes [2]*Notifier
	for i := range nodes {
		o := Options{Holder: string(rune('A' + i)), Lease: lease, Attempts: 1,
			Client: &http.Client{Transport: spanTransport{mu: &mu, spans: &spans, node: i}}}
		o.Config.Webhook.Timeout = 10 * time.Second
		var s Store = st
		if i == 0 {
			o.Now = wall
			s = steppingStore{memStore: st, step: func() { stepped.Store(true) }}
		}
		nodes[i] = testNotifier(t, s, g.srv.URL, o)
	}
	drain(t, nodes[1]) // the cursor at the head
	if err := st.ReleaseLease(context.Background(), "B"); err != nil {
		t.Fatal(err)
	}
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = nodes[0].Round(ctx) }() // A holds the lease, its clock stepped back, stuck on audit-1
	time.Sleep(50 * time.Millisecond)
	wg.Add(1)
	go func() { defer wg.Done(); nodes[1].Run(ctx) }() // B waits for the lease
	deadline := time.Now().Add(10 * time.Second)
	for len(g.ids()) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if !stepped.Load() {
		t.Fatal("node A never read the audit log")
	}
	for _, a := range spans {
		for _, b := range spans {
			if a.node != b.node && a.start.Before(b.end) && b.start.Before(a.end) {
				t.Fatalf("node %d and node %d were delivering at once: %+v", a.node, b.node, spans)
			}
		}
	}
	if got := g.ids(); len(got) != 1 || got[0] != "audit-1" {
		t.Fatalf("delivered %v", got)
	}
}
