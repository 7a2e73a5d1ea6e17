// Package pin keeps the secrets a person types to activate their key: signing
// PINs of citizens (remote signing with sole control) and any other
// knowledge factor the identity provider asks for. A PIN is stored only as a
// slow, salted argon2id hash in a PHC-style string; checks compare in constant
// time; five consecutive wrong tries lock the PIN and a right one resets the
// count. Storage is the caller's, through the narrow Store interface.
//
// Its life cycle (lifecycle.go) keeps the PIN the holder's alone: the holder
// changes it with the old one; a registration officer who has checked the
// holder's identity resets it, which clears it, unlocks it and hands out a
// one-time activation code (kept only as a hash, expiring) with which the
// holder sets a new PIN. The same activation code enrols a new credential,
// so that no operator ever chooses or sees the PIN. Every new PIN obeys the
// policy (policy.go): length bounds and no trivial sequence.
//
// Nothing in this package logs or returns a PIN, and errors never contain one.
package pin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/thiqa/thiqa/internal/audit"
)

// Errors callers decide on with errors.Is.
var (
	// ErrNotSet means no PIN has been set for the subject yet.
	ErrNotSet = errors.New("pin: not set")
	// ErrAlreadySet means Set was called for a subject that already has a PIN.
	ErrAlreadySet = errors.New("pin: already set")
	// ErrLocked means too many consecutive wrong tries: the PIN is locked.
	ErrLocked = errors.New("pin: locked after too many wrong tries")
	// ErrWrong means the PIN presented is not the one set. The error returned
	// is a *WrongError carrying the tries left.
	ErrWrong = errors.New("pin: wrong PIN")
	// ErrPolicy means a new PIN does not meet the PIN policy (length,
	// trivial sequence); the error says which rule.
	ErrPolicy = errors.New("pin: does not meet the PIN policy")
	// ErrLockUnrecorded means a wrong try locked the PIN but the audit
	// record of the lock could not be written. The try counted and the PIN
	// stays locked; the caller answers it as a failure of the service (the
	// audit log's), not as a wrong PIN. Neither ErrWrong nor ErrLocked
	// matches it.
	ErrLockUnrecorded = errors.New("pin: the PIN is locked but the record of the lock could not be written")
)

// WrongError is returned for a wrong PIN; errors.Is(err, ErrWrong) holds.
type WrongError struct {
	// Remaining is how many more wrong tries lock the PIN (0: now locked).
	Remaining int
}

// Error implements the error interface.
func (e *WrongError) Error() string {
	return fmt.Sprintf("pin: wrong PIN (%d tries left)", e.Remaining)
}

// Is makes errors.Is(err, ErrWrong) true, and ErrLocked when no try is left.
func (e *WrongError) Is(target error) bool {
	return target == ErrWrong || (target == ErrLocked && e.Remaining <= 0)
}

// State is what a Store keeps for one subject.
type State struct {
	// Hash is the encoded hash written by Set (opaque to the store).
	Hash string
	// Failures is the number of consecutive tries counted since the last
	// success (the try being made included, see Store.AttemptPIN).
	Failures int
}

// Store persists PIN hashes and failure counters. Implementations must make
// AttemptPIN atomic (one transaction or one conditional UPDATE), so that
// concurrent tries cannot together exceed the limit.
type Store interface {
	// CreatePIN stores hash for subject when the subject has no PIN yet and
	// no activation is pending (a reset PIN is set again only with the
	// activation code), and reports whether it did (false: nothing changed).
	// The audit records seal writes (nil: none) are committed in the same
	// transaction as the PIN, and only with it.
	CreatePIN(ctx context.Context, subject, hash string, seal audit.Sealer) (created bool, err error)
	// AttemptPIN counts one try for subject: atomically, if a PIN is set and
	// its failure count is below limit, it increments the count and returns
	// the state as it was BEFORE the increment with found true. If the count
	// has reached limit it returns the state unchanged (the caller reports the
	// lock). found is false when the subject has no PIN.
	AttemptPIN(ctx context.Context, subject string, limit int) (st State, found bool, err error)
	// ResetPINFailures sets the subject's failure count back to zero.
	ResetPINFailures(ctx context.Context, subject string) error
	// LockPIN commits the audit records seal writes (the record of the
	// lock) in one transaction that finds subject's PIN still locked by
	// the try that was counted (its hash is hash and its failure count is
	// at least limit), and reports whether it was (false: the PIN was
	// reset or changed meanwhile; nothing is written). It never changes
	// the failure count.
	LockPIN(ctx context.Context, subject, hash string, limit int, seal audit.Sealer) (locked bool, err error)
}

