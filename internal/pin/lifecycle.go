package pin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// Errors of the PIN life cycle, for errors.Is.
var (
	// ErrNoSubject: there is no credential (store row) with that name.
	ErrNoSubject = errors.New("pin: no such credential")
	// ErrChanged: the PIN was changed or reset between the check of the
	// old PIN and the change; nothing was changed by this request.
	ErrChanged = errors.New("pin: changed or reset meanwhile")
	// ErrNoActivation: no activation code is pending: it was used already,
	// replaced by a newer one, voided after too many wrong tries, or never
	// issued.
	ErrNoActivation = errors.New("pin: no activation pending")
	// ErrActivationExpired: the activation code's lifetime is over.
	ErrActivationExpired = errors.New("pin: activation code expired")
	// ErrWrongCode: the activation code presented is not the one issued;
	// the error returned is a *WrongCodeError carrying the tries left.
	ErrWrongCode = errors.New("pin: wrong activation code")
)

// WrongCodeError is returned for a wrong activation code;
// errors.Is(err, ErrWrongCode) holds, and errors.Is(err, ErrNoActivation)
// too once no try is left (the code is void).
type WrongCodeError struct {
	// Remaining is how many more wrong codes void the activation.
	Remaining int
}

// Error implements the error interface.
func (e *WrongCodeError) Error() string {
	if e.Remaining <= 0 {
		return "pin: wrong activation code; the code is now void, a registration officer must issue a new one"
	}
	return fmt.Sprintf("pin: wrong activation code (%d tries left)", e.Remaining)
}

// Is makes errors.Is(err, ErrWrongCode) true, and ErrNoActivation when no
// try is left.
func (e *WrongCodeError) Is(target error) bool {
	return target == ErrWrongCode || (target == ErrNoActivation && e.Remaining <= 0)
}

// ActivationOutcome is what LifecycleStore.ActivatePIN did.
type ActivationOutcome int

// The outcomes of an activation.
const (
	// Activated: the code matched; the PIN is set and the code consumed.
	Activated ActivationOutcome = iota
	// ActivationWrong: a code is pending but another was presented; the
	// wrong try was counted.
	ActivationWrong
	// ActivationExpired: the pending code matched or not, but expired.
	ActivationExpired
	// ActivationNone: nothing is pending (or the code is void).
	ActivationNone
)

// LifecycleStore is a Store that also replaces, resets and activates PINs.
// Every method is atomic (one conditional UPDATE or one transaction), and
// commits the audit records seal writes (nil: none) in the same
// transaction when, and only when, it changes the PIN (replaced, reset,
// activated): no change without its record, no record of a change
// rolled back.
type LifecycleStore interface {
	Store
	// ReplacePIN sets newHash as subject's PIN, with a zero failure
	// count, if its current hash is oldHash; it reports whether it did.
	ReplacePIN(ctx context.Context, subject, oldHash, newHash string, seal audit.Sealer) (bool, error)
	// ResetPIN clears subject's PIN and failure count and records a
	// pending activation (codeHash, valid until expires, no wrong try
	// yet), replacing any earlier one; found is false when there is no
	// such subject.
	ResetPIN(ctx context.Context, subject string, codeHash []byte, expires time.Time, seal audit.Sealer) (found bool, err error)
	// ActivatePIN consumes subject's pending activation if codeHash is its
	// code, it has not expired at now and fewer than limit wrong codes
	// were tried: then it sets hash as the PIN (failure count zero) and
	// clears the activation. A wrong code is counted. failures is the
	// count of wrong codes after this try.
	ActivatePIN(ctx context.Context, subject string, codeHash []byte, hash string, now time.Time, limit int, seal audit.Sealer) (outcome ActivationOutcome, failures int, err error)
}

// Activation is a one-time activation code as handed to the holder. It is
// shown once: the store keeps only its hash.
type Activation struct {
	// Code is twelve characters of Crockford's base 32 in groups of four
	// (60 random bits), e.g. K7QM-2XWD-9HPA.
	Code string
	// Expires ends its use.
	Expires time.Time
}

// lifecycle returns the store as a LifecycleStore.
func (m *Manager) lifecycle() (LifecycleStore, error) {
	ls, ok := m.store.(LifecycleStore)
	if !ok {
		return nil, errors.New("pin: this store cannot change or reset PINs")
	}
	return ls, nil
}

// Change replaces subject's PIN: newPIN must meet the policy and differ
// from oldPIN (ErrPolicy, nothing counted), oldPIN is checked as Check does
// (a wrong one counts towards the lock: ErrWrong, ErrLocked, ErrNotSet),
// and ErrChanged means a concurrent change or reset won.
func (m *Manager) Change(ctx context.Context, subject, oldPIN, newPIN string) error {
	return m.ChangeRecorded(ctx, subject, oldPIN, newPIN, nil, nil)
}

