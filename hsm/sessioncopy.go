package hsm

import (
	"errors"
	"slices"
	"time"

	"github.com/miekg/pkcs11"
)

// Session copies of hot keys.
//
// SoftHSM re-reads a token object's file state (open, lock, read, close) on
// every C_SignInit; for a P-256 key that is a third of the cost of a
// signature. A session object, a copy of the key made inside the token with
// C_CopyObject and CKA_TOKEN false, is held in the module's memory instead:
// signing with it measured 16,400 against 10,700 P-256 signatures/s on one
// core (P-384, whose cost is the curve arithmetic, gains 1-3 %).
//
// The copy never leaves the token: C_CopyObject keeps CKA_SENSITIVE,
// CKA_EXTRACTABLE and every usage attribute of the original, it is private
// to this process, and it disappears when the session that made it closes
// (at Close and at every recovery). Token-object searches name CKA_TOKEN, so
// a copy is never mistaken for a key.
//
// Copies are for the few keys that sign all day: time-stamping units,
// e-seals, OCSP responders, issuing CAs. Each pooled session holds at most
// maxSessionCopies of them and evicts the least recently used; so the
// copies of retired keys (after a TSA unit or OCSP responder renewal) go
// in time. A copy cannot see what happens to its token object, so each
// session checks, at most copyRecheck after the last check, that the token
// key still exists and may still sign: a key destroyed or disabled by
// another process (an operator's pkcs11-tool) stops signing within that
// time, as it does at once without copies. DeleteKey in this process
// destroys the copies at once.

// Defaults of Token.maxCopies and Token.copyRecheck (tests lower them).
const (
	// maxSessionCopies bounds the copies one session holds.
	maxSessionCopies = 64
	// copyRecheck is how long a session signs with a copy before checking
	// the token key again.
	copyRecheck = time.Second
)

// sessionCopy is one key's copy in one session.
type sessionCopy struct {
	h       pkcs11.ObjectHandle // the copy, or the token key when not copied
	copied  bool                // h is a copy this session made
	label   string              // to forget the copy when DeleteKey destroys the key
	checked time.Time           // when the token key was last seen able to sign
	used    uint64              // the session's copy clock at the last use (LRU)
}

// UseSessionCopies makes sg sign with a session-object copy of its private
// key, made once in each pooled session on first use. If the token refuses
// the copy (CKA_COPYABLE false, or a token without C_CopyObject), sg keeps
// signing with the token object and that is logged once per key.
func (sg *Signer) UseSessionCopies() {
	sg.t.copyMu.Lock()
	if sg.t.copiedLabels == nil {
		sg.t.copiedLabels = make(map[string]bool)
	}
	sg.t.copiedLabels[sg.label] = true
	sg.t.copyMu.Unlock()
	sg.sessionCopy.Store(true)
}

// signingHandle returns the handle sg signs with in s: its session copy when
// sg uses copies, else the token object obj. Copies are keyed by the token
// object, so every Signer of one key (a credential loaded again, say) shares
// one copy per session. Only a token fault (a stale handle, a closed
// session) is an error; the caller recovers from it.
func (t *Token) signingHandle(s *session, sg *Signer, obj pkcs11.ObjectHandle) (pkcs11.ObjectHandle, error) {
	if !sg.sessionCopy.Load() {
		return obj, nil
	}
	if s.copyEpoch != t.copyEpoch.Load() {
		t.copyMu.Lock()
		t.forgetDestroyedCopiesLocked(s)
		t.copyMu.Unlock()
	}
	s.copyClock++
	if c, ok := s.copies[obj]; ok {
		c.used = s.copyClock
		if !c.copied {
			return c.h, nil
		}
		now := time.Now()
		if now.Sub(c.checked) < t.copyRecheck {
			return c.h, nil
		}
		may, err := t.maySign(s, obj)
		if err != nil {
			return 0, err
		}
		if !may {
			// Disabled on the token: sign with the token object, which
			// the token will refuse, like every other session.
			t.dropCopy(s, obj)
			return obj, nil
		}
		c.checked = now
		return c.h, nil
	}
	h, err := t.copyToSession(s.h, obj)
	c := &sessionCopy{h: h, copied: true, label: sg.label, checked: time.Now(), used: s.copyClock}
	switch {
	case err == nil:
	case faultReason(err) != "":
		return 0, err
	case copyRefused(err):
		t.logCopyRefused(sg.label, err)
		c.h, c.copied = obj, false
	default:
		// Passing trouble (memory, a busy device): sign with the token
		// object this time and try the copy again next time.
		return obj, nil
	}
	if len(s.copies) >= t.maxCopies {
		t.evictCopy(s)
	}
	if s.copies == nil {
		s.copies = make(map[pkcs11.ObjectHandle]*sessionCopy)
	}
	s.copies[obj] = c
	return c.h, nil
}

