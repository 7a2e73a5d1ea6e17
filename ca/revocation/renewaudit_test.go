package revocation_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// fullToken is the token out of room for a new key.
type fullToken struct{ *tokenKeys }

func (fullToken) GenerateKey(context.Context, string) (crypto.Signer, error) {
	return nil, fmt.Errorf("generating the key: %w", hsm.ErrTokenFull)
}

// TestResponderRenewalAudited: a serve-time renewal of the delegated OCSP
// responders that fails (the token is full) is audited as a failed
// ocsp.responder.renew, as the TSA audits its unit's; the renewal that
// then succeeds is audited once per CA, by the node that made it.
func TestResponderRenewalAudited(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			n := f.startNode(t, 200*time.Hour) // due at once
			responders := func(keys revocation.KeyStore) *revocation.Responders {
				return revocation.NewResponders(revocation.ResponderOptions{Dir: f.dir, Keys: keys, CA: f.pki.Authority,
					Subjects: map[string]revocation.ResponderSubject{"citizen": {Organization: "Thiqa Test"}}, Actor: "thiqa-serve",
					Renewals: n.db.OCSPResponderRenewals(), Audit: f.log})
			}
			_, err := n.pub.Responder.RenewDue(t.Context(), responders(fullToken{f.keys}))
			if !errors.Is(err, hsm.ErrTokenFull) {
				t.Fatalf("renewal on a full token: %v", err)
			}
			if got := storetest.AuditCount(t, f.db, revocation.ActionRenewResponder, audit.OutcomeFailure); got != 3 {
				t.Fatalf("%d failed responder renewals audited, want 3 (one per issuing CA)", got)
			}
			renewed, err := n.pub.Responder.RenewDue(t.Context(), responders(f.keys))
			if err != nil || len(renewed) != 3 {
				t.Fatalf("renewal once there is room: %v %v", renewed, err)
			}
			if got := storetest.AuditCount(t, f.db, revocation.ActionRenewResponder, audit.OutcomeSuccess); got != 3 {
				t.Fatalf("%d responder renewals audited, want 3", got)
			}
		})
	}
}
