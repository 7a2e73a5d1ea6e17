package timestamp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{Policy: "not-an-oid"},
		{AcceptedPolicies: []string{"1"}},
		{Accuracy: 2 * time.Second},
		{Accuracy: -time.Millisecond},
		{HashAlgorithms: []string{"SHA-1"}},
		{HashAlgorithms: []string{"MD5"}},
		{MaxRequestBytes: 10},
		// Under arcs 0 and 1 the second arc is at most 39 (X.660): no
		// token could carry these.
		{Policy: "1.40.5"},
		{AcceptedPolicies: []string{"0.77"}},
	}
	for _, c := range bad {
		if _, err := c.validate(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	s, err := Config{}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if !s.policy.Equal(tsp.OIDETSIBestPracticesPolicy) || s.accuracy != time.Second || s.maxRequestBytes != 64<<10 || len(s.hashes) != 6 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestUnitCertificateChecks(t *testing.T) {
	base := func(pki *testPKI) Options {
		ba, _ := NewBlockAllocator(&memBlockStore{}, "x", 10)
		return Options{Certificate: pki.unit, Chain: []*x509.Certificate{pki.ca}, Signer: pki.unitKey, Serials: ba, Recorder: &memRecorder{}, Clock: NewStaticChecker(true)}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serverAuth := []int{1, 3, 6, 1, 5, 5, 7, 3, 1}
	cases := map[string]func() Options{
		"wrong-key": func() Options { o := base(newTestPKI(t, nil)); o.Signer = other; return o },
		"eku-not-critical": func() Options {
			return base(newTestPKI(t, nil, ekuExtension(t, false, oidTimeStampingEKU)))
		},
		"eku-not-alone": func() Options {
			return base(newTestPKI(t, nil, ekuExtension(t, true, oidTimeStampingEKU, serverAuth)))
		},
		"wrong-issuer": func() Options {
			o := base(newTestPKI(t, nil))
			o.Chain = []*x509.Certificate{newTestPKI(t, nil).ca}
			return o
		},
		"no-recorder": func() Options { o := base(newTestPKI(t, nil)); o.Recorder = nil; return o },
	}
	for name, opts := range cases {
		if _, err := New(Config{}, opts()); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	pki := newTestPKI(t, nil)
	o := base(pki)
	o.Now = func() time.Time { return pki.unit.NotAfter.Add(time.Second) }
	if _, err := New(Config{}, o); !errors.Is(err, ErrUnitCertificateExpired) {
		t.Errorf("expired certificate: %v, want ErrUnitCertificateExpired", err)
	}
	// Expiry while running: no token, no serial.
	now := time.Now()
	counting := &countingAllocator{inner: o.Serials}
	o.Serials = counting
	o.Now = func() time.Time { return now }
	a, err := New(Config{}, o)
	if err != nil {
		t.Fatal(err)
	}
	now = pki.unit.NotAfter.Add(time.Millisecond)
	if _, st := a.Respond(t.Context(), goQuery(t, nil), ""); st.FailInfo != tsp.SystemFailure {
		t.Errorf("status %v after the unit certificate expired", st)
	}
	if err := a.Ready(); !errors.Is(err, ErrUnitCertificateExpired) {
		t.Errorf("Ready: %v", err)
	}
	if counting.n.Load() != 0 {
		t.Error("serial consumed with an expired certificate")
	}
}

func TestTokenContent(t *testing.T) {
	tsa := newTestTSA(t, Config{Qualified: true, IncludeTSAName: true, Accuracy: 1500 * time.Microsecond}, nil)
	d := sha512.Sum512([]byte("doc"))
	nonce := new(big.Int).Lsh(big.NewInt(0xabcdef), 150) // > 160 bits
	req := &tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA512, HashParams: []byte{5, 0}, HashedMessage: d[:]}, Nonce: nonce}
	der, _ := req.Marshal()
	token, err := tsa.Issue(context.Background(), der, "agency-7")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tsp.ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	info := tok.Info
	if info.Nonce.Cmp(nonce) != 0 || info.SerialNumber.Int64() != 1 || info.Accuracy != 1500*time.Microsecond ||
		!info.HasQualifiedStatement() || info.TSAName == nil || len(tok.Certificates) != 0 {
		t.Errorf("TSTInfo %+v, %d certificates", info, len(tok.Certificates))
	}
	if time.Since(info.GenTime) > time.Minute || info.GenTime.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("genTime %v", info.GenTime)
	}
	// ESSCertIDv2 hashes the unit certificate with SHA-256, whatever the request's hash.
	h256 := sha256.Sum256(tsa.pki.unit.Raw)
	h512 := sha512.Sum512(tsa.pki.unit.Raw)
	if !contains(token, h256[:]) || contains(token, h512[:]) {
		t.Error("signing-certificate-v2 does not carry the SHA-256 of the unit certificate")
	}
	recs := tsa.recorder.recs
	if len(recs) != 1 || recs[0].Requester != "agency-7" || recs[0].HashAlgorithm != crypto.SHA512 || recs[0].Policy != "0.4.0.2023.1.1" || recs[0].Serial.Int64() != 1 {
		t.Errorf("records %+v", recs)
	}
}

func contains(b, sub []byte) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return true
		}
	}
	return false
}

