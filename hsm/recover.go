package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/outage"
)

// maxAttempts is how often an operation runs when token faults interrupt
// it: once, then after each of up to two recoveries.
const maxAttempts = 3

// Recovery reasons (label of thiqa_hsm_recoveries_total).
const (
	reasonSession        = "session_invalid"
	reasonNotLoggedIn    = "not_logged_in"
	reasonNotInitialized = "not_initialized"
	reasonTokenRemoved   = "token_removed"
	reasonHandleInvalid  = "handle_invalid"
	reasonOpActive       = "operation_active"
)

// faultReason classifies err: a non-empty reason means the token state must
// be rebuilt (sessions, login, slot, key handles) before retrying.
func faultReason(err error) string {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch uint(e) {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED:
		return reasonSession
	case pkcs11.CKR_USER_NOT_LOGGED_IN:
		return reasonNotLoggedIn
	case pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return reasonNotInitialized
	case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_SLOT_ID_INVALID:
		return reasonTokenRemoved
	case pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID:
		return reasonHandleInvalid
	case pkcs11.CKR_OPERATION_ACTIVE:
		// Two holders of one session handle: after sessions vanished behind
		// our back the module can reissue a handle number still held as
		// stale. Rebuilding clears it.
		return reasonOpActive
	}
	return ""
}

// do runs fn with a pooled session, recovering from token faults and running
// fn again (at most maxAttempts times in all). Errors that say the token
// cannot be used for now are marked with outage.Mark (unavailable.go). The
// whole operation, session wait included, ends by ctx's deadline or the
// call timeout, whichever comes first (timeout.go).
func (t *Token) do(ctx context.Context, fn func(*session) error) error {
	ctx, cancel := t.withCallTimeout(ctx)
	defer cancel()
	return t.doUntil(ctx, fn)
}

// doUntil is do bounded by ctx alone.
func (t *Token) doUntil(ctx context.Context, fn func(*session) error) error {
	for attempt := 1; ; attempt++ {
		if err := t.pool.enter(ctx, t.m); err != nil {
			return markDeadline(err)
		}
		gen, err := t.runBounded(ctx, fn)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrTimeout) {
			return err
		}
		reason := faultReason(err)
		if reason == "" {
			return markTransient(err)
		}
		if attempt >= maxAttempts {
			// The fault came back after every recovery: the token
			// is not usable for now (unavailable.go).
			return outage.Mark(err)
		}
		if rerr := t.recoverBounded(ctx, gen, reason, err); rerr != nil {
			err = fmt.Errorf("%w; recovering from it failed: %w", err, rerr)
			if errors.Is(rerr, context.Canceled) {
				return err
			}
			return markRecoveryFailed(err, rerr)
		}
		if err := ctx.Err(); err != nil {
			return markDeadline(err)
		}
	}
}

// run lends fn a session of the current generation under the read lock.
// c is the call fn runs in (nil: none, the caller waits for run): when its
// caller has gone before fn starts, fn does not run; when it has gone by
// the time fn returns, the session is closed rather than reused.
func (t *Token) run(fn func(*session) error, c *call) (uint64, error) {
	t.rw.RLock()
	defer t.rw.RUnlock()
	if t.closed {
		c.finish()
		return 0, ErrClosed
	}
	gen := t.gen
	if c.abandoned() {
		return gen, ErrTimeout
	}
	s, err := t.session(gen)
	if err != nil {
		c.finish()
		return gen, err
	}
	panicked, err := callSafely(fn, s)
	healthy := !panicked && (err == nil || faultReason(err) == "")
	switch {
	case c.finish():
		if healthy {
			t.pool.put(s)
		} else if panicked {
			_ = t.p.CloseSession(s.h)
		}
	case healthy || panicked:
		// A session whose call outlived its caller is not trusted
		// again. One that faulted is dropped unclosed (see session).
		_ = t.p.CloseSession(s.h)
	}
	return gen, err
}

// ErrPanicked is in the chain of the error of an operation whose code
// panicked (in this package or the PKCS#11 wrapper). The operation runs on
// a goroutine of its own (runBounded), where a panic would end the whole
// process; it ends the operation instead, and its session is closed.
var ErrPanicked = errors.New("hsm: the operation panicked")

// callSafely runs fn(s), turning a panic into an error wrapping ErrPanicked.
func callSafely(fn func(*session) error, s *session) (panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked, err = true, fmt.Errorf("%w: %v", ErrPanicked, r)
		}
	}()
	return false, fn(s)
}

// recover rebuilds the token state after a fault seen in generation seen.
// Concurrent callers that saw the same fault recover once: the first bumps
// the generation, the others find it bumped and simply retry.
func (t *Token) recover(seen uint64, reason string, cause error) error {
	t.rw.Lock()
	defer t.rw.Unlock()
	if t.closed {
		return ErrClosed
	}
	if t.gen != seen {
		return nil
	}
	if t.pinErr != nil {
		return t.pinErr
	}
	// From here every session of the old generation is dead to us. Closing
	// them all (no operation is in flight: we hold the write lock) ensures
	// no stale handle number can alias a session opened below.
	t.gen++
	_ = t.p.CloseAllSessions(t.slot)
	t.ctl = 0 // CK_INVALID_HANDLE until connect succeeds
	if err := t.p.Initialize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.log.Error("hsm recovery failed", "reason", reason, "fault", cause, "error", err)
		return fmt.Errorf("hsm: re-initialising %s: %w", t.module, err)
	}
	if err := t.connect(); err != nil {
		if errors.Is(err, ErrPINIncorrect) || errors.Is(err, ErrPINLocked) {
			t.pinErr = err
			t.log.Error("hsm token refused the PIN during recovery; not trying it again", "reason", reason, "error", err)
			return err
		}
		t.log.Error("hsm recovery failed", "reason", reason, "fault", cause, "error", err)
		return err
	}
	t.m.recovered(reason)
	t.log.Warn("hsm recovered from a token fault", "reason", reason, "fault", cause, "generation", t.gen, "slot", t.slot)
	return nil
}
