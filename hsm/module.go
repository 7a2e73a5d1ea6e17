package hsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors callers decide on. Returned errors wrap them with context
// (errors.Is works); no message ever contains a PIN.
var (
	// ErrModuleNotFound: the PKCS#11 module file does not exist or cannot be loaded.
	ErrModuleNotFound = errors.New("hsm: PKCS#11 module cannot be loaded")
	// ErrTokenNotFound: no slot holds a token with the requested label.
	ErrTokenNotFound = errors.New("hsm: token not found")
	// ErrTokenExists: InitToken was asked for a label a token already has.
	ErrTokenExists = errors.New("hsm: token already exists")
	// ErrPINIncorrect: the token refused the PIN.
	ErrPINIncorrect = errors.New("hsm: PIN incorrect")
	// ErrPINLocked: the token has locked the PIN after too many failures.
	ErrPINLocked = errors.New("hsm: PIN locked")
	// ErrKeyNotFound: no private key with the requested label or id.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrKeyExists: GenerateKey was asked for a label a key already has.
	ErrKeyExists = errors.New("hsm: key already exists")
	// ErrKeyAmbiguous: more than one private key has the requested label
	// (and id): which one is meant cannot be known, so none is used.
	ErrKeyAmbiguous = errors.New("hsm: more than one private key matches")
	// ErrKeyExportable: the key found can leave the token (CKA_EXTRACTABLE
	// true or CKA_SENSITIVE false), so it is not used.
	ErrKeyExportable = errors.New("hsm: key can leave the token")
	// ErrClosed: the Token has been closed.
	ErrClosed = errors.New("hsm: token closed")
)

// Config says which module and token to use and how.
type Config struct {
	// ModulePath is the PKCS#11 module (shared library) to load.
	ModulePath string
	// TokenLabel names the token (CKA_LABEL of the token, 32 bytes at most).
	TokenLabel string
	// PIN is the user PIN (see ReadPIN). It is never logged nor put in an
	// error. Should the token refuse it during a recovery (changed behind
	// our back), the Token stops trying it so it cannot lock the token;
	// operations then fail with ErrPINIncorrect until a new Open.
	PIN string
	// PoolSize bounds the sessions open at once (one per concurrent
	// operation). Zero means 2*GOMAXPROCS; the minimum is 2.
	PoolSize int
	// CallTimeout bounds how long an operation (a signature, Ping, finding
	// a key) waits for a free session and for the token's answer; a
	// caller's earlier deadline wins. An operation that ends so fails with
	// ErrTimeout, marked as an outage, and a call the token has not
	// answered is left to finish on its own (timeout.go). Key generation
	// is bounded by the caller's context only. Zero means
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// VerifyAfterSign checks every signature with the public key in Go
	// before returning it.
	VerifyAfterSign bool
	// Logger receives recoveries (Warn) and lifecycle events. Nil discards.
	Logger *slog.Logger
	// Registerer receives the thiqa_hsm_* metrics. Nil disables metrics.
	Registerer prometheus.Registerer
	// KeyMetricLabel maps a key label to the value of the "key" metric
	// label, to bound cardinality when there are many keys (one per
	// citizen) and keep identifiers out of metrics: e.g. return
	// "credential" for every citizen key (Signer.SetMetricLabel refines it
	// later). Nil uses the key label itself.
	KeyMetricLabel func(keyLabel string) string
	// StorageDir is the folder in which the token keeps its objects, when
	// it is a folder of this host (a SoftHSM token folder), "" otherwise.
	// SoftHSM answers a key generation that its full or read-only folder
	// cannot hold with CKR_FUNCTION_FAILED, which says nothing of the
	// cause: with StorageDir set, GenerateKey then tries a small write in
	// it to tell a full disk (ErrTokenFull) from other failures.
	StorageDir string
}

// Token is an open, logged-in PKCS#11 token with its session pool. It is
// safe for concurrent use.
type Token struct {
	p      *pkcs11.Ctx
	module string
	label  string
	pin    string
	verify bool
	log    *slog.Logger
	m      *metrics
	keyMet func(string) string
	// storageDir is Config.StorageDir.
	storageDir string

	// rw orders session use against recovery: operations hold it for
	// reading while they use a session, recovery holds it for writing. The
	// fields below it change only under the write lock.
	rw     sync.RWMutex
	slot   uint
	gen    uint64 // generation: bumped by every recovery
	ctl    pkcs11.SessionHandle
	closed bool
	// pinErr is set when the token refused the PIN during a recovery: from
	// then on recoveries fail at once instead of trying the PIN again, so a
	// PIN changed behind our back cannot lock the token by repetition.
	pinErr error

	pool *pool

	genMu sync.Mutex // serialises GenerateKey's check-then-create

	// callTimeout bounds operations (Config.CallTimeout); hung are the
	// calls whose caller gave up and that have not returned (timeout.go).
	callTimeout time.Duration
	hungMu      sync.Mutex
	hung        map[*call]struct{}
	// testHookSign, when set (tests only, before any signature), runs in
	// every signing call before the token is asked: a call that hangs.
	testHookSign func(*session)
	// testHookAbandoned, when set (tests only), runs in a caller that has
	// just given up on its call, before it counts the call as hung.
	testHookAbandoned func()
	// testHookDestroy, when set (tests only), runs before DeleteKey
	// destroys each object; an error stops the deletion there.
	testHookDestroy func() error

	// Session copies (sessioncopy.go): copiedLabels are the labels of keys
	// signing with copies; copyDeleted lists, in order, those DeleteKey
	// destroyed; copyEpoch is its length, read without the lock.
	// copyRefusedLogged are the labels whose refused copy was logged.
	copyMu            sync.Mutex
	copiedLabels      map[string]bool
	copyDeleted       []string
	copyEpoch         atomic.Uint64
	copyRefusedLogged map[string]bool
	maxCopies         int           // per session: maxSessionCopies
	copyRecheck       time.Duration // copyRecheck

	// warnedKeys are the labels of keys found with attributes Thiqa would
	// not have given them, already warned about (warnKeyOnce).
	warnMu     sync.Mutex
	warnedKeys map[string]bool

	opened atomic.Int64 // sessions opened by the pool (tests)
}

