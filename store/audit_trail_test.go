package store_test

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// A certificate's trail is the records about its serial and its
// credential, newest first, bounded, on both dialects.
func TestAuditTrail(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			for _, e := range []audit.Entry{
				{Actor: "officer-1", Action: "certificate.issue", Object: "0abc", Outcome: "success"},
				{Actor: "12345678", Action: "document.sign", Object: "cred-1", Outcome: "success", Details: map[string]any{"level": "B-LT"}},
				{Actor: "87654321", Action: "document.sign", Object: "cred-2", Outcome: "success"},
				{Actor: "officer-1", Action: "certificate.revoke", Object: "0abc", Outcome: "success"},
			} {
				if _, err := log.Append(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			got, err := db.Trail(ctx, []string{"0abc", "cred-1"}, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[0].Action != "certificate.revoke" || got[1].Object != "cred-1" || got[2].Action != "certificate.issue" {
				t.Fatalf("trail: %+v", got)
			}
			var det map[string]any
			if err := json.Unmarshal(got[1].Details, &det); err != nil || det["level"] != "B-LT" {
				t.Fatalf("details: %s", got[1].Details)
			}
			if got, _ := db.Trail(ctx, []string{"0abc", "cred-1"}, 1); len(got) != 1 || got[0].Action != "certificate.revoke" {
				t.Fatalf("limit 1: %+v", got)
			}
			if got, _ := db.Trail(ctx, []string{"nothing"}, 10); len(got) != 0 {
				t.Fatalf("unknown object: %+v", got)
			}
		})
	}
}
