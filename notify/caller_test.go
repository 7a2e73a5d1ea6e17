package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// revocations is a revocation.Store of one certificate whose audit
// records go to the notifier's store, as the audit log's would.
type revocations struct {
	revocation.Store
	st *memStore
}

func (r revocations) Revoke(_ context.Context, serial string, reason int, by string, now time.Time, rec revocation.Records) (*revocation.Revocation, error) {
	rv := &revocation.Revocation{Serial: serial, CA: "citizen", RevokedAt: now, Reason: reason, RevokedBy: by, Recorded: now}
	seal, err := rec(revocation.Change{Revocation: rv})
	if err != nil {
		return nil, err
	}
	if _, err := seal.Seal(audit.Head{}); err != nil {
		return nil, err
	}
	return rv, nil
}

// entries is a revocation.Auditor that adds the records it prepares to st.
type entries struct{ st *memStore }

func (e entries) Append(_ context.Context, en audit.Entry) (audit.Record, error) {
	e.add(en)
	return audit.Record{}, nil
}

func (e entries) Prepare(es ...audit.Entry) (audit.Sealer, error) {
	return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) {
		for _, en := range es {
			e.add(en)
		}
		return nil, nil
	}), nil
}

func (e entries) add(en audit.Entry) {
	d, _ := json.Marshal(en.Details)
	e.st.add(activity.Record{Actor: en.Actor, Action: en.Action, Object: en.Object, Outcome: en.Outcome, Details: d})
}

// certificates holds one certificate, 0aaa, citizen 11111111's.
type certificates struct{ der []byte }

func (c certificates) GetCertificate(_ context.Context, serial string) (*ca.CertificateRecord, error) {
	if serial != "0aaa" {
		return nil, ca.ErrNotFound
	}
	return &ca.CertificateRecord{Serial: serial, CA: "citizen", DER: c.der}, nil
}

// A revocation by an operator, through the real revocation service, is
// notified "by": "operator", not someone-else: its success record names
// the caller's roles.
func TestNotificationNamesTheOperator(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	n := testNotifier(t, st, g.srv.URL, Options{})
	drain(t, n)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x0aaa), Subject: pkix.Name{CommonName: "Aisha Al Harthy", SerialNumber: "IDCOM-11111111"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := revocation.New(revocation.Options{Store: revocations{st: st}, Certificates: certificates{der}, Audit: entries{st}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := auth.WithPrincipal(t.Context(), &auth.Principal{Subject: "op-1", Method: auth.MethodMTLS, Roles: []policies.Role{policies.RoleOperator}})
	if _, err := svc.Revoke(ctx, "op-1", "0aaa", "cessationOfOperation", nil); err != nil {
		t.Fatal(err)
	}
	drain(t, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.got) != 1 || g.got[0].Event != "certificate.revoke" || g.got[0].Details["by"] != activity.ByOperator {
		t.Fatalf("notified %+v, want one certificate.revoke by %s", g.got, activity.ByOperator)
	}
}