// Open loads the module, initialises it, finds the token by label and logs
// in as the user once.
//
// Open each token once per process and share the *Token (it is safe for
// concurrent use): PKCS#11 login and session state belong to the whole
// process, so a recovery by one Token (which closes every session on the
// slot) would disturb a second Token on the same token.
func Open(ctx context.Context, cfg Config) (*Token, error) {
	if cfg.TokenLabel == "" {
		return nil, errors.New("hsm: no token label configured")
	}
	size := cfg.PoolSize
	if size == 0 {
		size = 2 * runtime.GOMAXPROCS(0)
	}
	size = max(size, 2)
	callTimeout := cfg.CallTimeout
	if callTimeout <= 0 {
		callTimeout = DefaultCallTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("hsm: registering metrics: %w", err)
	}
	p, _, err := loadModule(cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	t := &Token{
		p:      p,
		module: cfg.ModulePath,
		label:  cfg.TokenLabel,
		pin:    cfg.PIN,
		verify: cfg.VerifyAfterSign,
		log:    log.With("module", cfg.ModulePath, "token", cfg.TokenLabel),
		m:      m,
		keyMet: cfg.KeyMetricLabel,

		storageDir: cfg.StorageDir,
		pool:       newPool(size),

		callTimeout: callTimeout,
		hung:        map[*call]struct{}{},

		maxCopies:   maxSessionCopies,
		copyRecheck: copyRecheck,
	}
	if err := ctx.Err(); err != nil {
		p.Destroy()
		return nil, err
	}
	if err := t.connect(); err != nil {
		p.Destroy()
		return nil, err
	}
	t.gen = 1
	t.log.Info("hsm token open", "slot", t.slot, "pool_size", size)
	return t, nil
}

// loadModule dlopens the module and initialises it, tolerating a library
// another part of the process has already initialised; fresh reports whether
// this call initialised it.
func loadModule(path string) (p *pkcs11.Ctx, fresh bool, err error) {
	if path == "" {
		return nil, false, fmt.Errorf("%w: no module path configured", ErrModuleNotFound)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrModuleNotFound, path, err)
	}
	p = pkcs11.New(path)
	if p == nil {
		return nil, false, fmt.Errorf("%w: %s: not a loadable PKCS#11 library", ErrModuleNotFound, path)
	}
	err = p.Initialize()
	switch {
	case err == nil:
		return p, true, nil
	case isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED):
		return p, false, nil
	default:
		p.Destroy()
		return nil, false, fmt.Errorf("hsm: initialising %s: %w", path, err)
	}
}

// connect finds the slot by label, opens the control session and logs in.
// The control session stays open for the Token's life so the login (which
// PKCS#11 drops when an application's last session closes) survives pool
// churn. Callers hold the write lock or own t exclusively.
func (t *Token) connect() error {
	slot, err := findSlot(t.p, t.label)
	if err != nil {
		return err
	}
	ctl, err := t.p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: opening a session on token %q: %w", t.label, err)
	}
	if err := login(t.p, ctl, pkcs11.CKU_USER, t.pin, t.label); err != nil {
		_ = t.p.CloseSession(ctl)
		return err
	}
	t.slot, t.ctl = slot, ctl
	return nil
}

func login(p *pkcs11.Ctx, s pkcs11.SessionHandle, user uint, pin, label string) error {
	err := p.Login(s, user, pin)
	switch {
	case err == nil, isRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		return nil
	case isRV(err, pkcs11.CKR_PIN_INCORRECT), isRV(err, pkcs11.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("%w for token %q", ErrPINIncorrect, label)
	case isRV(err, pkcs11.CKR_PIN_LOCKED):
		return fmt.Errorf("%w on token %q", ErrPINLocked, label)
	default:
		return fmt.Errorf("hsm: logging in to token %q: %w", label, err)
	}
}

// findSlot returns the slot whose token has the label; the error lists the
// labels present.
func findSlot(p *pkcs11.Ctx, label string) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("hsm: listing slots: %w", err)
	}
	var seen []string
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if ti.Label == label {
			return s, nil
		}
		seen = append(seen, fmt.Sprintf("%q", ti.Label))
	}
	avail := "none"
	if len(seen) > 0 {
		avail = strings.Join(seen, ", ")
	}
	return 0, fmt.Errorf("%w: no token labelled %q (available: %s)", ErrTokenNotFound, label, avail)
}

