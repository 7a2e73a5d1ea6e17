package hsm

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/outage"
)

// hangs makes the signing calls of tok hang, like a PKCS#11 call to a
// network HSM whose link died: while armed, each signing call blocks
// inside the token's goroutine until release, and reports its session.
type hangs struct {
	armed    atomic.Bool
	release  chan struct{}
	sessions chan pkcs11.SessionHandle // sessions of the hung calls
	mu       sync.Mutex
	used     map[pkcs11.SessionHandle]int // every session a signature used
	// releaseAll lets every hung call, and those to come, return.
	releaseAll func()
}

func hangSigning(t *testing.T, tok *Token) *hangs {
	t.Helper()
	h := &hangs{release: make(chan struct{}), sessions: make(chan pkcs11.SessionHandle, 64),
		used: map[pkcs11.SessionHandle]int{}}
	tok.testHookSign = func(s *session) {
		h.mu.Lock()
		h.used[s.h]++
		h.mu.Unlock()
		if h.armed.Load() {
			h.sessions <- s.h
			<-h.release
		}
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(h.release) }) })
	h.releaseAll = func() { once.Do(func() { close(h.release) }) }
	return h
}

// waitOutstanding waits until tok has n calls abandoned and not returned.
func waitOutstanding(t *testing.T, tok *Token, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tok.hungMu.Lock()
		got := len(tok.hung)
		tok.hungMu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls outstanding, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCallTimeoutHungSign: a signing call that hangs answers its caller
// within the call timeout with an error marked as an outage; other callers
// still sign; /readyz's Ping fails while the call is outstanding past the
// timeout; the hung session is never reused; once the call returns, the
// slot is free again, the session closed, and everything works.
func TestCallTimeoutHungSign(t *testing.T) {
	const timeout = 300 * time.Millisecond
	reg := newRegistry()
	tok := newTestToken(t, Config{PoolSize: 3, CallTimeout: timeout, Registerer: reg})
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	h := hangSigning(t, tok)
	mustSignVerify(t, sg) // a session in the pool before the hang

	h.armed.Store(true)
	start := time.Now()
	_, err = sg.Sign(nil, testDigest[:], cryptoSHA256)
	took := time.Since(start)
	h.armed.Store(false)
	if !outage.Is(err) || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung Sign: %v (marked %v), want a marked ErrTimeout", err, outage.Is(err))
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Fatalf("hung Sign answered after %s, want about the call timeout %s", took, timeout)
	}
	hungSession := <-h.sessions
	uses := func() int { h.mu.Lock(); defer h.mu.Unlock(); return h.used[hungSession] }
	hungUses := uses()
	if got := tok.pool.inUse.Load(); got != 1 {
		t.Fatalf("%d sessions in use while one call hangs, want 1 (it keeps its slot)", got)
	}
	if v := testutil.ToFloat64(tok.m.outstanding); v != 1 {
		t.Errorf("thiqa_hsm_calls_outstanding = %v, want 1", v)
	}
	if v := testutil.ToFloat64(tok.m.timeouts); v != 1 {
		t.Errorf("thiqa_hsm_call_timeouts_total = %v, want 1", v)
	}

	// Others still sign, never with the hung session.
	for range 10 {
		mustSignVerify(t, sg)
	}
	// /readyz: not ready while the call is outstanding past the timeout.
	time.Sleep(timeout - time.Since(start) + 50*time.Millisecond)
	if err := tok.Ping(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Ping with a call hung past the timeout: %v, want ErrTimeout", err)
	}

	h.releaseAll()
	waitOutstanding(t, tok, 0)
	if got := tok.pool.inUse.Load(); got != 0 {
		t.Fatalf("%d sessions in use after the hung call returned, want 0", got)
	}
	if v := testutil.ToFloat64(tok.m.outstanding); v != 0 {
		t.Errorf("thiqa_hsm_calls_outstanding = %v after it returned, want 0", v)
	}
	if _, err := tok.p.GetSessionInfo(hungSession); !isRV(err, pkcs11.CKR_SESSION_HANDLE_INVALID) {
		t.Errorf("the hung call's session after it returned: %v, want it closed", err)
	}
	if err := tok.Ping(ctx); err != nil {
		t.Fatalf("Ping after the call returned: %v", err)
	}
	for range 10 {
		mustSignVerify(t, sg)
	}
	if got := uses(); got != hungUses {
		t.Fatalf("the hung session signed %d more times after its call", got-hungUses)
	}
}

