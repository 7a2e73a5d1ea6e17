package pin

import (
	"context"
	"sync"
)

// MemoryStore is an in-memory Store for tests and single-process tools.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]State
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]State{}} }

// CreatePIN implements Store.
func (s *MemoryStore) CreatePIN(_ context.Context, subject, hash string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[subject]; ok {
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
	if !ok {
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
