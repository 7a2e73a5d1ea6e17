package revocation

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// sweepStore answers the poller: no revocations to carry, and one
// certificate found by the first sweep of the blocked keys.
type sweepStore struct {
	Store // the methods the poller does not call
	mu    sync.Mutex
	since []time.Time
}

func (s *sweepStore) RecordedSince(context.Context, time.Time, int) ([]Revocation, error) {
	return nil, nil
}

func (s *sweepStore) SweepBlockedKeys(_ context.Context, since, now time.Time, rec Records) ([]Consequence, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since = append(s.since, since)
	if len(s.since) > 1 {
		return nil, nil
	}
	cs := []Consequence{{Revocation: Revocation{Serial: "0b", CA: "citizen", RevokedAt: now, Reason: int(KeyCompromise), RevokedBy: "officer-9"}, Origin: "0a"}}
	seal, err := rec(Change{Consequences: cs})
	if err != nil {
		return nil, err
	}
	if _, err := seal.Seal(audit.Head{Hash: audit.GenesisHash()}); err != nil {
		return nil, err
	}
	return cs, nil
}

type memAuditor struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (m *memAuditor) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return audit.Record{}, nil
}

// Prepare records entries as they would be sealed (the store is a fake).
func (m *memAuditor) Prepare(entries ...audit.Entry) (audit.Sealer, error) {
	return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.entries = append(m.entries, entries...)
		return nil, nil
	}), nil
}

type triggers struct {
	http.Handler
	mu  sync.Mutex
	cas []string
}

func (p *triggers) Trigger(ca string) { p.mu.Lock(); p.cas = append(p.cas, ca); p.mu.Unlock() }

// TestPollSweepsBlockedKeys: the poller's first sweep looks at every
// blocked key, later ones at the last sweepWindow; a certificate the sweep
// revokes is audited naming its original and carried to the CRLs.
func TestPollSweepsBlockedKeys(t *testing.T) {
	st, log, pub := &sweepStore{}, &memAuditor{}, &triggers{}
	s, err := New(Options{Store: st, Certificates: nopCertificates{}, Audit: log, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	s.Poll(ctx, 100*time.Millisecond) // sweeps every second
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.since) < 2 || !st.since[0].Equal(time.Unix(0, 0)) || time.Since(st.since[1]) < sweepWindow || time.Since(st.since[1]) > sweepWindow+5*time.Second {
		t.Fatalf("sweeps since %v", st.since)
	}
	if len(log.entries) != 1 || log.entries[0].Object != "0b" || log.entries[0].Actor != "officer-9" || log.entries[0].Details.(map[string]any)["consequenceOf"] != "0a" {
		t.Fatalf("audit %+v", log.entries)
	}
	if len(pub.cas) != 1 || pub.cas[0] != "citizen" {
		t.Fatalf("CRL triggers %v", pub.cas)
	}
}

type nopCertificates struct{ Certificates }
