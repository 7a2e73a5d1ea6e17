package cmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// errDown is the failure injected: a dependency unreachable for a moment.
var errDown = errors.New("driver: bad connection")

// faultyRenewer is the fixture's enrol.Renewer: while supersedeFails is
// set, Supersede fails (the revocation service unreachable).
type faultyRenewer struct {
	enrol.Renewer
	supersedeFails atomic.Bool
	// failsAfter, when set, makes Supersede supersede and then fail (the
	// renewal not recorded as complete, or the node stopping).
	failsAfter atomic.Bool
}

func (r *faultyRenewer) Supersede(ctx context.Context, actor, serial string) (string, error) {
	if r.supersedeFails.Load() {
		return "", errDown
	}
	old, err := r.Renewer.Supersede(ctx, actor, serial)
	if err == nil && r.failsAfter.Load() {
		return "", errDown
	}
	return old, err
}

// revokeFails is a Revoker that fails (the database or the HSM
// unreachable).
type revokeFails struct{ enrol.Revoker }

func (revokeFails) Revoke(context.Context, string, string, string, func(*x509.Certificate) bool) (*revocation.Result, error) {
	return nil, errDown
}

// revokeFailsFor is a Revoker that fails for serial only (the database
// unreachable whenever that certificate is revoked).
type revokeFailsFor struct {
	enrol.Revoker
	serial string
}

func (r revokeFailsFor) Revoke(ctx context.Context, actor, serial, reason string, allow func(*x509.Certificate) bool) (*revocation.Result, error) {
	if serial == r.serial {
		return nil, errDown
	}
	return r.Revoker.Revoke(ctx, actor, serial, reason, allow)
}

// insertFails is a transaction store whose InsertTransaction fails, for a
// "waiting" transaction only when onlyWaiting; it keeps the transactions
// it was given.
type insertFails struct {
	enrol.TransactionStore
	onlyWaiting bool
	mu          sync.Mutex
	got         []enrol.Transaction
}

func (s *insertFails) InsertTransaction(ctx context.Context, tx enrol.Transaction) error {
	s.mu.Lock()
	s.got = append(s.got, tx)
	s.mu.Unlock()
	if s.onlyWaiting && tx.State != "waiting" {
		return s.TransactionStore.InsertTransaction(ctx, tx)
	}
	return errDown
}

func (f *fixture) state(t *testing.T, tx []byte) string {
	t.Helper()
	got, err := f.db.Enrolments().GetTransaction(t.Context(), hex.EncodeToString(tx))
	if err != nil {
		t.Fatal(err)
	}
	return got.State
}

