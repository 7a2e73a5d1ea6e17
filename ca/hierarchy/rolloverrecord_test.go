package hierarchy

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// refusingAudit is memAudit that fails to append the action refuse.
type refusingAudit struct {
	memAudit
	refuse string
}

func (a *refusingAudit) Append(ctx context.Context, e audit.Entry) (audit.Record, error) {
	if e.Action == a.refuse {
		return audit.Record{}, errors.New("the audit log is unavailable")
	}
	return a.memAudit.Append(ctx, e)
}

// TestRolloverRecordNotLost: a rollover that generated its key but stopped
// before its ca.rollover record (a kill, or the audit log failing as here)
// left the generation waiting without its CSR, and the run again only
// wrote the CSR: the rollover was never recorded. The run again now
// records the rollover before the CSR; once the CSR is there, a run again
// records nothing more.
func TestRolloverRecordNotLost(t *testing.T) {
	ctx := context.Background()
	dev := testConfig(t.TempDir())
	devTok := &memToken{keys: map[string]memKey{}}
	if err := Init(ctx, dev, devTok, &memAudit{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	devParts, err := Find(ctx, dev, devTok)
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig(t.TempDir())
	c.RootOffline, c.Root.Key, c.Root.KeyLabel = true, "", ""
	if _, err := InstallRoot(c, devParts[0].Cert); err != nil {
		t.Fatal(err)
	}
	tok := &memToken{keys: map[string]memKey{}}
	if err := Init(ctx, c, tok, &memAudit{}, io.Discard); !errors.Is(err, ErrPending) {
		t.Fatalf("InitOffline: %v", err)
	}
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g1, err := findGeneration(ctx, c, tok, c.Issuers[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.CreateIssuingCA(devParts[0].Cert, devParts[0].Key, g1.key, ca.IssuingCAConfig{Name: "citizen", CommonName: "Test citizen",
		Organization: "Thiqa", Country: "OM", Validity: 365 * 24 * time.Hour, BaseURL: c.BaseURL, Policies: ca.IssuingCAPolicies(profiles, "citizen")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Import(ctx, c, tok, &memAudit{}, "citizen", cert, devParts[0].Cert, "cli:test", io.Discard); err != nil {
		t.Fatal(err)
	}

	failing := &refusingAudit{refuse: "ca.rollover"}
	err = Rollover(ctx, c, tok, failing, "citizen", "cli:test", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("a rollover whose record fails: %v", err)
	}
	g2, err := findGeneration(ctx, c, tok, c.Issuers[0], 2)
	if err != nil || !g2.pending() || g2.hasCSR {
		t.Fatalf("the interrupted rollover left generation 2 %s (CSR %v): %v", g2.describe(), g2.hasCSR, err)
	}

	log := &memAudit{}
	if err := Rollover(ctx, c, tok, log, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("the run again: %v", err)
	}
	if got := strings.Join(log.actions, ","); got != "ca.rollover,ca.csr.create" {
		t.Fatalf("the run again records %s, want ca.rollover,ca.csr.create", got)
	}
	if err := Rollover(ctx, c, tok, log, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("a run with the CSR there: %v", err)
	}
	if got := strings.Join(log.actions, ","); got != "ca.rollover,ca.csr.create" {
		t.Fatalf("a run with the CSR there recorded more: %s", got)
	}
}
