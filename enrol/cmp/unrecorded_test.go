package cmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store/storetest"
)

// hungStore is a transaction store whose first InsertTransaction fails
// (the connection lost) and whose later writes hang until their context
// ends or release is closed: a database that stopped answering.
type hungStore struct {
	enrol.TransactionStore
	release <-chan struct{}
	inserts atomic.Int32
}

func (s *hungStore) hang(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.release:
		return errDown
	}
}

func (s *hungStore) InsertTransaction(ctx context.Context, _ enrol.Transaction) error {
	if s.inserts.Add(1) == 1 {
		return errDown
	}
	return s.hang(ctx)
}

func (s *hungStore) FinishExpired(ctx context.Context, _ string, _ time.Time) error {
	return s.hang(ctx)
}

// hungRevoker is a Revoker whose revocations hang like hungStore's
// writes.
type hungRevoker struct {
	enrol.Revoker
	release <-chan struct{}
}

func (r hungRevoker) Revoke(ctx context.Context, _, _, _ string, _ func(*x509.Certificate) bool) (*revocation.Result, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.release:
		return nil, errDown
	}
}

// TestCMPTransactionNotRecordedDatabaseHangs: the transaction of an ir
// cannot be recorded, and the database then stops answering (neither the
// claim for the sweep nor the revocation returns). The client still gets
// its failure at once instead of a request held until the database comes
// back: unrecorded gives up after its bound (the request has no deadline,
// and the client going away must not stop it either).
func TestCMPTransactionNotRecordedDatabaseHangs(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the fixture's own cleanups
	f.srv.c.Transactions = &hungStore{TransactionStore: f.db.Enrolments(), release: release}
	f.srv.c.Revoker = hungRevoker{release: release}
	f.srv.unrecordedWait = 200 * time.Millisecond

	ref, secret := f.enrolment(t)
	nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cl := &client{ref: ref, secret: secret, now: f.now}
	msg := cl.message(t, bodyIR, certReqBody(t, nk, nk, nil))
	done := make(chan []byte, 1)
	start := time.Now()
	go func() { done <- f.srv.Handle(t.Context(), msg, "") }()
	select {
	case raw := <-done:
		a := parseAnswer(t, raw)
		if a.m.bodyType != bodyError || (a.failInfo != "systemFailure" && a.failInfo != "systemUnavail") {
			t.Fatalf("ir whose transaction was not recorded: %s %s, want systemFailure or systemUnavail", bodyName(a.m.bodyType), a.failInfo)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("answered after %s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after 10 s: handling the unrecorded certificate waits for a database that does not answer")
	}
}