func (f *fixture) retry(t *testing.T) int {
	t.Helper()
	n, err := f.srv.RetryFollowUps(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCMPRejectionRevocationRetried: the certificate a client rejects
// cannot be revoked when the certConf comes (the revocation service
// fails): the client is answered pkiConf, the transaction stays
// "rejecting", and the sweep revokes the certificate once the certConf's
// claim is stale, records it (cmp.followup) and closes the transaction,
// although another transaction of the same claim fails for good.
func TestCMPRejectionRevocationRetried(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			// A rejection whose revocation fails at every try.
			if err := f.db.Enrolments().InsertTransaction(ctx, enrol.Transaction{ID: "0bad", Sender: "ref:GONE", Serial: "7f00dead",
				Created: f.now().Add(-time.Minute), State: "waiting"}); err != nil {
				t.Fatal(err)
			}
			if err := f.db.Enrolments().CloseTransaction(ctx, "0bad", "rejecting", f.now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			cl, ip := f.enrolIR(t, nil)
			f.srv.c.Revoker = revokeFails{}
			if a := f.certConf(t, cl, ip, true); a.m.bodyType != bodyPKIConf {
				t.Fatalf("rejecting certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.srv.c.Revoker = revokeFailsFor{Revoker: f.revoker, serial: "7f00dead"}
			f.wantRevoked(t, "rejected certificate, revocation failed", ip.cert, false, 0)
			if got := f.state(t, cl.tx); got != "rejecting" {
				t.Fatalf("transaction %s, want rejecting", got)
			}
			if n := f.retry(t); n != 0 {
				t.Fatalf("%d retried while the certConf's claim holds", n)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			n, err := f.srv.RetryFollowUps(ctx)
			if n != 1 || err == nil {
				t.Fatalf("retry: %d done, %v; want 1 and the failure of the other", n, err)
			}
			f.wantRevoked(t, "rejected certificate after the retry", ip.cert, true, revocation.CessationOfOperation)
			if got := f.state(t, cl.tx); got != "rejected" {
				t.Fatalf("transaction %s, want rejected", got)
			}
			if r, x := f.count(t, "certificate.revoke", "success"), f.count(t, "cmp.followup", "success"); r != 1 || x != 1 {
				t.Fatalf("%d revocations and %d cmp.followup records, want 1 and 1", r, x)
			}
			if n := f.retry(t); n != 0 {
				t.Fatalf("retried %d again", n)
			}
			if got, err := f.db.Enrolments().GetTransaction(ctx, "0bad"); err != nil || got.State != "rejecting" {
				t.Fatalf("the failing transaction: %+v %v, want rejecting (claimed again later)", got, err)
			}
			if a := f.certConf(t, cl, ip, false); a.failInfo != "certConfirmed" {
				t.Fatalf("certConf after the retry: %s %s, want certConfirmed", bodyName(a.m.bodyType), a.failInfo)
			}
		})
	}
}

// TestCMPKeyUpdateRejectionRetried: the holder rejects the certificate of
// its kur while the revocation service fails: until the sweep revokes it
// and withdraws the key update, a second kur is refused; after that the
// current certificate is still valid and the holder updates it again.
func TestCMPKeyUpdateRejectionRetried(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			cl, kup := f.keyUpdate(t, k, old, false)
			f.srv.c.Revoker = revokeFails{}
			if a := f.certConf(t, cl, kup, true); a.m.bodyType != bodyPKIConf {
				t.Fatalf("rejecting certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.srv.c.Revoker = f.revoker
			f.wantRevoked(t, "rejected certificate, revocation failed", kup.cert, false, 0)
			f.advance(enrol.ExpiryLease + time.Second)
			if n := f.retry(t); n != 1 {
				t.Fatalf("retried %d, want 1", n)
			}
			f.wantRevoked(t, "rejected certificate after the retry", kup.cert, true, revocation.CessationOfOperation)
			f.wantRevoked(t, "current certificate", old, false, 0)
			f.retryKeyUpdate(t, k, old)
		})
	}
}

// TestCMPSupersedeRetried: a kur without implicit confirmation is
// confirmed while superseding the current certificate fails: the
// transaction stays "confirming" and the sweep supersedes it once the
// certConf's claim is stale, once, leaving the confirmed certificate
// valid.
func TestCMPSupersedeRetried(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			cl, kup := f.keyUpdate(t, k, old, false)
			f.renewer.supersedeFails.Store(true)
			if a := f.certConf(t, cl, kup, false); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.renewer.supersedeFails.Store(false)
			f.wantRevoked(t, "current certificate, supersede failed", old, false, 0)
			if got := f.state(t, cl.tx); got != "confirming" {
				t.Fatalf("transaction %s, want confirming", got)
			}
			if n := f.retry(t); n != 0 {
				t.Fatalf("%d retried while the certConf's claim holds", n)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			if n := f.retry(t); n != 1 {
				t.Fatalf("retried %d, want 1", n)
			}
			f.wantRevoked(t, "current certificate after the retry", old, true, revocation.Superseded)
			f.wantRevoked(t, "confirmed certificate", kup.cert, false, 0)
			if got := f.state(t, cl.tx); got != "confirmed" {
				t.Fatalf("transaction %s, want confirmed", got)
			}
			f.advance(enrol.ConfirmWaitTime)
			if n, m := f.retry(t), f.expire(t); n != 0 || m != 0 {
				t.Fatalf("later sweeps: %d retried, %d revoked", n, m)
			}
			if r, x := f.count(t, "certificate.revoke", "success"), f.count(t, "cmp.followup", "success"); r != 1 || x != 1 {
				t.Fatalf("%d revocations and %d cmp.followup records, want 1 and 1", r, x)
			}
		})
	}
}