// Label returns the token label.
func (t *Token) Label() string { return t.label }

// Close closes the Token's sessions and releases the module handle. It waits
// for operations in flight, at most the call timeout: when calls the token
// has not answered are still running then, it returns ErrTimeout and the
// Token closes when they return (a shutdown does not hang on a dead HSM).
// The library is not finalized: other users in the process (another Token
// on the same module) keep working.
func (t *Token) Close() error {
	done := make(chan struct{})
	go func() {
		t.close()
		close(done)
	}()
	timer := time.NewTimer(t.callTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		t.log.Warn("hsm token not closed: calls the token has not answered are still running; it closes when they return")
		return fmt.Errorf("%w: closing token %q: calls it has not answered are still running; it closes when they return", ErrTimeout, t.label)
	}
}

// close is Close, waiting for every operation in flight.
func (t *Token) close() {
	t.rw.Lock()
	defer t.rw.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	for {
		s, ok := t.pool.takeIdle()
		if !ok {
			break
		}
		if s.gen == t.gen {
			_ = t.p.CloseSession(s.h)
		}
	}
	if t.ctl != 0 {
		_ = t.p.CloseSession(t.ctl)
	}
	t.p.Destroy()
	t.log.Info("hsm token closed")
}

// Ping checks that the token is present, logged in, and that a session is
// usable, recovering if it can (for /readyz). It fails at once, with
// ErrTimeout, while calls the token has not answered hold every session or
// have been running for longer than the call timeout: a node whose token
// hangs should get no traffic.
func (t *Token) Ping(ctx context.Context) error {
	if err := t.hungErr(); err != nil {
		return err
	}
	return t.do(ctx, func(s *session) error {
		si, err := t.p.GetSessionInfo(s.h)
		if err != nil {
			return err
		}
		if si.State != pkcs11.CKS_RW_USER_FUNCTIONS && si.State != pkcs11.CKS_RO_USER_FUNCTIONS {
			return pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
		}
		return nil
	})
}

// InitToken initialises a fresh token labelled label in the module's free
// (uninitialised) slot, sets its SO PIN and user PIN. It fails with
// ErrTokenExists when a token already has that label. Used by `thiqa init`
// and tests (SoftHSM always offers one free slot).
func InitToken(modulePath, label, soPIN, userPIN string) error {
	if label == "" || len(label) > 32 {
		return fmt.Errorf("hsm: token label %q must be 1 to 32 bytes", label)
	}
	if soPIN == "" || userPIN == "" {
		return errors.New("hsm: initialising a token needs an SO PIN and a user PIN")
	}
	p, fresh, err := loadModule(modulePath)
	if err != nil {
		return err
	}
	defer func() {
		if fresh { // nobody else in the process uses the library
			_ = p.Finalize()
		}
		p.Destroy()
	}()
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("hsm: listing slots: %w", err)
	}
	free, haveFree := uint(0), false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			if !haveFree {
				free, haveFree = s, true
			}
			continue
		}
		if ti.Label == label {
			return fmt.Errorf("%w: %q in slot %d", ErrTokenExists, label, s)
		}
	}
	if !haveFree {
		return fmt.Errorf("hsm: module %s has no uninitialised slot for token %q", modulePath, label)
	}
	if err := p.InitToken(free, soPIN, label); err != nil {
		return fmt.Errorf("hsm: initialising token %q: %w", label, err)
	}
	// SoftHSM moves the new token to a slot id derived from its serial.
	slot, err := findSlot(p, label)
	if err != nil {
		return fmt.Errorf("hsm: token %q initialised but not found again: %w", label, err)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: opening a session on token %q: %w", label, err)
	}
	defer func() { _ = p.CloseSession(s) }()
	if err := login(p, s, pkcs11.CKU_SO, soPIN, label); err != nil {
		return fmt.Errorf("security officer: %w", err)
	}
	defer func() { _ = p.Logout(s) }()
	if err := p.InitPIN(s, userPIN); err != nil {
		return fmt.Errorf("hsm: setting the user PIN of token %q: %w", label, err)
	}
	return nil
}

// TokenPresent reports whether the module at modulePath has an initialised
// token labelled label. It only lists the slots: it opens no session and
// logs in to nothing, so it counts no failed login against the token.
func TokenPresent(modulePath, label string) (bool, error) {
	p, fresh, err := loadModule(modulePath)
	if err != nil {
		return false, err
	}
	defer func() {
		if fresh { // nobody else in the process uses the library
			_ = p.Finalize()
		}
		p.Destroy()
	}()
	_, err = findSlot(p, label)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrTokenNotFound):
		return false, nil
	default:
		return false, err
	}
}

func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}