// copyToSession copies the key obj into session sh as a session object
// (CKA_TOKEN false); every other attribute is the original's.
func (t *Token) copyToSession(sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) (pkcs11.ObjectHandle, error) {
	return t.p.CopyObject(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)})
}

// maySign reports whether the token key obj still exists (a fault error
// when not) and may still sign.
func (t *Token) maySign(s *session, obj pkcs11.ObjectHandle) (bool, error) {
	a, err := t.p.GetAttributeValue(s.h, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SIGN, nil)})
	if err != nil {
		if faultReason(err) != "" {
			return false, err
		}
		return false, nil
	}
	return len(a) == 1 && len(a[0].Value) == 1 && a[0].Value[0] != 0, nil
}

// copyRefused reports whether err means the token will never copy the key
// (as opposed to passing trouble).
func copyRefused(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch uint(e) {
	case pkcs11.CKR_ACTION_PROHIBITED, pkcs11.CKR_FUNCTION_NOT_SUPPORTED,
		pkcs11.CKR_ATTRIBUTE_READ_ONLY, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID,
		pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_TEMPLATE_INCONSISTENT,
		pkcs11.CKR_TEMPLATE_INCOMPLETE:
		return true
	}
	return false
}

// logCopyRefused warns once per key label that the token refused a copy.
func (t *Token) logCopyRefused(label string, err error) {
	t.copyMu.Lock()
	first := !t.copyRefusedLogged[label]
	if first {
		if t.copyRefusedLogged == nil {
			t.copyRefusedLogged = make(map[string]bool)
		}
		t.copyRefusedLogged[label] = true
	}
	t.copyMu.Unlock()
	if first {
		t.log.Warn("hsm token refused a session copy of the key; signing with the token object", "key", label, "error", err)
	}
}

// dropCopy destroys s's copy of obj and leaves s signing with obj itself.
func (t *Token) dropCopy(s *session, obj pkcs11.ObjectHandle) {
	t.copyMu.Lock()
	defer t.copyMu.Unlock()
	t.forgetDestroyedCopiesLocked(s)
	c, ok := s.copies[obj]
	if !ok {
		return
	}
	if c.copied {
		_ = t.p.DestroyObject(s.h, c.h)
	}
	c.h, c.copied = obj, false
}

// evictCopy destroys the least recently used copy in s.
func (t *Token) evictCopy(s *session) {
	t.copyMu.Lock()
	defer t.copyMu.Unlock()
	// Under copyMu, after forgetting what DeleteKey destroyed: a handle is
	// destroyed once, never after another session destroyed it.
	t.forgetDestroyedCopiesLocked(s)
	var (
		victim pkcs11.ObjectHandle
		oldest *sessionCopy
	)
	for obj, c := range s.copies {
		if oldest == nil || c.used < oldest.used {
			victim, oldest = obj, c
		}
	}
	if oldest == nil {
		return
	}
	if oldest.copied {
		_ = t.p.DestroyObject(s.h, oldest.h)
	}
	delete(s.copies, victim)
}

// copiesDestroyedLocked records that DeleteKey destroyed the key labelled
// label, with its session copies if it had any. The caller holds copyMu.
func (t *Token) copiesDestroyedLocked(label string) {
	if !t.copiedLabels[label] {
		return
	}
	t.copyDeleted = append(t.copyDeleted, label)
	t.copyEpoch.Store(uint64(len(t.copyDeleted)))
}

// forgetDestroyedCopiesLocked drops from s the handles of copies DeleteKey
// has destroyed since s last looked. They are forgotten, never destroyed
// again: a module may give a destroyed handle's number to a new object.
// The caller holds copyMu.
func (t *Token) forgetDestroyedCopiesLocked(s *session) {
	gone := t.copyDeleted[min(s.copyEpoch, uint64(len(t.copyDeleted))):]
	s.copyEpoch = uint64(len(t.copyDeleted))
	for obj, c := range s.copies {
		if slices.Contains(gone, c.label) {
			delete(s.copies, obj)
		}
	}
}