// TestCallTimeoutCallerDeadline: SignContext ends at the caller's deadline
// when it is earlier than the call timeout; a caller that cancels gets its
// cancellation, unmarked, and is no timeout in thiqa_hsm_call_timeouts_total
// (a client that hangs up is no stalled token), though its call is
// outstanding as well.
func TestCallTimeoutCallerDeadline(t *testing.T) {
	tok := newTestToken(t, Config{PoolSize: 2, CallTimeout: time.Minute, Registerer: newRegistry()})
	sg, err := tok.GenerateKey(context.Background(), "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	h := hangSigning(t, tok)
	h.armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = sg.SignContext(ctx, testDigest[:], cryptoSHA256)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("SignContext with a 150ms deadline answered after %s", took)
	}
	if !outage.Is(err) || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung SignContext past the caller's deadline: %v (marked %v)", err, outage.Is(err))
	}
	<-h.sessions
	// Outstanding for less than the call timeout: the node stays ready.
	if err := tok.hungErr(); err != nil {
		t.Fatalf("one call outstanding for less than the call timeout: %v", err)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	go func() { <-h.sessions; ccancel() }()
	_, err = sg.SignContext(cctx, testDigest[:], cryptoSHA256)
	if !errors.Is(err, context.Canceled) || outage.Is(err) {
		t.Fatalf("hung SignContext cancelled by the caller: %v (marked %v)", err, outage.Is(err))
	}
	if v := testutil.ToFloat64(tok.m.timeouts); v != 1 {
		t.Errorf("thiqa_hsm_call_timeouts_total = %v after a deadline and a cancellation, want 1", v)
	}
	if v := testutil.ToFloat64(tok.m.outstanding); v != 2 {
		t.Errorf("thiqa_hsm_calls_outstanding = %v, want 2", v)
	}
	// Both sessions are held by hung calls: no session is usable. (The
	// readiness check bounds Ping by 3s.)
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer rcancel()
	if err := tok.Ping(rctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Ping with every session held by a hung call: %v", err)
	}
	h.armed.Store(false)
	h.releaseAll()
	waitOutstanding(t, tok, 0)
	mustSignVerify(t, sg)
	if err := tok.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after the calls returned: %v", err)
	}
}

// TestCallTimeoutAllSessionsHung: with every session held by a hung call,
// a Sign waits for a session at most the call timeout and fails marked,
// and the pool never opens more sessions than its bound.
func TestCallTimeoutAllSessionsHung(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tok := newTestToken(t, Config{PoolSize: 2, CallTimeout: timeout})
	sg, err := tok.GenerateKey(context.Background(), "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	h := hangSigning(t, tok)
	h.armed.Store(true)
	for range tok.pool.size() {
		if _, err := sg.Sign(nil, testDigest[:], cryptoSHA256); !errors.Is(err, ErrTimeout) {
			t.Fatalf("hung Sign: %v", err)
		}
	}
	opened := tok.opened.Load()
	start := time.Now()
	_, err = sg.Sign(nil, testDigest[:], cryptoSHA256)
	if took := time.Since(start); took > timeout+2*time.Second {
		t.Fatalf("Sign with every session hung answered after %s", took)
	}
	if !outage.Is(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sign with every session hung: %v (marked %v)", err, outage.Is(err))
	}
	if tok.opened.Load() != opened {
		t.Fatal("a session was opened beyond the pool bound")
	}
	if err := tok.Ping(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Ping with every session hung: %v", err)
	}
	h.armed.Store(false)
	h.releaseAll()
	waitOutstanding(t, tok, 0)
	if got := tok.pool.inUse.Load(); got != 0 {
		t.Fatalf("%d sessions in use after the hung calls returned", got)
	}
	mustSignVerify(t, sg)
	if err := tok.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after the calls returned: %v", err)
	}
}