// Params are the argon2id cost parameters and the PIN policy.
type Params struct {
	// Time is argon2id's number of passes.
	Time uint32
	// MemoryKiB is argon2id's memory in KiB.
	MemoryKiB uint32
	// Threads is argon2id's parallelism.
	Threads uint8
	// MaxFailures is the number of consecutive wrong tries that lock a PIN.
	MaxFailures int
	// MinLength and MaxLength bound a new PIN's length in characters.
	MinLength, MaxLength int
	// MaxConcurrent bounds hashes computed at once (memory: MaxConcurrent ×
	// MemoryKiB); 0 means 2.
	MaxConcurrent int
	// AllowTrivial accepts PINs that are one repeated character or a run of
	// consecutive characters (111111, 123456, 654321, abcdef); they are
	// refused by default.
	AllowTrivial bool
	// ActivationLifetime is how long an activation code stays usable; 0
	// means DefaultActivationLifetime.
	ActivationLifetime time.Duration
	// Clock tells the time of activation codes; time.Now when nil.
	Clock func() time.Time
}

// DefaultParams follow OWASP's argon2id recommendation (19 MiB, 2 passes,
// 1 lane): about 30 ms per hash on one core here, which makes an offline
// guess of a 6-digit PIN from a stolen database cost hours per PIN, while
// online guessing is stopped after five tries.
func DefaultParams() Params {
	return Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, MaxFailures: 5, MinLength: 6, MaxLength: 64, MaxConcurrent: 2,
		ActivationLifetime: DefaultActivationLifetime}
}

// DefaultActivationLifetime is how long an activation code stays usable by
// default: long enough to reach the citizen by post or at the desk.
const DefaultActivationLifetime = 72 * time.Hour

// Manager sets and checks PINs. It is safe for concurrent use.
type Manager struct {
	store  Store
	params Params
	slots  chan struct{}
	// stripes serialise the checks of one subject in this process, so that
	// concurrent right PINs (a citizen signing several documents at once)
	// never add up, through the pre-counted tries, to a false lock.
	stripes [64]chan struct{}
	// now is the clock of activation codes.
	now func() time.Time
}

// New returns a Manager over store with params (validated).
func New(store Store, params Params) (*Manager, error) {
	if store == nil {
		return nil, errors.New("pin: nil store")
	}
	if params.Time < 1 || params.MemoryKiB < 8*uint32(max(params.Threads, 1)) || params.Threads < 1 {
		return nil, fmt.Errorf("pin: argon2id parameters t=%d m=%d p=%d are invalid", params.Time, params.MemoryKiB, params.Threads)
	}
	if params.MaxFailures < 1 {
		return nil, errors.New("pin: MaxFailures must be at least 1")
	}
	if params.MinLength < 4 || params.MaxLength < params.MinLength || params.MaxLength > 1024 {
		return nil, fmt.Errorf("pin: length bounds %d..%d are invalid (minimum at least 4)", params.MinLength, params.MaxLength)
	}
	if params.ActivationLifetime == 0 {
		params.ActivationLifetime = DefaultActivationLifetime
	}
	if params.ActivationLifetime < time.Minute || params.ActivationLifetime > 90*24*time.Hour {
		return nil, fmt.Errorf("pin: activation code lifetime %s is invalid (1m to 90 days)", params.ActivationLifetime)
	}
	n := params.MaxConcurrent
	if n <= 0 {
		n = 2
	}
	m := &Manager{store: store, params: params, slots: make(chan struct{}, n), now: params.Clock}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.stripes {
		m.stripes[i] = make(chan struct{}, 1)
	}
	return m, nil
}

// Params returns the manager's parameters.
func (m *Manager) Params() Params { return m.params }

// Set hashes pin and stores it for subject, once: ErrAlreadySet when the
// subject already has a PIN (or awaits one set with an activation code),
// ErrPolicy when pin breaks the policy.
func (m *Manager) Set(ctx context.Context, subject, pin string) error {
	return m.SetRecorded(ctx, subject, pin, nil)
}

// SetRecorded is Set that commits the audit records seal writes (nil:
// none) with the PIN, in one transaction.
func (m *Manager) SetRecorded(ctx context.Context, subject, pin string, seal audit.Sealer) error {
	if err := m.CheckPolicy(pin); err != nil {
		return err
	}
	h, err := m.Hash(ctx, pin)
	if err != nil {
		return err
	}
	created, err := m.store.CreatePIN(ctx, subject, h, seal)
	if err != nil {
		return fmt.Errorf("pin: storing hash: %w", err)
	}
	if !created {
		return ErrAlreadySet
	}
	return nil
}

// Check verifies pin for subject. nil means right (the failure count is
// reset); otherwise ErrNotSet, ErrLocked, a *WrongError (errors.Is ErrWrong)
// or a storage error. The try is counted before the slow hash is computed,
// so parallel guesses cannot exceed MaxFailures.
func (m *Manager) Check(ctx context.Context, subject, pin string) error {
	return m.CheckRecorded(ctx, subject, pin, nil)
}

