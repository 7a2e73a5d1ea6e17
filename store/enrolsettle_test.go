package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestEnrolmentCommitLostSettled on PostgreSQL (SQLite commits in the
// process): when the connection drops while the server commits a new
// enrolment or its use, InsertEnrolment and CompleteEnrolment look
// whether it took effect by its record in the audit log. Taken: nil, the
// enrolment recorded (or used) with one record, the sealer told once that
// it was committed. Not taken: the error, the enrolment as it was, no
// record, the sealer told it failed.
func TestEnrolmentCommitLostSettled(t *testing.T) {
	cfg := storetest.Dialects()[1].NewConfig(t)
	db := storetest.Open(t, cfg)
	ctx := ctxT(t)
	mode, err := db.LoseCommits(ctx, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	s := db.Enrolments()
	now := time.Now().UTC().Truncate(time.Second)
	prepare := func(action, ref string) *toldSealer {
		t.Helper()
		seal, err := log.Prepare(audit.Entry{Actor: "officer-1", Action: action, Object: ref, Outcome: audit.OutcomeSuccess})
		if err != nil {
			t.Fatal(err)
		}
		return &toldSealer{Sealer: seal}
	}
	insert := func(ref string, lose int32) (*toldSealer, error) {
		t.Helper()
		told := prepare(enrol.ActionCreate, ref)
		mode.Store(lose)
		defer mode.Store(store.CommitKept)
		return told, s.InsertEnrolment(ctx, enrol.Enrolment{Reference: ref, Profile: policies.ProfileCitizenAuth,
			Subject: map[string]string{"commonName": ref}, CreatedBy: "officer-1", Created: now, Expires: now.Add(time.Hour), State: enrol.StateOpen}, told)
	}
	complete := func(ref string, lose int32) (*toldSealer, error) {
		t.Helper()
		told := prepare(enrol.ActionConsume, ref)
		mode.Store(lose)
		defer mode.Store(store.CommitKept)
		return told, s.CompleteEnrolment(ctx, ref, "est:"+ref, "0a"+ref, now, told)
	}
	want := func(what, ref, state string, action string, records int, told *toldSealer, committed, failed int32) {
		t.Helper()
		got, err := s.GetEnrolment(ctx, ref)
		switch {
		case state == "" && !errors.Is(err, enrol.ErrNotFound):
			t.Fatalf("%s: enrolment %+v %v, want none", what, got, err)
		case state != "" && (err != nil || got.State != state):
			t.Fatalf("%s: enrolment %+v %v, want %s", what, got, err, state)
		}
		if n := storetest.AuditCount(t, db, action, audit.OutcomeSuccess); n != records {
			t.Fatalf("%s: %d %s records, want %d", what, n, action, records)
		}
		if c, f := told.committed.Load(), told.failed.Load(); c != committed || f != failed {
			t.Fatalf("%s: sealer told committed %d and failed %d times, want %d and %d", what, c, f, committed, failed)
		}
	}

	told, err := insert("DONE", store.CommitLostDone)
	if err != nil {
		t.Fatalf("InsertEnrolment committed, its connection lost: %v, want nil", err)
	}
	want("inserted, connection lost", "DONE", enrol.StateOpen, enrol.ActionCreate, 1, told, 1, 0)
	told, err = insert("UNDONE", store.CommitLostUndone)
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("InsertEnrolment not committed, its connection lost: %v, want the failure", err)
	}
	want("not inserted, connection lost", "UNDONE", "", enrol.ActionCreate, 1, told, 0, 1)
	if told, err = insert("UNDONE", store.CommitKept); err != nil {
		t.Fatalf("InsertEnrolment tried again: %v", err)
	}
	want("inserted again", "UNDONE", enrol.StateOpen, enrol.ActionCreate, 2, told, 1, 0)

	for _, ref := range []string{"DONE", "UNDONE"} {
		if err := s.ClaimEnrolment(ctx, ref, "est:"+ref, now, now.Add(-enrol.ClaimTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	told, err = complete("DONE", store.CommitLostDone)
	if err != nil {
		t.Fatalf("CompleteEnrolment committed, its connection lost: %v, want nil", err)
	}
	want("used, connection lost", "DONE", enrol.StateUsed, enrol.ActionConsume, 1, told, 1, 0)
	told, err = complete("UNDONE", store.CommitLostUndone)
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("CompleteEnrolment not committed, its connection lost: %v, want the failure", err)
	}
	want("not used, connection lost", "UNDONE", enrol.StateClaimed, enrol.ActionConsume, 1, told, 0, 1)

	// A COMMIT that reaches the server only after the client saw the
	// connection go: the look waits for the server to end the transaction
	// (it holds the audit head's lock) instead of answering "not taken"
	// for a change that then takes effect.
	told, err = insert("LATE", store.CommitLostLate)
	if err != nil {
		t.Fatalf("InsertEnrolment committed late, its connection lost: %v, want nil", err)
	}
	want("inserted late, connection lost", "LATE", enrol.StateOpen, enrol.ActionCreate, 3, told, 1, 0)
	if err := s.ClaimEnrolment(ctx, "LATE", "est:LATE", now, now.Add(-enrol.ClaimTimeout)); err != nil {
		t.Fatal(err)
	}
	told, err = complete("LATE", store.CommitLostLate)
	if err != nil {
		t.Fatalf("CompleteEnrolment committed late, its connection lost: %v, want nil", err)
	}
	want("used late, connection lost", "LATE", enrol.StateUsed, enrol.ActionConsume, 2, told, 1, 0)
	if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
}

// commitLosingStore is an enrol.Store whose InsertEnrolment and
// CompleteEnrolment lose their COMMIT as insert and complete say
// (store.Commit*).
type commitLosingStore struct {
	enrol.Store
	mode             *atomic.Int32
	insert, complete atomic.Int32
}

func (s *commitLosingStore) InsertEnrolment(ctx context.Context, e enrol.Enrolment, seal audit.Sealer) error {
	s.mode.Store(s.insert.Load())
	defer s.mode.Store(store.CommitKept)
	return s.Store.InsertEnrolment(ctx, e, seal)
}

func (s *commitLosingStore) CompleteEnrolment(ctx context.Context, reference, claim, serial string, now time.Time, seal audit.Sealer) error {
	s.mode.Store(s.complete.Load())
	defer s.mode.Store(store.CommitKept)
	return s.Store.CompleteEnrolment(ctx, reference, claim, serial, now, seal)
}

// testEnrolService is an enrol.Service over db's enrolments (through
// wrap, nil: as they are), a test CA and db's audit log.
func testEnrolService(t *testing.T, db *store.DB, wrap func(enrol.Store) enrol.Store) *enrol.Service {
	t.Helper()
	secretKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	var st enrol.Store = db.Enrolments()
	if wrap != nil {
		st = wrap(st)
	}
	svc, err := enrol.New(enrol.Config{Store: st, Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: secretKey,
		Profiles: []string{policies.ProfileCitizenAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

var enrolSubject = map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}

// newCSR returns a new key's CSR.
func newCSR(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// TestEnrolmentCommitLostAnswered on PostgreSQL: an enrolment whose
// COMMIT was lost but took effect is answered as made, with the secret
// that authenticates it, and a certificate whose enrolment's use was
// committed so is delivered, the use recorded once; one not committed is
// answered as failed, and no enrolment exists.
func TestEnrolmentCommitLostAnswered(t *testing.T) {
	cfg := storetest.Dialects()[1].NewConfig(t)
	db := storetest.Open(t, cfg)
	ctx := ctxT(t)
	mode, err := db.LoseCommits(ctx, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	losing := &commitLosingStore{mode: mode}
	svc := testEnrolService(t, db, func(s enrol.Store) enrol.Store { losing.Store = s; return losing })
	rows := func() int64 {
		n, err := db.QueryInt64(ctx, `SELECT COUNT(*) FROM enrolments`)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	losing.insert.Store(store.CommitLostUndone)
	if c, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, enrolSubject, 0); !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("Create not committed, its connection lost: %+v %v, want the failure", c, err)
	}
	if n := rows(); n != 0 {
		t.Fatalf("%d enrolments after a create not committed", n)
	}
	losing.insert.Store(store.CommitLostDone)
	c, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, enrolSubject, 0)
	if err != nil {
		t.Fatalf("Create committed, its connection lost: %v, want the enrolment", err)
	}
	losing.insert.Store(store.CommitKept)
	if c.Secret != svc.Secret(c.Reference) {
		t.Fatalf("answered secret %q, not the enrolment's", c.Secret)
	}
	e, err := svc.CheckSecret(ctx, c.Reference, c.Secret)
	if err != nil || e.State != enrol.StateOpen {
		t.Fatalf("the enrolment answered: %+v %v", e, err)
	}
	if n, m := rows(), storetest.AuditCount(t, db, enrol.ActionCreate, audit.OutcomeSuccess); n != 1 || m != 1 {
		t.Fatalf("%d enrolments, %d success records of their creation", n, m)
	}

	losing.complete.Store(store.CommitLostDone)
	got, err := svc.Enrol(ctx, e, "est:1", enrol.Key{CSR: newCSR(t)}, "est")
	if err != nil {
		t.Fatalf("Enrol whose use was committed, its connection lost: %v, want the certificate", err)
	}
	if got.Certificate == nil || len(got.Chain) != 2 {
		t.Fatalf("answered %+v", got)
	}
	if e, err := svc.Lookup(ctx, c.Reference); err != nil || e.State != enrol.StateUsed || e.Serial != got.Serial {
		t.Fatalf("the enrolment after its use: %+v %v (answered %s)", e, err, got.Serial)
	}
	if n := storetest.AuditCount(t, db, enrol.ActionConsume, audit.OutcomeSuccess); n != 1 {
		t.Fatalf("%d use records", n)
	}
	if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
}

// unsettledStore is an enrol.Store whose CompleteEnrolment commits the use
// and then answers that its outcome is unknown, as when the connection was
// lost during COMMIT and the audit log could not be read either.
type unsettledStore struct{ enrol.Store }

func (s unsettledStore) CompleteEnrolment(ctx context.Context, reference, claim, serial string, now time.Time, seal audit.Sealer) error {
	if err := s.Store.CompleteEnrolment(ctx, reference, claim, serial, now, seal); err != nil {
		return err
	}
	return fmt.Errorf("store: completing enrolment %s: %w", reference, store.ErrOutcomeUnknown)
}

// TestEnrolUnsettledUseNotTwice: an enrolment whose use was committed but
// answered as of unknown outcome (not settled) is not reopened by the
// release that follows the failure: it stays used, and neither the same
// key nor another obtains a second certificate from it.
func TestEnrolUnsettledUseNotTwice(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			ctx := ctxT(t)
			svc := testEnrolService(t, db, func(s enrol.Store) enrol.Store { return unsettledStore{s} })
			c, err := svc.Create(ctx, "officer-1", policies.ProfileCitizenAuth, enrolSubject, 0)
			if err != nil {
				t.Fatal(err)
			}
			e, err := svc.CheckSecret(ctx, c.Reference, c.Secret)
			if err != nil {
				t.Fatal(err)
			}
			csr := newCSR(t)
			if got, err := svc.Enrol(ctx, e, "est:1", enrol.Key{CSR: csr}, "est"); !errors.Is(err, store.ErrOutcomeUnknown) {
				t.Fatalf("Enrol whose use was not settled: %+v %v, want the failure", got, err)
			}
			after, err := svc.Lookup(ctx, c.Reference)
			if err != nil || after.State != enrol.StateUsed || after.Serial == "" {
				t.Fatalf("the enrolment after its unsettled use: %+v %v, want used", after, err)
			}
			// e is the enrolment as read before its use (open), as a
			// concurrent request holds it.
			for i, key := range []enrol.Key{{CSR: csr}, {CSR: newCSR(t)}} {
				if got, err := svc.Enrol(ctx, e, fmt.Sprintf("est:%d", i+2), key, "est"); !errors.Is(err, enrol.ErrUsed) {
					t.Fatalf("Enrol %d again after the unsettled use: %+v %v, want %v", i, got, err, enrol.ErrUsed)
				}
			}
			if n := storetest.AuditCount(t, db, enrol.ActionConsume, audit.OutcomeSuccess); n != 1 {
				t.Fatalf("%d use records, want 1", n)
			}
			if n, err := db.QueryInt64(ctx, `SELECT COUNT(*) FROM certificates`); err != nil || n != 1 {
				t.Fatalf("%d certificates issued (%v), want 1", n, err)
			}
		})
	}
}