// TestCMPSupersedeRetryNewRevoked: superseding fails after the certConf,
// and the confirmed certificate is revoked before the sweep retries (its
// holder revoked it): the sweep must not supersede the current one, which
// would leave the holder none; it withdraws the key update instead, and
// the holder updates its current certificate again.
func TestCMPSupersedeRetryNewRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			cl, kup := f.keyUpdate(t, k, old, false)
			f.renewer.supersedeFails.Store(true)
			if a := f.certConf(t, cl, kup, false); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.renewer.supersedeFails.Store(false)
			if _, err := f.revoker.Revoke(t.Context(), "officer-1", hex.EncodeToString(kup.cert.SerialNumber.Bytes()), "cessationOfOperation", nil); err != nil {
				t.Fatal(err)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			if n := f.retry(t); n != 1 {
				t.Fatalf("retried %d, want 1", n)
			}
			f.wantRevoked(t, "current certificate after the retry", old, false, 0)
			if got := f.state(t, cl.tx); got != "confirmed" {
				t.Fatalf("transaction %s, want confirmed", got)
			}
			f.retryKeyUpdate(t, k, old)
		})
	}
}

// TestCMPTransactionNotRecorded: the transaction of a certificate issued
// without implicit confirmation cannot be recorded. No certConf could
// confirm it and the sweep would not find it: it is not sent (the client
// is answered systemFailure), it is revoked at once (cmp.unconfirmed), and
// a key update is withdrawn (the holder updates its current certificate
// again). With implicit confirmation nothing waits for the record: the
// certificate is sent, and stays valid.
func TestCMPTransactionNotRecorded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			txs := &insertFails{TransactionStore: f.db.Enrolments()}
			f.srv.c.Transactions = txs
			ref, secret := f.enrolment(t)
			nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			cl := &client{ref: ref, secret: secret, now: f.now}
			a := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyIR, certReqBody(t, nk, nk, nil)), ""))
			if a.m.bodyType != bodyError || a.failInfo != "systemFailure" {
				t.Fatalf("ir whose transaction was not recorded: %s %s, want systemFailure", bodyName(a.m.bodyType), a.failInfo)
			}
			if len(txs.got) == 0 {
				t.Fatal("no transaction recorded")
			}
			f.wantRevokedSerial(t, "unrecorded certificate", txs.got[0].Serial, true)
			if got := f.count(t, "cmp.unconfirmed", "success"); got != 1 {
				t.Fatalf("%d cmp.unconfirmed records, want 1", got)
			}

			// A key update: the holder keeps its certificate, and may update
			// it again once the database is back.
			f.srv.c.Transactions = f.db.Enrolments()
			k, old := f.holderCert(t)
			txs = &insertFails{TransactionStore: f.db.Enrolments()}
			f.srv.c.Transactions = txs
			kcl := &client{key: k, cert: old, now: f.now}
			a = parseAnswer(t, f.srv.Handle(ctx, kcl.message(t, bodyKUR, certReqBody(t, nk, nk, old.SerialNumber)), ""))
			if a.m.bodyType != bodyError || a.failInfo != "systemFailure" {
				t.Fatalf("kur whose transaction was not recorded: %s %s, want systemFailure", bodyName(a.m.bodyType), a.failInfo)
			}
			f.wantRevokedSerial(t, "unrecorded key update", txs.got[0].Serial, true)
			f.wantRevoked(t, "current certificate", old, false, 0)
			f.srv.c.Transactions = f.db.Enrolments()
			cl2, kup := f.keyUpdate(t, k, old, false)
			if a := f.certConf(t, cl2, kup, false); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf of the second kur: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.wantRevoked(t, "current certificate after the second kur", old, true, revocation.Superseded)

			// Implicit confirmation: sent, and valid.
			f.srv.c.Transactions = &insertFails{TransactionStore: f.db.Enrolments()}
			_, ip := f.enrolIR(t, implicitConfirm)
			f.wantRevoked(t, "implicitly confirmed certificate", ip.cert, false, 0)
		})
	}
}