func TestBlockAllocator(t *testing.T) {
	store := &memBlockStore{}
	seen := sync.Map{}
	var wg sync.WaitGroup
	// Two "instances" and a "restart" share the store: serials never repeat.
	for inst := 0; inst < 3; inst++ {
		a, err := NewBlockAllocator(store, "tsa", 7)
		if err != nil {
			t.Fatal(err)
		}
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					n, err := a.Next(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if _, dup := seen.LoadOrStore(n.Int64(), true); dup {
						t.Errorf("serial %d handed out twice", n)
					}
				}
			}()
		}
	}
	wg.Wait()
	// A block reserved ahead in the background may still be on its way:
	// read and set the store's fields under its lock.
	store.mu.Lock()
	reserves := store.reserves
	store.fail = true
	store.mu.Unlock()
	if reserves > 3*(200/7+2) { // one block each may be reserved ahead
		t.Errorf("%d store round trips for 600 serials in blocks of 7", reserves)
	}
	a, _ := NewBlockAllocator(store, "tsa", 7)
	if _, err := a.Next(context.Background()); err == nil {
		t.Error("Next succeeded with the store down")
	}
	if _, err := NewBlockAllocator(store, "", 7); err == nil {
		t.Error("empty counter name accepted")
	}
}

// stallingBlockStore answers the first reservation and holds the next
// ones until their context ends (a store that hangs).
type stallingBlockStore struct {
	mu       sync.Mutex
	calls    int
	inFlight int
	started  chan struct{} // closed when a held reservation starts
}

func (s *stallingBlockStore) ReserveBlock(ctx context.Context, _ string, size int64) (int64, error) {
	s.mu.Lock()
	s.calls++
	if s.calls == 1 {
		s.mu.Unlock()
		return 1, nil
	}
	s.inFlight++
	s.mu.Unlock()
	close(s.started)
	<-ctx.Done()
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	return 0, ctx.Err()
}

// The block reserved ahead in the background stops with Close: nothing
// still writes to the store once the service closed it (`thiqa serve`
// closes the allocator before the store).
func TestBlockAllocatorCloseStopsTheBackgroundReservation(t *testing.T) {
	store := &stallingBlockStore{started: make(chan struct{})}
	a, err := NewBlockAllocator(store, "tsa", 4)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // the last quarter of the block: the next one is reserved ahead
		if _, err := a.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	<-store.started
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the background reservation")
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.inFlight != 0 {
		t.Fatalf("%d reservations still under way after Close", store.inFlight)
	}
}

type flakyClock struct {
	mu     sync.Mutex
	calls  int
	err    error
	inSync bool
}

func (f *flakyClock) Check(context.Context) (ClockStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return ClockStatus{InSync: f.inSync, Offset: 3 * time.Millisecond, Source: "flaky"}, f.err
}

func TestCachedChecker(t *testing.T) {
	inner := &flakyClock{inSync: true}
	c, err := NewCachedChecker(inner, time.Second, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_800_000_000, 0)
	now := start
	c.now = func() time.Time { return now }
	c.mono = func(time.Time) time.Duration { return now.Sub(start) } // no step
	for i := 0; i < 10; i++ {
		if st, _ := c.Check(t.Context()); !st.InSync {
			t.Fatalf("out of sync: %+v", st)
		}
	}
	if inner.calls != 1 {
		t.Errorf("%d inner checks within one interval, want 1", inner.calls)
	}
	now = now.Add(1500 * time.Millisecond)
	inner.err = errors.New("chronyc: 506 Cannot talk to daemon")
	if st, _ := c.Check(t.Context()); st.InSync || inner.calls != 2 {
		t.Errorf("failed check counted in sync: %+v (calls %d)", st, inner.calls)
	}
	inner.err = nil
	now = now.Add(1500 * time.Millisecond)
	if st, _ := c.Check(t.Context()); !st.InSync {
		t.Errorf("recovered check out of sync: %+v", st)
	}
	// A refresh stuck elsewhere: the cached answer goes stale.
	c.refresh.Lock()
	now = now.Add(4 * time.Second)
	if st, _ := c.Check(t.Context()); st.InSync {
		t.Errorf("stale answer counted in sync: %+v", st)
	}
	c.refresh.Unlock()
	if _, err := NewCachedChecker(inner, time.Second, time.Millisecond); err == nil {
		t.Error("max age below interval accepted")
	}
}

