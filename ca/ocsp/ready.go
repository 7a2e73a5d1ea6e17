package ocsp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors of Ready: why this node cannot sign fresh responses for a CA.
var (
	// ErrResponderExpired means the CA's responder certificate has
	// expired: its renewal is overdue.
	ErrResponderExpired = errors.New("the OCSP responder certificate has expired")
	// ErrResponderNotYetValid means the CA's responder certificate is
	// not valid yet (this node's clock behind the CA's) and no previous
	// responder valid now can sign in its place.
	ErrResponderNotYetValid = errors.New("the OCSP responder certificate is not valid yet")
	// ErrResponderKey means the responder key failed to sign: missing
	// on the token, or the token refuses it.
	ErrResponderKey = errors.New("the OCSP responder key cannot sign")
	// ErrProbeUnanswered means the token has not answered Ready's probe
	// signature within keyProbeWait (with ErrResponderKey).
	ErrProbeUnanswered = errors.New("the token is slow or hanging")
)

// keyProbeEvery is how long a signature with a responder key (a response
// or a probe) vouches for it: Ready signs a probe only when the key has
// signed nothing for that long, so a busy responder costs Ready nothing
// and an idle one one signature per keyProbeEvery.
const keyProbeEvery = 30 * time.Second

// keyProbeWait bounds how long Ready waits for probe signatures, all its
// CAs' together, however long its context allows: a token answers one in
// milliseconds. Past it
// Ready says the token has not answered, at once for every caller while
// that probe is still in flight, so a hanging token neither slows /readyz
// (a load balancer's probe would time out and take the node out, which
// a warning must not) nor piles up callers waiting on the one probe.
const keyProbeWait = time.Second

// keyProbe is what Ready signs to find whether a responder key can sign.
// Plain text, not DER: its signature can never be taken for that of an
// OCSP response (a ResponseData is a DER SEQUENCE), and it is dropped as
// soon as made, never served, stored or logged.
var keyProbe = []byte("thiqa OCSP responder readiness probe")

// keyHealth is the last result of a signature with one responder key,
// shared by the copies of its signing.
type keyHealth struct {
	mu  sync.Mutex
	at  time.Time // when; zero: never
	err error
	// probing is closed when the probe in flight ends; nil when none.
	probing chan struct{}
	// probeStart is when the probe in flight started.
	probeStart time.Time
}

func (h *keyHealth) record(err error) {
	h.mu.Lock()
	h.at, h.err = time.Now(), err
	h.mu.Unlock()
}

// check returns the key's last result when it is recent, and otherwise
// signs a probe with s (one probe at a time; the others wait for it)
// until ctx ends, the probe has been in flight for keyProbeWait, or
// until (the caller's budget).
func (h *keyHealth) check(ctx context.Context, s *signing, until time.Time) error {
	h.mu.Lock()
	if !h.at.IsZero() && time.Since(h.at) < keyProbeEvery {
		err := h.err
		h.mu.Unlock()
		return err
	}
	done := h.probing
	if done == nil {
		done = make(chan struct{})
		h.probing, h.probeStart = done, time.Now()
		go func() {
			_, err := s.alg.Sign(s.key, keyProbe)
			h.mu.Lock()
			h.at, h.err, h.probing = time.Now(), err, nil
			h.mu.Unlock()
			close(done)
		}()
	}
	started := h.probeStart
	h.mu.Unlock()
	wait := time.NewTimer(min(time.Until(started.Add(keyProbeWait)), time.Until(until)))
	defer wait.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("no answer from the token to a probe signature: %w", ctx.Err())
	case <-wait.C:
		return fmt.Errorf("%w: no answer from the token to a probe signature in flight for %s", ErrProbeUnanswered, time.Since(started).Round(10*time.Millisecond))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Ready reports whether this node can sign fresh OCSP responses for every
// CA it serves: nil, or one error per CA that it cannot (joined), naming
// the CA, the responder certificate's serial and the reason: revoked and
// not replaced yet (ErrResponderRevoked), expired (ErrResponderExpired),
// not valid yet with no previous responder valid now
// (ErrResponderNotYetValid), or its key unable to sign (ErrResponderKey;
// a probe signature when the key has signed nothing for a while). The
// responses pre-signed before are still served while they are fresh
// (except those of a revoked responder).
func (r *Responder) Ready(ctx context.Context) error {
	now := r.now()
	names := make([]string, 0, len(r.issuers))
	for name := range r.issuers {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	until := time.Now().Add(keyProbeWait) // for every CA's probe together
	for _, name := range names {
		if err := r.issuers[name].ready(ctx, now, until); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &NotReadyError{Errs: errs}
}

// NotReadyError is Ready's error: one error per CA whose fresh responses
// this node cannot sign, said on one line.
type NotReadyError struct {
	Errs []error
}

// Error implements error.
func (e *NotReadyError) Error() string {
	texts := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		texts[i] = err.Error()
	}
	return strings.Join(texts, "; ")
}

// Unwrap returns each CA's error (errors.Is finds the reasons).
func (e *NotReadyError) Unwrap() []error { return e.Errs }

// ready reports whether is can sign at now, as sign would, waiting for
// a probe signature until until at most.
func (is *issuer) ready(ctx context.Context, now, until time.Time) error {
	cur := is.signing.Load()
	sg := cur.at(now)
	serial := fmt.Sprintf("%x", sg.cert.SerialNumber)
	switch {
	case sg.revoked.Load():
		return fmt.Errorf("CA %s: %w (serial %s): responses not pre-signed before answer tryLater until its renewal with a new key succeeds",
			is.name, ErrResponderRevoked, serial)
	case now.Before(sg.cert.NotBefore):
		return fmt.Errorf("CA %s: %w (serial %s, notBefore %s) and no previous responder valid now can sign: check this node's clock",
			is.name, ErrResponderNotYetValid, serial, sg.cert.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(sg.cert.NotAfter):
		return fmt.Errorf("CA %s: %w (serial %s, notAfter %s): its renewal is overdue",
			is.name, ErrResponderExpired, serial, sg.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := sg.health.check(ctx, sg, until); err != nil {
		return fmt.Errorf("CA %s: %w (serial %s): %w", is.name, ErrResponderKey, serial, err)
	}
	return nil
}