// TestCallTimeoutClose: Close does not hang on a call the token does not
// answer: it says so within the call timeout, and the Token closes once
// the call returns.
func TestCallTimeoutClose(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tok := newTestToken(t, Config{PoolSize: 2, CallTimeout: timeout})
	sg, err := tok.GenerateKey(context.Background(), "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	h := hangSigning(t, tok)
	h.armed.Store(true)
	if _, err := sg.Sign(nil, testDigest[:], cryptoSHA256); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hung Sign: %v", err)
	}
	start := time.Now()
	if err := tok.Close(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Close with a hung call: %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > timeout+2*time.Second {
		t.Fatalf("Close with a hung call returned after %s", took)
	}
	h.releaseAll()
	waitOutstanding(t, tok, 0)
	if err := tok.Close(); err != nil {
		t.Fatalf("Close after the call returned: %v", err)
	}
	if _, err := sg.Sign(nil, testDigest[:], cryptoSHA256); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sign after Close: %v, want ErrClosed", err)
	}
}

// TestCallReturnsAsItIsAbandoned: a hung call that returns just as its
// caller gives up (between the caller's decision and its counting the call
// as hung) is still forgotten once: nothing stays counted as hung, and
// Ping (so /readyz) keeps working after the call timeout.
func TestCallReturnsAsItIsAbandoned(t *testing.T) {
	const timeout = 200 * time.Millisecond
	reg := newRegistry()
	tok := newTestToken(t, Config{PoolSize: 2, CallTimeout: timeout, Registerer: reg})
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	h := hangSigning(t, tok)
	mustSignVerify(t, sg)
	tok.testHookAbandoned = func() {
		// The call returns now, and has every chance to finish before
		// the caller counts it.
		h.releaseAll()
		time.Sleep(100 * time.Millisecond)
	}
	h.armed.Store(true)
	if _, err := sg.Sign(nil, testDigest[:], cryptoSHA256); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hung Sign: %v, want ErrTimeout", err)
	}
	h.armed.Store(false)
	tok.testHookAbandoned = nil
	waitOutstanding(t, tok, 0)
	if v := testutil.ToFloat64(tok.m.outstanding); v != 0 {
		t.Errorf("thiqa_hsm_calls_outstanding = %v, want 0", v)
	}
	time.Sleep(timeout + 50*time.Millisecond)
	if err := tok.Ping(ctx); err != nil {
		t.Fatalf("Ping after the call returned: %v", err)
	}
	mustSignVerify(t, sg)
}

// TestPanicEndsTheOperationNotTheProcess: code that panics during an
// operation (which runs on a goroutine of its own, where a panic would end
// the process) fails that operation with ErrPanicked, unmarked; its
// session is closed, and the next operations sign.
func TestPanicEndsTheOperationNotTheProcess(t *testing.T) {
	tok := newTestToken(t, Config{PoolSize: 2, CallTimeout: 5 * time.Second, Registerer: newRegistry()})
	ctx := context.Background()
	sg, err := tok.GenerateKey(ctx, "ec", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, sg)
	var panicked atomic.Bool
	var hs pkcs11.SessionHandle
	tok.testHookSign = func(s *session) {
		if panicked.CompareAndSwap(false, true) {
			hs = s.h
			panic("boom")
		}
	}
	if _, err := sg.Sign(nil, testDigest[:], cryptoSHA256); !errors.Is(err, ErrPanicked) || outage.Is(err) {
		t.Fatalf("Sign that panicked: %v, want ErrPanicked, unmarked", err)
	}
	if _, err := tok.p.GetSessionInfo(hs); !isRV(err, pkcs11.CKR_SESSION_HANDLE_INVALID) {
		t.Errorf("the session of the operation that panicked: %v, want it closed", err)
	}
	if got := tok.pool.inUse.Load(); got != 0 {
		t.Errorf("%d sessions in use after the panic, want 0", got)
	}
	for range 5 {
		mustSignVerify(t, sg)
	}
}
