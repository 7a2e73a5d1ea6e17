package hierarchy

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// memRecords is a store's deployment identity in memory (Records).
type memRecords struct {
	have  *Deployment
	head  int64
	calls int
}

func (r *memRecords) Deployment(context.Context) (Deployment, bool, error) {
	if r.have == nil {
		return Deployment{}, false, nil
	}
	return *r.have, true, nil
}

func (r *memRecords) RecordDeployment(_ context.Context, d Deployment) (Deployment, bool, error) {
	r.calls++
	if r.have != nil {
		return *r.have, false, nil
	}
	d.CreatedAt = time.Now()
	r.have = &d
	return d, true, nil
}

func (r *memRecords) AuditHead(context.Context) (audit.Head, error) {
	return audit.Head{Seq: r.head}, nil
}

// TestIdentityRecordAndCheck: init records the identity once (audited
// once) and refuses another deployment's store; serve accepts its own
// store, refuses another's and an empty one, and adopts the identity into
// a store made before identities existed.
func TestIdentityRecordAndCheck(t *testing.T) {
	ctx := context.Background()
	id := &Identity{Root: &x509.Certificate{Subject: pkix.Name{CommonName: "Root"}}, Path: "ca/root.pem", RootSHA256: strings.Repeat("a", 64)}
	other := &Identity{Root: id.Root, Path: id.Path, RootSHA256: strings.Repeat("b", 64)}

	rec, log := &memRecords{}, &memAudit{}
	for range 2 {
		if err := id.Record(ctx, rec, log, "thiqa-init"); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(log.actions, ",") != "deployment.record" {
		t.Fatalf("audit %v, want one deployment.record", log.actions)
	}
	if err := other.Record(ctx, rec, log, "thiqa-init"); !errors.Is(err, ErrDeploymentMismatch) {
		t.Fatalf("Record into another deployment's store: %v", err)
	}
	if adopted, err := id.Check(ctx, rec, "/data"); err != nil || adopted {
		t.Fatalf("Check of its own store: %v %v", adopted, err)
	}
	if _, err := other.Check(ctx, rec, "/data"); !errors.Is(err, ErrDeploymentMismatch) {
		t.Fatalf("Check of another deployment's store: %v", err)
	}
	empty := &memRecords{}
	if _, err := id.Check(ctx, empty, "/data"); !errors.Is(err, ErrStoreEmpty) || !strings.Contains(err.Error(), "thiqa init --data /data") || empty.calls != 0 {
		t.Fatalf("Check of an empty store: %v (recorded %d times)", err, empty.calls)
	}
	old := &memRecords{head: 7}
	if adopted, err := id.Check(ctx, old, "/data"); err != nil || !adopted || old.have.RootSHA256 != id.RootSHA256 {
		t.Fatalf("Check of a store made before identities: %v %v", adopted, err)
	}
}
