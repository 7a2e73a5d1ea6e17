package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestPINLockNeverLacksItsRecord on SQLite and PostgreSQL, for signing
// PINs and mobile-ID login PINs: the wrong try that locks a PIN commits
// the credential.pin.locked record while the PIN is locked. When the
// database refuses that record the try still counts (the PIN stays
// locked: the right PIN is refused next, no extra tries, no counter
// reset), the answer is ErrLockUnrecorded (not a wrong PIN), and the
// failure counts in thiqa_audit_append_failures_total; after an officer's
// reset and a new PIN, the try that locks it again commits exactly one
// lock record.
func TestPINLockNeverLacksItsRecord(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			reg := prometheus.NewRegistry()
			log := audit.New(db, nil, reg, audit.Options{})
			t.Cleanup(log.Close)
			sc := db.SigningCredentials()
			if _, err := sc.RegisterCredential(ctx, signing.CredentialRecord{ID: "cred-s", OwnerKind: signing.OwnerCitizen, OwnerID: "12345678",
				Profile: "citizen-signing", KeyLabel: "cred-s", CertSerial: "0b", ChainDER: []byte{1}, NotAfter: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := db.Identity().EnrolMobileID(ctx, "cred-m", "12345678", time.Now()); err != nil {
				t.Fatal(err)
			}
			failures := 0.0
			for _, c := range []struct {
				subject, table, key string
				store               pin.LifecycleStore
			}{
				{"cred-s", "signing_credentials", "id", sc},
				{"cred-m", "oidc_mobile_ids", "credential_id", db.Identity()},
			} {
				p := pin.DefaultParams()
				p.MemoryKiB, p.Time, p.MaxFailures = 64, 1, 3
				m, err := pin.New(c.store, p)
				if err != nil {
					t.Fatal(err)
				}
				lock := func() audit.Sealer {
					t.Helper()
					s, err := log.Prepare(audit.Entry{Actor: "12345678", Action: signing.ActionPINLocked, Object: c.subject, Outcome: audit.OutcomeSuccess})
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
				counted := func() int64 {
					t.Helper()
					n, err := db.QueryInt64(ctx, `SELECT pin_failures FROM `+c.table+` WHERE `+c.key+` = ?`, c.subject)
					if err != nil {
						t.Fatal(err)
					}
					return n
				}
				if err := m.Set(ctx, c.subject, "482916"); err != nil {
					t.Fatal(err)
				}
				for range 2 {
					if err := m.CheckRecorded(ctx, c.subject, "000001", lock()); !errors.Is(err, pin.ErrWrong) || errors.Is(err, pin.ErrLocked) {
						t.Fatalf("%s: a wrong try before the limit: %v", c.subject, err)
					}
				}
				restore := refuseAuditOf(t, db, d.Name, c.subject)
				err = m.CheckRecorded(ctx, c.subject, "000001", lock())
				if !errors.Is(err, pin.ErrLockUnrecorded) || errors.Is(err, pin.ErrWrong) || errors.Is(err, pin.ErrLocked) {
					t.Fatalf("%s: the locking try whose record was refused: %v", c.subject, err)
				}
				restore()
				failures++
				if got := counterValue(t, reg, "thiqa_audit_append_failures_total", nil); got != failures {
					t.Fatalf("%s: thiqa_audit_append_failures_total = %v, want %v", c.subject, got, failures)
				}
				if n := counted(); n != 3 {
					t.Fatalf("%s: %d tries counted after the unrecorded lock, want 3", c.subject, n)
				}
				if err := m.Check(ctx, c.subject, "482916"); !errors.Is(err, pin.ErrLocked) {
					t.Fatalf("%s: the right PIN after the unrecorded lock: %v (an extra try)", c.subject, err)
				}
				if _, n := auditRecordsIn(t, db, signing.ActionPINLocked, c.subject); n != 0 {
					t.Fatalf("%s: %d lock records of a refused record", c.subject, n)
				}

				a, err := m.Reset(ctx, c.subject)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Activate(ctx, c.subject, a.Code, "583920"); err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					err := m.CheckRecorded(ctx, c.subject, "000001", lock())
					var we *pin.WrongError
					if !errors.As(err, &we) || we.Remaining != 2-i {
						t.Fatalf("%s: wrong try %d: %v", c.subject, i+1, err)
					}
				}
				if _, n := auditRecordsIn(t, db, signing.ActionPINLocked, c.subject); n != 1 {
					t.Fatalf("%s: %d lock records, want 1", c.subject, n)
				}
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}

// TestPINLockParallelTries on SQLite and PostgreSQL: wrong tries sent at
// once through two PIN managers (two nodes) never exceed the limit: the
// limit's tries are answered wrong, the rest locked, one lock record is
// committed, and the right PIN is refused afterwards.
func TestPINLockParallelTries(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			if err := db.Identity().EnrolMobileID(ctx, "cred-p", "12345678", time.Now()); err != nil {
				t.Fatal(err)
			}
			p := pin.DefaultParams()
			p.MemoryKiB, p.Time, p.MaxFailures = 64, 1, 3
			var nodes [2]*pin.Manager
			for i := range nodes {
				m, err := pin.New(db.Identity(), p)
				if err != nil {
					t.Fatal(err)
				}
				nodes[i] = m
			}
			if err := nodes[0].Set(ctx, "cred-p", "482916"); err != nil {
				t.Fatal(err)
			}
			const tries = 12
			errs := make(chan error, tries)
			for i := range tries {
				go func() {
					lock, err := log.Prepare(audit.Entry{Actor: "citizen:12345678", Action: signing.ActionPINLocked, Object: "cred-p", Outcome: audit.OutcomeSuccess})
					if err != nil {
						errs <- err
						return
					}
					errs <- nodes[i%2].CheckRecorded(ctx, "cred-p", "000001", lock)
				}()
			}
			wrong, locked := 0, 0
			for range tries {
				switch err := <-errs; {
				case errors.Is(err, pin.ErrWrong):
					wrong++
				case errors.Is(err, pin.ErrLocked):
					locked++
				default:
					t.Fatalf("a try: %v", err)
				}
			}
			if wrong != 3 || locked != tries-3 {
				t.Fatalf("%d answered wrong and %d locked, want 3 and %d", wrong, locked, tries-3)
			}
			if _, n := auditRecordsIn(t, db, signing.ActionPINLocked, "cred-p"); n != 1 {
				t.Fatalf("%d lock records, want 1", n)
			}
			if err := nodes[1].Check(ctx, "cred-p", "482916"); !errors.Is(err, pin.ErrLocked) {
				t.Fatalf("the right PIN after the lock: %v", err)
			}
		})
	}
}
