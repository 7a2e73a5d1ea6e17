package hsm

import (
	"slices"

	"github.com/miekg/pkcs11"
)

// Session copies of hot keys.
//
// SoftHSM re-reads a token object's file state (open, lock, read, close) on
// every C_SignInit; for a P-256 key that is a third of the cost of a
// signature. A session object, a copy of the key made inside the token with
// C_CopyObject and CKA_TOKEN false, is held in the module's memory instead:
// signing with it measured 16,400 against 10,700 signatures/s on one core
// (P-384, whose cost is the curve arithmetic, gains nothing).
//
// The copy never leaves the token: C_CopyObject keeps CKA_SENSITIVE,
// CKA_EXTRACTABLE and every usage attribute of the original, it is private
// to this process, and it disappears when the session that made it closes
// (at Close and at every recovery). Token-object searches name CKA_TOKEN, so
// a copy is never mistaken for a key. Copies are for the few keys that sign
// all day (time-stamping units, e-seals, OCSP responders): each pooled
// session holds one copy per such key.

// UseSessionCopies makes sg sign with a session-object copy of its private
// key, made once in each pooled session on first use. If the token refuses
// the copy (CKA_COPYABLE false, or a token without C_CopyObject), sg keeps
// signing with the token object and logs that once.
func (sg *Signer) UseSessionCopies() {
	sg.t.copyMu.Lock()
	if sg.t.copiedLabels == nil {
		sg.t.copiedLabels = make(map[string]bool)
	}
	sg.t.copiedLabels[sg.label] = true
	sg.t.copyMu.Unlock()
	sg.sessionCopy.Store(true)
}

// sessionCopy is one key's copy in one session: the handle to sign with
// (the token object itself when the token refused the copy) and the key's
// label, to forget the copy when DeleteKey destroys the key.
type sessionCopy struct {
	h     pkcs11.ObjectHandle
	label string
}

// signingHandle returns the handle sg signs with in s: its session copy when
// sg uses copies, else the token object obj. Copies are keyed by the token
// object, so every Signer of one key (a credential loaded again, say) shares
// one copy per session. Only a token fault (a stale handle, a closed
// session) is an error.
func (t *Token) signingHandle(s *session, sg *Signer, obj pkcs11.ObjectHandle) (pkcs11.ObjectHandle, error) {
	if !sg.sessionCopy.Load() {
		return obj, nil
	}
	if epoch := t.copyEpoch.Load(); s.copyEpoch != epoch {
		t.forgetDestroyedCopies(s)
	}
	if c, ok := s.copies[obj]; ok {
		return c.h, nil
	}
	h, err := t.p.CopyObject(s.h, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)})
	if err != nil {
		if faultReason(err) != "" {
			return 0, err
		}
		if sg.copyRefused.CompareAndSwap(false, true) {
			t.log.Warn("hsm token refused a session copy of the key; signing with the token object", "key", sg.label, "error", err)
		}
		h = obj
	}
	if s.copies == nil {
		s.copies = make(map[pkcs11.ObjectHandle]sessionCopy)
	}
	s.copies[obj] = sessionCopy{h: h, label: sg.label}
	return h, nil
}

// copiesDestroyed records that DeleteKey destroyed the key labelled label,
// with its session copies if it had any.
func (t *Token) copiesDestroyed(label string) {
	t.copyMu.Lock()
	defer t.copyMu.Unlock()
	if !t.copiedLabels[label] {
		return
	}
	t.copyDeleted = append(t.copyDeleted, label)
	t.copyEpoch.Store(uint64(len(t.copyDeleted)))
}

// forgetDestroyedCopies drops from s the handles of copies DeleteKey has
// destroyed since s last looked. They are forgotten, never destroyed again:
// a module may give a destroyed handle's number to a new object.
func (t *Token) forgetDestroyedCopies(s *session) {
	t.copyMu.Lock()
	gone := t.copyDeleted[min(s.copyEpoch, uint64(len(t.copyDeleted))):]
	s.copyEpoch = uint64(len(t.copyDeleted))
	for obj, c := range s.copies {
		if slices.Contains(gone, c.label) {
			delete(s.copies, obj)
		}
	}
	t.copyMu.Unlock()
}
