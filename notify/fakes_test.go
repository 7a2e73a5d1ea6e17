package notify

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
)

// memStore is an in-memory Store.
type memStore struct {
	mu       sync.Mutex
	recs     []activity.Record
	owners   map[string]Owner
	cursor   int64
	started  bool
	holder   string
	until    time.Time
	expiring []Expiring
	reminded map[string]bool
}

func newMemStore() *memStore {
	return &memStore{owners: map[string]Owner{}, reminded: map[string]bool{}}
}

func (s *memStore) add(r activity.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Seq = int64(len(s.recs) + 1)
	if n := len(s.recs); n > 0 && s.recs[n-1].Seq >= r.Seq {
		r.Seq = s.recs[n-1].Seq + 1
	}
	r.Time = time.Now().UTC()
	s.recs = append(s.recs, r)
}

func (s *memStore) head() int64 {
	if len(s.recs) == 0 {
		return 0
	}
	return s.recs[len(s.recs)-1].Seq
}

func (s *memStore) AuditAfter(_ context.Context, after int64, limit int) ([]activity.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []activity.Record
	for _, r := range s.recs {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *memStore) AuditHeadSeq(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head(), nil
}

func (s *memStore) Owners(_ context.Context, objects []string) (map[string]Owner, error) {
	out := map[string]Owner{}
	for _, o := range objects {
		if x, ok := s.owners[o]; ok {
			out[o] = x
		}
	}
	return out, nil
}

func (s *memStore) ClientNames(context.Context, []string) (map[string]string, error) {
	return map[string]string{"tax": "Tax portal"}, nil
}

// ClaimLease times the lease by the store's clock (time.Now), as the
// database does, whatever the notifier's Options.Now says.
func (s *memStore) ClaimLease(_ context.Context, holder string, lease time.Duration) (bool, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started, s.cursor = true, s.head()
	}
	now := time.Now()
	if s.holder == holder || !s.until.After(now) {
		s.holder, s.until = holder, now.Add(lease)
	}
	return s.holder == holder, s.cursor, nil
}

func (s *memStore) ReleaseLease(_ context.Context, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder == holder {
		s.until = time.Time{}
	}
	return nil
}

func (s *memStore) Advance(_ context.Context, holder string, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder != holder {
		return ErrLeaseLost
	}
	s.cursor = max(s.cursor, seq)
	return nil
}

func (s *memStore) Expiring(_ context.Context, now, deadline time.Time, window string, after Expiring, limit int) ([]Expiring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Expiring
	for _, x := range s.expiring {
		past := after.NotAfter.IsZero() || x.NotAfter.Unix() > after.NotAfter.Unix() ||
			(x.NotAfter.Unix() == after.NotAfter.Unix() && x.Serial > after.Serial)
		if past && x.NotAfter.After(now) && !x.NotAfter.After(deadline) && !s.reminded[x.Serial+"/"+window] && len(out) < limit {
			out = append(out, x)
		}
	}
	return out, nil
}

func (s *memStore) Reminded(_ context.Context, serial string, windows []string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range windows {
		s.reminded[serial+"/"+w] = true
	}
	return nil
}

// gateway is a notification gateway on loopback: it checks each
// signature, records what it took, and answers status(n) (200 when nil).
type gateway struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []Notification
	bodies []string
	// accept are the keys taken besides secret (a rotation's window);
	// signedBy holds, for each notification taken, the fingerprint of the
	// key that signed it, and headers its request's headers.
	accept   [][]byte
	signedBy []string
	headers  []http.Header
	status   func(n Notification) int
	srv      *httptest.Server
}

func newGateway(t *testing.T, secret []byte) *gateway {
	g := &gateway{t: t, secret: secret}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(HeaderTimestamp)
	g.mu.Lock()
	var by string
	for _, k := range append([][]byte{g.secret}, g.accept...) {
		if hmac.Equal([]byte(r.Header.Get(HeaderSignature)), []byte(Sign(k, ts, body))) {
			by = Fingerprint(k)
			break
		}
	}
	g.mu.Unlock()
	if by == "" {
		g.t.Errorf("bad signature on %s", body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		g.t.Errorf("body %s: %v", body, err)
	}
	if r.Header.Get(HeaderIdempotency) != n.ID {
		g.t.Errorf("Idempotency-Key %q, id %q", r.Header.Get(HeaderIdempotency), n.ID)
	}
	g.mu.Lock()
	status := http.StatusOK
	if g.status != nil {
		status = g.status(n)
	}
	if status/100 == 2 {
		g.got = append(g.got, n)
		g.bodies = append(g.bodies, string(body))
		g.signedBy = append(g.signedBy, by)
		g.headers = append(g.headers, r.Header.Clone())
	}
	g.mu.Unlock()
	w.WriteHeader(status)
}

func (g *gateway) ids() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, n := range g.got {
		out = append(out, n.ID)
	}
	return out
}

var testSecret = []byte("0123456789abcdef-test-secret")

// writeSecret writes secret to a file of mode perm.
func writeSecret(t *testing.T, secret []byte, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(p, append(secret, '\n'), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func testNotifier(t *testing.T, st Store, url string, o Options) *Notifier {
	t.Helper()
	o.Config.Enabled = true
	o.Config.Webhook.URL = url
	o.Config.Webhook.SecretFile = "webhook.secret"
	if o.Secret == nil {
		o.Secret = testSecret
	}
	o.Store = st
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	if o.Poll == 0 {
		o.Poll = 5 * time.Millisecond
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain runs rounds until one is idle.
func drain(t *testing.T, n *Notifier) {
	t.Helper()
	for i := 0; i < 1000; i++ {
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
