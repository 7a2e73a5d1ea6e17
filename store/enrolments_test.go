package store_test

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestEnrolments: an enrolment is claimed by one request at a time, used
// once, reopened when its request is refused, taken over when a claim is
// stale, and refused once expired; CMP transactions close once.
func TestEnrolments(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, d.NewConfig(t)).Enrolments()
			now := time.Now().UTC()
			e := enrol.Enrolment{Reference: "REF1", Profile: "citizen-auth", Subject: map[string]string{"commonName": "A"},
				SecretHash: sha256.Sum256([]byte("s")), CreatedBy: "officer", Created: now, Expires: now.Add(time.Hour)}
			if err := s.InsertEnrolment(ctx, e, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertEnrolment(ctx, e, nil); !errors.Is(err, enrol.ErrDuplicate) {
				t.Fatalf("duplicate: %v", err)
			}
			got, err := s.GetEnrolment(ctx, "REF1")
			if err != nil || got.State != enrol.StateOpen || got.Subject["commonName"] != "A" || got.SecretHash != e.SecretHash {
				t.Fatalf("get: %+v %v", got, err)
			}
			if _, err := s.GetEnrolment(ctx, "NOPE"); !errors.Is(err, enrol.ErrNotFound) {
				t.Fatalf("missing: %v", err)
			}
			stale := now.Add(-enrol.ClaimTimeout)
			if err := s.ClaimEnrolment(ctx, "REF1", "a", now, stale); err != nil {
				t.Fatal(err)
			}
			if err := s.ClaimEnrolment(ctx, "REF1", "b", now, stale); !errors.Is(err, enrol.ErrBusy) {
				t.Fatalf("second claim: %v", err)
			}
			if err := s.ReleaseEnrolment(ctx, "REF1", "a"); err != nil {
				t.Fatal(err)
			}
			if err := s.ClaimEnrolment(ctx, "REF1", "b", now, stale); err != nil {
				t.Fatalf("claim after release: %v", err)
			}
			// A stale claim is taken over.
			later := now.Add(enrol.ClaimTimeout + time.Second)
			if err := s.ClaimEnrolment(ctx, "REF1", "c", later, later.Add(-enrol.ClaimTimeout)); err != nil {
				t.Fatalf("take-over: %v", err)
			}
			if err := s.CompleteEnrolment(ctx, "REF1", "b", "01", now, nil); err == nil {
				t.Fatal("a claim taken over completed")
			}
			if err := s.CompleteEnrolment(ctx, "REF1", "c", "0a0b", later, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.ClaimEnrolment(ctx, "REF1", "d", later, stale); !errors.Is(err, enrol.ErrUsed) {
				t.Fatalf("claim of a used enrolment: %v", err)
			}
			if got, _ := s.GetEnrolment(ctx, "REF1"); got.State != enrol.StateUsed || got.Serial != "0a0b" {
				t.Fatalf("used: %+v", got)
			}
			e.Reference, e.Expires = "REF2", now.Add(time.Minute)
			if err := s.InsertEnrolment(ctx, e, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.ClaimEnrolment(ctx, "REF2", "a", now.Add(2*time.Minute), stale); !errors.Is(err, enrol.ErrExpired) {
				t.Fatalf("expired: %v", err)
			}

			tx := enrol.Transaction{ID: "aa", Sender: "ref:REF1", Serial: "0a0b", Created: now, State: "waiting"}
			if err := s.InsertTransaction(ctx, tx); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertTransaction(ctx, tx); !errors.Is(err, enrol.ErrTransactionInUse) {
				t.Fatalf("transaction in use: %v", err)
			}
			if err := s.CloseTransaction(ctx, "aa", "confirmed", now); err != nil {
				t.Fatal(err)
			}
			if err := s.CloseTransaction(ctx, "aa", "confirmed", now); !errors.Is(err, enrol.ErrNoTransaction) {
				t.Fatalf("second close: %v", err)
			}
			if got, err := s.GetTransaction(ctx, "aa"); err != nil || got.State != "confirmed" || got.Closed.IsZero() {
				t.Fatalf("transaction: %+v %v", got, err)
			}
		})
	}
}