// CheckRecorded is Check that, when this try is the wrong one that locks
// the PIN, commits the audit records lock writes (the record of the lock;
// nil: none) while the PIN is locked (Store.LockPIN). When they cannot be
// written the answer is an error wrapping ErrLockUnrecorded, never a
// *WrongError: see check.
func (m *Manager) CheckRecorded(ctx context.Context, subject, pin string, lock audit.Sealer) error {
	_, err := m.check(ctx, subject, pin, lock)
	return err
}

// check is CheckRecorded; on success it also returns the hash that was
// verified.
//
// The try is counted, and committed, before the hash is computed: that is
// what stops parallel guesses, and it cannot wait for the audit log. So
// the try that reaches the limit locks the PIN when it is counted, before
// anyone knows whether it was wrong; its record is committed afterwards,
// once the PIN is known wrong, in a transaction that finds the PIN still
// locked by it (a record never names a lock that a reset or change undid).
// If that record cannot be written, the safe answer is kept: the try stays
// counted and the PIN locked (no extra tries while the audit log is down,
// no counter reset), and the caller gets ErrLockUnrecorded, a failure of
// the service that says nothing about the PIN; the store counts the
// failed append (thiqa_audit_append_failures_total, which the
// ThiqaAuditAppendFailed alert reads) and logs it with the credential.
func (m *Manager) check(ctx context.Context, subject, pin string, lock audit.Sealer) (string, error) {
	stripe := m.stripes[fnv32(subject)%uint32(len(m.stripes))]
	select {
	case stripe <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("pin: waiting for an earlier try: %w", ctx.Err())
	}
	defer func() { <-stripe }()
	st, found, err := m.store.AttemptPIN(ctx, subject, m.params.MaxFailures)
	if err != nil {
		return "", fmt.Errorf("pin: counting try: %w", err)
	}
	if !found {
		return "", ErrNotSet
	}
	if st.Failures >= m.params.MaxFailures {
		return "", ErrLocked
	}
	ok, err := m.Verify(ctx, st.Hash, pin)
	if err != nil {
		return "", err
	}
	if !ok {
		we := &WrongError{Remaining: m.params.MaxFailures - st.Failures - 1}
		if we.Remaining > 0 || lock == nil {
			return "", we
		}
		// The record of the lock is written even when the client has gone
		// away: the lock was made for its try.
		if _, err := m.store.LockPIN(context.WithoutCancel(ctx), subject, st.Hash, m.params.MaxFailures, lock); err != nil {
			return "", fmt.Errorf("%w: %w", ErrLockUnrecorded, err)
		}
		return "", we
	}
	if err := m.store.ResetPINFailures(ctx, subject); err != nil {
		return "", fmt.Errorf("pin: resetting failure count: %w", err)
	}
	return st.Hash, nil
}

// Hash returns the encoded argon2id hash of pin with a fresh 16-byte salt:
// $argon2id$v=19$m=MEM,t=TIME,p=THREADS$SALT$HASH (unpadded base64).
func (m *Manager) Hash(ctx context.Context, pin string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("pin: salt: %w", err)
	}
	if err := m.acquire(ctx); err != nil {
		return "", err
	}
	defer m.release()
	p := m.params
	key := argon2.IDKey([]byte(pin), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether pin matches encoded (as written by Hash, with the
// parameters recorded in it), comparing in constant time.
func (m *Manager) Verify(ctx context.Context, encoded, pin string) (bool, error) {
	h, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if err := m.acquire(ctx); err != nil {
		return false, err
	}
	defer m.release()
	got := argon2.IDKey([]byte(pin), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1, nil
}

// fnv32 is FNV-1a over s (stripe selection only).
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func (m *Manager) acquire(ctx context.Context) error {
	select {
	case m.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pin: waiting to hash: %w", ctx.Err())
	}
}

func (m *Manager) release() { <-m.slots }

type decoded struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

// Bounds on parameters read back from a stored hash, so that a corrupted or
// planted record cannot make a check allocate gigabytes or spin for minutes.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
)

func decode(s string) (decoded, error) {
	var d decoded
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return d, errors.New("pin: stored hash is not an argon2id string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return d, errors.New("pin: stored hash has an unsupported argon2 version")
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &d.memory, &d.time, &threads); err != nil || n != 3 {
		return d, errors.New("pin: stored hash has malformed parameters")
	}
	if d.time < 1 || d.time > maxTime || threads < 1 || threads > 255 || d.memory < 8*threads || d.memory > maxMemoryKiB {
		return d, errors.New("pin: stored hash has out-of-range parameters")
	}
	d.threads = uint8(threads)
	var err error
	if d.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(d.salt) < 8 {
		return d, errors.New("pin: stored hash has a malformed salt")
	}
	if d.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(d.key) < 16 || len(d.key) > 64 {
		return d, errors.New("pin: stored hash has a malformed key")
	}
	return d, nil
}
