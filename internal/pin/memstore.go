package pin

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// MemoryStore is an in-memory LifecycleStore for tests and single-process
// tools. It keeps no audit chain: the records a method is given to commit
// with a change are not written.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]State
	// pending holds the activations (code hash, expiry, wrong tries) by subject.
	pending map[string]memActivation
}

type memActivation struct {
	hash     []byte
	expires  time.Time
	failures int
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{m: map[string]State{}, pending: map[string]memActivation{}}
}

// CreatePIN implements Store.
func (s *MemoryStore) CreatePIN(_ context.Context, subject, hash string, _ audit.Sealer) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[subject]; ok && st.Hash != "" {
		return false, nil
	}
	if _, ok := s.pending[subject]; ok {
		return false, nil
	}
	s.m[subject] = State{Hash: hash}
	return true, nil
}

// AttemptPIN implements Store.
func (s *MemoryStore) AttemptPIN(_ context.Context, subject string, limit int) (State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[subject]
	if !ok || st.Hash == "" {
		return State{}, false, nil
	}
	if st.Failures < limit {
		s.m[subject] = State{Hash: st.Hash, Failures: st.Failures + 1}
	}
	return st, true, nil
}

// ResetPINFailures implements Store.
func (s *MemoryStore) ResetPINFailures(_ context.Context, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[subject]; ok {
		st.Failures = 0
		s.m[subject] = st
	}
	return nil
}

// LockPIN implements Store: it reports whether the PIN is still locked
// with hash (seal is not written).
func (s *MemoryStore) LockPIN(_ context.Context, subject, hash string, limit int, _ audit.Sealer) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[subject]
	return ok && st.Hash != "" && st.Hash == hash && st.Failures >= limit, nil
}

// ReplacePIN implements LifecycleStore.
func (s *MemoryStore) ReplacePIN(_ context.Context, subject, oldHash, newHash string, _ audit.Sealer) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[subject]; !ok || st.Hash == "" || st.Hash != oldHash {
		return false, nil
	}
	s.m[subject] = State{Hash: newHash}
	return true, nil
}

// ResetPIN implements LifecycleStore. A subject is known once it had a PIN
// or an activation; Register adds one without either.
func (s *MemoryStore) ResetPIN(_ context.Context, subject string, codeHash []byte, expires time.Time, _ audit.Sealer) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[subject]; !ok {
		return false, nil
	}
	s.m[subject] = State{}
	s.pending[subject] = memActivation{hash: bytes.Clone(codeHash), expires: expires}
	return true, nil
}

// Register records subject without a PIN (a credential just enrolled).
func (s *MemoryStore) Register(subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[subject]; !ok {
		s.m[subject] = State{}
	}
}

// ActivatePIN implements LifecycleStore.
func (s *MemoryStore) ActivatePIN(_ context.Context, subject string, codeHash []byte, hash string, now time.Time, limit int, _ audit.Sealer) (ActivationOutcome, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.pending[subject]
	switch {
	case !ok || a.failures >= limit:
		return ActivationNone, a.failures, nil
	case !now.Before(a.expires):
		return ActivationExpired, a.failures, nil
	case !bytes.Equal(a.hash, codeHash):
		a.failures++
		s.pending[subject] = a
		return ActivationWrong, a.failures, nil
	}
	delete(s.pending, subject)
	s.m[subject] = State{Hash: hash}
	return Activated, 0, nil
}