// TestCMPTransactionNotRecordedRevocationFails: the transaction cannot be
// recorded and the certificate cannot be revoked at once either: it was
// recorded again, claimed for the sweep, which revokes it once the claim
// is stale.
func TestCMPTransactionNotRecordedRevocationFails(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			txs := &insertFails{TransactionStore: f.db.Enrolments(), onlyWaiting: true}
			f.srv.c.Transactions, f.srv.c.Revoker = txs, revokeFails{}
			ref, secret := f.enrolment(t)
			nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			cl := &client{ref: ref, secret: secret, now: f.now}
			a := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyIR, certReqBody(t, nk, nk, nil)), ""))
			if a.m.bodyType != bodyError || a.failInfo != "systemFailure" {
				t.Fatalf("ir: %s %s, want systemFailure", bodyName(a.m.bodyType), a.failInfo)
			}
			f.srv.c.Transactions, f.srv.c.Revoker = f.db.Enrolments(), f.revoker
			serial := txs.got[0].Serial
			f.wantRevokedSerial(t, "certificate before the sweep", serial, false)
			if n := f.expire(t); n != 0 {
				t.Fatalf("the sweep revoked %d while the claim holds", n)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			if n := f.expire(t); n != 1 {
				t.Fatalf("the sweep revoked %d, want 1", n)
			}
			f.wantRevokedSerial(t, "certificate after the sweep", serial, true)
			if got := f.state(t, cl.tx); got != "expired" {
				t.Fatalf("transaction %s, want expired", got)
			}
		})
	}
}

// wantRevokedSerial checks whether the certificate serial is revoked.
func (f *fixture) wantRevokedSerial(t *testing.T, what, serial string, revoked bool) {
	t.Helper()
	rec, err := f.db.Certificates(nil).GetCertificate(t.Context(), serial)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revoked != revoked {
		t.Fatalf("%s: revoked %v, want %v", what, rec.Revoked, revoked)
	}
}

// TestCMPSupersedeDoneThenNewRevoked: the certConf's follow-up superseded
// the current certificate but failed after (not recorded as complete, or
// the node stopped before closing the transaction); its holder then
// revokes the confirmed certificate before the sweep retries. The sweep
// must not withdraw the key update and record that the replaced
// certificate "stays valid": it is revoked (superseded). It completes the
// supersede instead, and says so.
func TestCMPSupersedeDoneThenNewRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			cl, kup := f.keyUpdate(t, k, old, false)
			f.renewer.failsAfter.Store(true)
			if a := f.certConf(t, cl, kup, false); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.renewer.failsAfter.Store(false)
			f.wantRevoked(t, "current certificate, superseded by the failed follow-up", old, true, revocation.Superseded)
			if got := f.state(t, cl.tx); got != "confirming" {
				t.Fatalf("transaction %s, want confirming", got)
			}
			if _, err := f.revoker.Revoke(t.Context(), "holder", hex.EncodeToString(kup.cert.SerialNumber.Bytes()), "keyCompromise", nil); err != nil {
				t.Fatal(err)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			if n := f.retry(t); n != 1 {
				t.Fatalf("retried %d, want 1", n)
			}
			if got := f.state(t, cl.tx); got != "confirmed" {
				t.Fatalf("transaction %s, want confirmed", got)
			}
			var details map[string]any
			err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
				if r.Action == "cmp.followup" {
					details = nil
					return json.Unmarshal(r.Details, &details)
				}
				return nil
			})
			if err != nil || details == nil {
				t.Fatalf("no cmp.followup record: %v", err)
			}
			if details["superseded"] != true || details["replaces"] != hex.EncodeToString(old.SerialNumber.Bytes()) || details["note"] != "the follow-up of the certConf failed when it came: done by the sweep" {
				t.Fatalf("cmp.followup says %v: the replaced certificate was superseded", details)
			}
		})
	}
}
