package cmp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// TestCMPIssuerRevoked: once the root CRL revokes the issuing CA, an ir
// from it is answered with an error message, systemUnavail, whose text
// names the CA, says it was revoked and to roll it over; nothing is
// issued and the CA audits the failure.
func TestCMPIssuerRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			ref, secret := f.enrolment(t)
			f.pki.RevokeCA(t, "citizen")
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			failed := f.count(t, "certificate.issue", "failure")
			der := f.srv.Handle(ctx, (&client{ref: ref, secret: secret}).message(t, bodyIR, certReqBody(t, k, k, nil)), "")
			a := parseAnswer(t, der)
			if a.m.bodyType != bodyError || a.status != statusRejection || a.failInfo != "systemUnavail" {
				t.Fatalf("ir: body %s status %d failInfo %q, want error systemUnavail", bodyName(a.m.bodyType), a.status, a.failInfo)
			}
			var em errorMsgContent
			if _, err := asn1.Unmarshal(a.m.body, &em); err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			for _, s := range em.Status.StatusString {
				text.Write(s.Bytes)
			}
			if !strings.Contains(text.String(), "issuing CA citizen") || !strings.Contains(text.String(), "revoked by the root") || !strings.Contains(text.String(), "thiqa ca rollover --name citizen") {
				t.Fatalf("statusString %q does not say which CA and what to do", text.String())
			}
			if f.count(t, "certificate.issue", "success") != 0 || f.count(t, "certificate.issue", "failure") != failed+1 {
				t.Fatal("the CA's refusal was not audited as its failure, or something was issued")
			}
		})
	}
}