// A wall-clock step between two checks voids the cached answer: the next
// Check runs the inner check at once, and while another caller runs it the
// clock counts as out of sync.
func TestCachedCheckerCatchesClockStep(t *testing.T) {
	for _, step := range []time.Duration{-2 * time.Minute, -time.Hour, 90 * time.Second} {
		t.Run(step.String(), func(t *testing.T) {
			inner := &flakyClock{inSync: true}
			c, err := NewCachedChecker(inner, time.Second, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Unix(1_800_000_000, 0)
			var elapsed, stepped time.Duration
			c.now = func() time.Time { return start.Add(elapsed + stepped) }
			c.mono = func(time.Time) time.Duration { return elapsed }
			if st, _ := c.Check(t.Context()); !st.InSync || inner.calls != 1 {
				t.Fatalf("first check: %+v (calls %d)", st, inner.calls)
			}
			// 100 ms later the wall clock steps; the kernel (or chrony)
			// now says the clock is not in sync.
			elapsed = 100 * time.Millisecond
			stepped = step
			inner.inSync = false
			if st, _ := c.Check(t.Context()); st.InSync || inner.calls != 2 {
				t.Fatalf("after a step of %v: %+v (calls %d), want a new check saying out of sync", step, st, inner.calls)
			}
			// A step seen while another caller re-checks: out of sync.
			inner.inSync = true
			elapsed += 10 * time.Millisecond
			c.Refresh(t.Context())
			stepped += step
			c.refresh.Lock()
			st, _ := c.Check(t.Context())
			c.refresh.Unlock()
			if st.InSync {
				t.Fatalf("step during another caller's check counted in sync: %+v", st)
			}
			// Once re-checked in sync, tokens go out again.
			if st, _ := c.Check(t.Context()); !st.InSync {
				t.Fatalf("re-checked in sync: %+v", st)
			}
		})
	}
}

// TestCachedCheckerCallerDescheduled: a caller descheduled right after it
// read the clock (a loaded server: the Go scheduler or the kernel runs
// others for longer than maxStep) is no clock step; the wall and the
// monotonic time it compares come from one reading, so tokens go out.
func TestCachedCheckerCallerDescheduled(t *testing.T) {
	inner := &flakyClock{inSync: true}
	c, err := NewCachedChecker(inner, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time {
		at := time.Now()
		time.Sleep(3 * maxStep) // descheduled after reading the clock
		return at
	}
	for i := range 3 {
		if st, _ := c.Check(t.Context()); !st.InSync {
			t.Fatalf("check %d: %+v, want in sync (no step happened)", i, st)
		}
	}
	if inner.calls != 1 {
		t.Errorf("%d inner checks within one interval, want 1", inner.calls)
	}
}

func TestChrony(t *testing.T) {
	synced, _ := os.ReadFile("testdata/chronyc-tracking-synced.csv")
	tr, err := ParseChronyTracking(synced)
	if err != nil {
		t.Fatal(err)
	}
	if tr.RefName != "192.168.1.1" || tr.Stratum != 3 || tr.LeapStatus != "Normal" || tr.SystemOffset != -12345*time.Nanosecond ||
		tr.RootDelay != 4283929*time.Nanosecond || tr.RefTime.Unix() != 1795862400 {
		t.Errorf("parsed %+v", tr)
	}
	if want := 12345*time.Nanosecond + 235432*time.Nanosecond + 4283929*time.Nanosecond/2; tr.MaxError() != want {
		t.Errorf("MaxError %v, want %v", tr.MaxError(), want)
	}
	for _, bad := range []string{"", "a,b,c", "C0A80101,x,3,1,NaN,0,0,0,0,0,0,0,0,Normal", "C0A80101,x,99,1,0,0,0,0,0,0,0,0,0,Normal"} {
		if _, err := ParseChronyTracking([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	// The checker itself, with a stand-in chronyc printing the samples.
	for file, want := range map[string]bool{"chronyc-tracking-synced.csv": true, "chronyc-tracking-unsynced.csv": false, "chronyc-tracking-drifted.csv": false} {
		abs, _ := filepath.Abs(filepath.Join("testdata", file))
		script := filepath.Join(t.TempDir(), "chronyc")
		if err := os.WriteFile(script, []byte("#!/bin/sh\nexec cat "+abs+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		st, err := ChronyChecker{Path: script, MaxError: 100 * time.Millisecond}.Check(t.Context())
		if err != nil || st.InSync != want || (!want && st.Reason == "") {
			t.Errorf("%s: %+v, %v; want in sync %t", file, st, err, want)
		}
	}
	if _, err := (ChronyChecker{Path: "/nonexistent/chronyc", MaxError: time.Second}).Check(t.Context()); err == nil {
		t.Error("missing chronyc gave no error")
	}
}

func TestClient(t *testing.T) {
	tsa := newTestTSA(t, Config{AcceptedPolicies: []string{"1.2.3.4.5"}}, nil)
	srv := httptest.NewServer(tsa.Handler(func(r *http.Request) string { return "client-42" }))
	defer srv.Close()
	c, err := NewClient(srv.URL+"/tsa", ClientOptions{Timeout: 5 * time.Second, Policy: "1.2.3.4.5"})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("pdf bytes"))
	token, err := c.Timestamp(t.Context(), d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tsp.ParseToken(token)
	if err != nil || tok.Info.Policy.String() != "1.2.3.4.5" || len(tok.Certificates) != 1 {
		t.Fatalf("token %+v: %v", tok, err)
	}
	if tsa.recorder.recs[0].Requester != "client-42" {
		t.Errorf("requester %q", tsa.recorder.recs[0].Requester)
	}
	// Refusals come back as StatusError.
	tsa.clock.Set(false)
	_, err = c.Timestamp(t.Context(), d[:], crypto.SHA256)
	var se *StatusError
	if !errors.As(err, &se) || se.Status.FailInfo != tsp.TimeNotAvailable {
		t.Errorf("out-of-sync TSA: %v", err)
	}
	tsa.clock.Set(true)
	if _, err := c.Timestamp(t.Context(), d[:31], crypto.SHA256); err == nil {
		t.Error("short digest accepted")
	}
	// A replayed reply (another request's nonce) is refused.
	replay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, _ := tsa.Respond(r.Context(), goQuery(t, func(q *tsp.Request) { q.MessageImprint.HashedMessage = d[:] }), "")
		w.Header().Set("Content-Type", ReplyContentType)
		_, _ = w.Write(resp)
	}))
	defer replay.Close()
	rc, _ := NewClient(replay.URL, ClientOptions{})
	if _, err := rc.Timestamp(t.Context(), d[:], crypto.SHA256); err == nil {
		t.Error("reply with a foreign nonce accepted")
	}
	if _, err := NewClient("ftp://x", ClientOptions{}); err == nil {
		t.Error("ftp URL accepted")
	}
	// Timeouts are honoured.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	sc, _ := NewClient(slow.URL, ClientOptions{Timeout: 100 * time.Millisecond})
	if _, err := sc.Timestamp(t.Context(), d[:], crypto.SHA256); err == nil {
		t.Error("no timeout")
	}
}

var _ = pkix.Name{}

func TestClockConfigAndMetrics(t *testing.T) {
	if _, err := (Config{Clock: ClockConfig{Source: "ntp"}}).NewClockChecker(); err == nil {
		t.Error("unknown clock source accepted")
	}
	if _, err := (Config{Accuracy: 100 * time.Millisecond, Clock: ClockConfig{MaxError: time.Second}}).NewClockChecker(); err == nil {
		t.Error("clock max error above the declared accuracy accepted")
	}
	c, err := Config{Clock: ClockConfig{Source: "static"}}.NewClockChecker()
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Check(t.Context()); !st.InSync {
		t.Errorf("static clock: %+v", st)
	}
	tsa := newTestTSA(t, Config{}, nil)
	if _, st := tsa.Respond(t.Context(), goQuery(t, nil), ""); st.Status != tsp.StatusGranted {
		t.Fatal(st)
	}
	mfs, err := tsa.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"thiqa_tsa_tokens_total", "thiqa_tsa_request_duration_seconds", "thiqa_tsa_clock_offset_seconds", "thiqa_tsa_clock_in_sync", "thiqa_tsa_clock_last_check_seconds", "thiqa_tsa_unit_certificate_not_after_seconds"} {
		if !names[n] {
			t.Errorf("metric %s missing", n)
		}
	}
	for _, mf := range mfs {
		if mf.GetName() == "thiqa_tsa_clock_last_check_seconds" {
			// The request above checked the clock.
			if got := mf.GetMetric()[0].GetGauge().GetValue(); time.Since(time.Unix(int64(got), 0)) > time.Minute {
				t.Errorf("last clock check %v, want about now", got)
			}
		}
	}
	if got := testCounter(t, tsa, "thiqa_tsa_tokens_total", ""); got != 1 {
		t.Errorf("tokens_total %v", got)
	}
}
