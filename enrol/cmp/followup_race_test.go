package cmp

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store/storetest"
)

// slowRevoker is a Revoker whose revocations wait for release before
// they go on (an HSM slow to re-sign the OCSP responses); entered is
// closed when the first one starts waiting.
type slowRevoker struct {
	enrol.Revoker
	entered chan struct{}
	release <-chan struct{}
}

func (r slowRevoker) Revoke(ctx context.Context, actor, serial, reason string, allow func(*x509.Certificate) bool) (*revocation.Result, error) {
	close(r.entered)
	<-r.release
	return r.Revoker.Revoke(ctx, actor, serial, reason, allow)
}

// TestCMPFollowUpLeaseExpiresDuringRevocation: a rejecting certConf's
// revocation on one node outlasts enrol.ExpiryLease; another node's sweep
// takes the transaction over and revokes the certificate. When the slow
// revocation then goes on, nothing is done twice: the certificate is
// revoked once (one certificate.revoke record), the transaction is closed
// rejected once, and the client is still answered pkiConf.
func TestCMPFollowUpLeaseExpiresDuringRevocation(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			other := newFixtureOn(t, f.cfg, f) // the second node
			cl, ip := f.enrolIR(t, nil)
			release := make(chan struct{})
			slow := slowRevoker{Revoker: f.revoker, entered: make(chan struct{}), release: release}
			f.srv.c.Revoker = slow
			hash := sha256.Sum256(ip.cert.Raw)
			body, _ := asn1.Marshal([]certStatus{{CertHash: hash[:], CertReqID: big.NewInt(0),
				StatusInfo: pkiStatusInfo{Status: statusRejection, FailInfo: BadCertTemplate.bits()}}})
			msg := cl.message(t, bodyCertConf, body)
			answered := make(chan []byte, 1)
			go func() { answered <- f.srv.Handle(t.Context(), msg, "") }()
			select {
			case <-slow.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the certConf's revocation did not start")
			}

			f.advance(enrol.ExpiryLease + time.Second)
			n, err := other.srv.RetryFollowUps(t.Context())
			if n != 1 || err != nil {
				t.Fatalf("the other node's sweep: %d done, %v; want 1", n, err)
			}
			close(release)
			var raw []byte
			select {
			case raw = <-answered:
			case <-time.After(10 * time.Second):
				t.Fatal("the certConf was not answered")
			}
			if a := parseAnswer(t, raw); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf: %s %s, want pkiConf", bodyName(a.m.bodyType), a.failInfo)
			}
			f.wantRevoked(t, "rejected certificate", ip.cert, true, revocation.CessationOfOperation)
			if got := f.state(t, cl.tx); got != "rejected" {
				t.Fatalf("transaction %s, want rejected", got)
			}
			if r := f.count(t, "certificate.revoke", "success"); r != 1 {
				t.Fatalf("%d certificate.revoke records, want 1", r)
			}
			if n, err := other.srv.RetryFollowUps(t.Context()); n != 0 || err != nil {
				t.Fatalf("a later sweep: %d, %v", n, err)
			}
		})
	}
}
