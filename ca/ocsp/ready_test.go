package ocsp

import (
	"context"
	"crypto"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// probeKey counts a responder key's signatures and fails them while fail
// is set, as a key gone from the token does.
type probeKey struct {
	crypto.Signer
	n    *atomic.Int64
	fail *atomic.Bool
}

func (k probeKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.n.Add(1)
	if k.fail.Load() {
		return nil, errors.New("hsm: signing with key \"ocsp-citizen-1\": pkcs11: 0x60: CKR_KEY_HANDLE_INVALID")
	}
	return k.Signer.Sign(rand, digest, opts)
}

// hangingKey is a responder key whose token answers no signature until
// release is closed.
type hangingKey struct {
	crypto.Signer
	release chan struct{}
}

func (k hangingKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	<-k.release
	return nil, errors.New("too late")
}

// countingHang is a hangingKey that counts the signatures asked of it.
type countingHang struct {
	hangingKey
	n *atomic.Int64
}

func (k countingHang) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.n.Add(1)
	return k.hangingKey.Sign(rand, digest, opts)
}

// TestReady: the responder says it can sign fresh responses while its
// delegated responder can, and names the CA, the serial and the reason
// when it cannot: revoked and not renewed yet, expired, not valid yet
// with no previous responder valid now, or its key unable to sign (found
// by a probe signature when the key has not signed lately, or from the
// last response it failed to sign).
func TestReady(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	build := func(t *testing.T, is ...Issuer) *Responder {
		t.Helper()
		r, err := New(testSettings(t), is, src, NewCache(0), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	wantNotReady := func(t *testing.T, r *Responder, reason error, words ...string) {
		t.Helper()
		err := r.Ready(t.Context())
		var nr *NotReadyError
		if !errors.Is(err, reason) || !errors.As(err, &nr) {
			t.Fatalf("Ready: %v, want %v", err, reason)
		}
		for _, w := range append(words, "CA citizen") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Ready says %q, lacks %q", err, w)
			}
		}
	}

	t.Run("fine", func(t *testing.T) {
		rc := p.responder(t, 48*time.Hour)
		if err := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc}).Ready(t.Context()); err != nil {
			t.Fatalf("Ready with a valid responder: %v", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		rc := p.responder(t, 48*time.Hour)
		r := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc})
		if err := r.Revoked(t.Context(), "citizen", rc.Cert.SerialNumber); err != nil {
			t.Fatal(err)
		}
		wantNotReady(t, r, ErrResponderRevoked, rc.Cert.SerialNumber.Text(16))
		// Found revoked as it starts: the same.
		wantNotReady(t, build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc, Revoked: true}), ErrResponderRevoked)
	})
	t.Run("renewed-after-revocation", func(t *testing.T) {
		rc := p.responder(t, 48*time.Hour)
		r := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc, Revoked: true})
		next := p.responder(t, 48*time.Hour)
		if _, err := r.RenewDue(t.Context(), fixedRenewer{next}); err != nil {
			t.Fatal(err)
		}
		if err := r.Ready(t.Context()); err != nil {
			t.Fatalf("Ready once renewed: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		rc := p.responder(t, 48*time.Hour)
		r := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc})
		r.now = func() time.Time { return rc.Cert.NotAfter.Add(time.Second) }
		wantNotReady(t, r, ErrResponderExpired, "renewal is overdue")
	})
	t.Run("not-yet-valid", func(t *testing.T) {
		prev := p.responderFrom(t, time.Now().Add(-time.Hour), 48*time.Hour)
		rc := p.responderFrom(t, time.Now().Add(time.Hour), 48*time.Hour)
		r := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc})
		r.now = func() time.Time { return rc.Cert.NotBefore.Add(-time.Second) }
		wantNotReady(t, r, ErrResponderNotYetValid, "clock")
		// With the responder it replaced still valid then: that one signs.
		r = build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc, Previous: &prev})
		r.now = func() time.Time { return rc.Cert.NotBefore.Add(-time.Second) }
		if err := r.Ready(t.Context()); err != nil {
			t.Fatalf("Ready with a previous responder valid now: %v", err)
		}
	})
	t.Run("key-probe", func(t *testing.T) {
		rc := p.responder(t, 48*time.Hour)
		var n atomic.Int64
		var fail atomic.Bool
		rc.Signer = probeKey{rc.Signer, &n, &fail}
		r := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc})
		fail.Store(true)
		wantNotReady(t, r, ErrResponderKey, "CKR_KEY_HANDLE_INVALID")
		if n.Load() != 1 {
			t.Fatalf("%d probe signatures, want 1", n.Load())
		}
		// The result stands for a while: no probe at every call.
		wantNotReady(t, r, ErrResponderKey)
		if n.Load() != 1 {
			t.Fatalf("%d probe signatures after two calls, want 1", n.Load())
		}
		// A response signed since vouches for the key.
		fail.Store(false)
		if _, err := r.signOne(t.Context(), r.issuers["citizen"], crypto.SHA256, big.NewInt(7), sigMiss); err != nil {
			t.Fatal(err)
		}
		if err := r.Ready(t.Context()); err != nil {
			t.Fatalf("Ready after a response was signed: %v", err)
		}
		// And a response it fails to sign says the key cannot.
		fail.Store(true)
		if _, err := r.signOne(t.Context(), r.issuers["citizen"], crypto.SHA256, big.NewInt(7), sigMiss); err == nil {
			t.Fatal("signed with a failing key")
		}
		wantNotReady(t, r, ErrResponderKey)
	})
	t.Run("key-hangs", func(t *testing.T) {
		rc := p.responder(t, 48*time.Hour)
		release := make(chan struct{})
		defer close(release)
		rc.Signer = hangingKey{rc.Signer, release}
		r := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := r.Ready(ctx); !errors.Is(err, ErrResponderKey) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Ready while the token does not answer: %v", err)
		}
	})
	// However long the caller would wait (WarningOf gives the /readyz
	// warning 3 s of its own), a hanging token holds Ready for
	// keyProbeWait at most, then at once for every caller while that
	// probe hangs: a load balancer polling /readyz from many places gets
	// its answer in time and leaves no callers piled up behind the probe.
	t.Run("key-hangs-bounded", func(t *testing.T) {
		rc := p.responder(t, 48*time.Hour)
		release := make(chan struct{})
		defer close(release)
		var n atomic.Int64
		rc.Signer = countingHang{hangingKey{rc.Signer, release}, &n}
		r := build(t, Issuer{Name: "citizen", Cert: p.ca, Responder: rc})
		start := time.Now()
		if err := r.Ready(t.Context()); !errors.Is(err, ErrResponderKey) || !errors.Is(err, ErrProbeUnanswered) {
			t.Fatalf("Ready while the token does not answer: %v", err)
		}
		if d := time.Since(start); d > keyProbeWait+time.Second {
			t.Fatalf("Ready took %s with a hanging token, want at most about %s", d, keyProbeWait)
		}
		start = time.Now()
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if err := r.Ready(t.Context()); !errors.Is(err, ErrProbeUnanswered) {
					t.Errorf("Ready while the probe hangs: %v", err)
				}
			})
		}
		wg.Wait()
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Fatalf("50 calls while the probe hangs took %s, want them answered at once", d)
		}
		if n.Load() != 1 {
			t.Fatalf("%d probe signatures, want 1 in flight", n.Load())
		}
	})
	// Several CAs whose keys all hang: keyProbeWait for them all, not each.
	t.Run("keys-hang-bounded-together", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		var n atomic.Int64
		var is []Issuer
		for _, name := range []string{"citizen", "organisation", "tsa"} {
			q := newPKI(t, name)
			rc := q.responder(t, 48*time.Hour)
			rc.Signer = countingHang{hangingKey{rc.Signer, release}, &n}
			is = append(is, Issuer{Name: name, Cert: q.ca, Responder: rc})
		}
		r := build(t, is...)
		start := time.Now()
		err := r.Ready(t.Context())
		var nr *NotReadyError
		if !errors.As(err, &nr) || len(nr.Errs) != 3 || !errors.Is(err, ErrProbeUnanswered) {
			t.Fatalf("Ready while three keys hang: %v", err)
		}
		if d := time.Since(start); d > keyProbeWait+500*time.Millisecond {
			t.Fatalf("Ready took %s with three hanging keys, want about %s for them all", d, keyProbeWait)
		}
		// Every key's probe was started (the later ones answered at once).
		for deadline := time.Now().Add(2 * time.Second); n.Load() < 3 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n.Load() != 3 {
			t.Fatalf("%d probe signatures, want one per key", n.Load())
		}
	})
}