// ChangeRecorded is Change that commits the audit records seal writes (nil:
// none) with the new PIN, in one transaction, and those lock writes (nil:
// none) when a wrong old PIN locks the PIN, as CheckRecorded does.
func (m *Manager) ChangeRecorded(ctx context.Context, subject, oldPIN, newPIN string, seal, lock audit.Sealer) error {
	ls, err := m.lifecycle()
	if err != nil {
		return err
	}
	if err := m.CheckPolicy(newPIN); err != nil {
		return err
	}
	if newPIN == oldPIN {
		return fmt.Errorf("%w: the new PIN must differ from the old one", ErrPolicy)
	}
	oldHash, err := m.check(ctx, subject, oldPIN, lock)
	if err != nil {
		return err
	}
	h, err := m.Hash(ctx, newPIN)
	if err != nil {
		return err
	}
	ok, err := ls.ReplacePIN(ctx, subject, oldHash, h, seal)
	if err != nil {
		return fmt.Errorf("pin: storing the new PIN: %w", err)
	}
	if !ok {
		return ErrChanged
	}
	return nil
}

// Reset clears subject's PIN, unlocks it and returns a fresh activation
// code, valid for Params.ActivationLifetime, with which the holder sets a
// new PIN (Activate); any earlier code stops working. It also serves a new
// enrolment: the holder chooses the first PIN with the code. ErrNoSubject
// when the store has no such subject.
func (m *Manager) Reset(ctx context.Context, subject string) (Activation, error) {
	return m.ResetRecorded(ctx, subject, nil)
}

// ResetRecorded is Reset that commits the audit records seal writes (nil:
// none) with the reset, in one transaction.
func (m *Manager) ResetRecorded(ctx context.Context, subject string, seal audit.Sealer) (Activation, error) {
	return m.ResetRecordedWith(ctx, subject, func(Activation) (audit.Sealer, error) { return seal, nil })
}

// ResetRecordedWith is ResetRecorded whose records depend on the
// activation: record gets it (the code's expiry in the record, never the
// code itself) before anything is stored and returns the Sealer committed
// with the reset (nil: none); its error stops the reset.
func (m *Manager) ResetRecordedWith(ctx context.Context, subject string, record func(Activation) (audit.Sealer, error)) (Activation, error) {
	ls, err := m.lifecycle()
	if err != nil {
		return Activation{}, err
	}
	code, err := newActivationCode()
	if err != nil {
		return Activation{}, err
	}
	exp := m.now().Add(m.params.ActivationLifetime).UTC().Truncate(time.Second)
	seal, err := record(Activation{Code: code, Expires: exp})
	if err != nil {
		return Activation{}, err
	}
	found, err := ls.ResetPIN(ctx, subject, activationHash(subject, code), exp, seal)
	if err != nil {
		return Activation{}, fmt.Errorf("pin: recording the activation: %w", err)
	}
	if !found {
		return Activation{}, ErrNoSubject
	}
	return Activation{Code: code, Expires: exp}, nil
}

// Activate sets subject's PIN with the activation code Reset issued: newPIN
// must meet the policy (ErrPolicy, nothing counted); the code must be the
// pending one (a *WrongCodeError otherwise, counted: MaxFailures wrong codes
// void it), unexpired (ErrActivationExpired) and not used before
// (ErrNoActivation).
func (m *Manager) Activate(ctx context.Context, subject, code, newPIN string) error {
	return m.ActivateRecorded(ctx, subject, code, newPIN, nil)
}

// ActivateRecorded is Activate that commits the audit records seal writes
// (nil: none) with the new PIN, in one transaction; a refused activation
// (a wrong code counted) writes none of them.
func (m *Manager) ActivateRecorded(ctx context.Context, subject, code, newPIN string, seal audit.Sealer) error {
	ls, err := m.lifecycle()
	if err != nil {
		return err
	}
	if err := m.CheckPolicy(newPIN); err != nil {
		return err
	}
	h, err := m.Hash(ctx, newPIN)
	if err != nil {
		return err
	}
	out, failures, err := ls.ActivatePIN(ctx, subject, activationHash(subject, normalizeCode(code)), h, m.now(), m.params.MaxFailures, seal)
	if err != nil {
		return fmt.Errorf("pin: activating: %w", err)
	}
	switch out {
	case Activated:
		return nil
	case ActivationWrong:
		return &WrongCodeError{Remaining: m.params.MaxFailures - failures}
	case ActivationExpired:
		return ErrActivationExpired
	}
	return ErrNoActivation
}

// codeAlphabet is Crockford's base 32: no I, L, O or U to misread.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newActivationCode draws twelve characters (60 bits) in groups of four.
func newActivationCode() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pin: drawing an activation code: %w", err)
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[c&31])
	}
	return sb.String(), nil
}

// normalizeCode reads a code as typed: case, spaces and hyphens do not
// matter, and O, I and L stand for 0, 1 and 1 (Crockford). The result has
// the hyphens of newActivationCode.
func normalizeCode(s string) string {
	var raw []byte
	for _, r := range strings.ToUpper(s) {
		switch r {
		case '-', ' ':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 0x7f {
			return "" // never matches
		}
		raw = append(raw, byte(r))
	}
	var sb strings.Builder
	for i, c := range raw {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// activationHash is what the store keeps of a code: SHA-256 over the
// subject and the code, so that a code activates only its own credential.
// 60 random bits and the count of wrong tries make a slow hash needless.
func activationHash(subject, code string) []byte {
	h := sha256.Sum256([]byte("thiqa-activation\x00" + subject + "\x00" + code))
	return h[:]
}
