package cmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store/storetest"
)

// enrolIR enrols a fresh key under a fresh enrolment (ir), with info in
// the request's generalInfo, and returns the client (to confirm with) and
// the answer.
func (f *fixture) enrolIR(t *testing.T, info []infoTypeAndValue) (*client, answer) {
	t.Helper()
	ref, secret := f.enrolment(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cl := &client{ref: ref, secret: secret, info: info, now: f.now}
	a := parseAnswer(t, f.srv.Handle(t.Context(), cl.message(t, bodyIR, certReqBody(t, k, k, nil)), ""))
	if a.m.bodyType != bodyIP || a.status != statusAccepted {
		t.Fatalf("ir: %s %s", bodyName(a.m.bodyType), a.failInfo)
	}
	cl.info = nil
	return cl, a
}

// certConf confirms (or, with reject, rejects) the certificate of ip.
func (f *fixture) certConf(t *testing.T, cl *client, ip answer, reject bool) answer {
	t.Helper()
	hash := sha256.Sum256(ip.cert.Raw)
	st := certStatus{CertHash: hash[:], CertReqID: big.NewInt(0)}
	if reject {
		st.StatusInfo = pkiStatusInfo{Status: statusRejection, FailInfo: BadCertTemplate.bits()}
	}
	body, _ := asn1.Marshal([]certStatus{st})
	return parseAnswer(t, f.srv.Handle(t.Context(), cl.message(t, bodyCertConf, body), ""))
}

// revoked says whether the certificate is revoked, and why.
func (f *fixture) revoked(t *testing.T, c *x509.Certificate) (bool, int) {
	t.Helper()
	rec, err := f.db.Certificates(nil).GetCertificate(t.Context(), hex.EncodeToString(c.SerialNumber.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return rec.Revoked, rec.RevocationReason
}

// confirmWaitTime is the header's confirmWaitTime (zero when absent).
func confirmWaitTime(t *testing.T, a answer) time.Time {
	t.Helper()
	for _, it := range a.m.header.GeneralInfo {
		if !it.Type.Equal(oidConfirmWaitTime) {
			continue
		}
		var raw asn1.RawValue
		if _, err := asn1.Unmarshal(it.Value.FullBytes, &raw); err != nil || raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagGeneralizedTime {
			t.Fatalf("confirmWaitTime is no GeneralizedTime: %x %v", it.Value.FullBytes, err)
		}
		var at time.Time
		if _, err := asn1.UnmarshalWithParams(it.Value.FullBytes, &at, "generalized"); err != nil {
			t.Fatal(err)
		}
		return at
	}
	return time.Time{}
}

func (f *fixture) expire(t *testing.T) int {
	t.Helper()
	n, err := f.srv.ExpireUnconfirmed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCMPUnconfirmedCertificateRevoked: a certificate sent without
// implicit confirmation announces its deadline (confirmWaitTime, RFC 9810
// §5.1.1.2); when no certConf came by then the sweep revokes it
// (cessationOfOperation, through the revocation service, audited) and
// closes its transaction, once; a certConf after that is refused
// (certRevoked). A confirmed certificate, an implicitly confirmed one and
// one rejected (revoked already) are left alone.
func TestCMPUnconfirmedCertificateRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			sent := f.now()
			unconfirmedCl, unconfirmed := f.enrolIR(t, nil)
			if at := confirmWaitTime(t, unconfirmed); at.Before(sent.Add(enrol.ConfirmWaitTime-2*time.Second)) || at.After(sent.Add(enrol.ConfirmWaitTime+2*time.Second)) ||
				unconfirmed.m.hasGeneralInfo(oidImplicitConfirm) {
				t.Fatalf("confirmWaitTime %v, want about %v", at, sent.Add(enrol.ConfirmWaitTime))
			}
			confirmedCl, confirmed := f.enrolIR(t, nil)
			if a := f.certConf(t, confirmedCl, confirmed, false); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			_, implicit := f.enrolIR(t, []infoTypeAndValue{{Type: oidImplicitConfirm, Value: asn1.RawValue{FullBytes: asn1.NullBytes}}})
			if !implicit.m.hasGeneralInfo(oidImplicitConfirm) || !confirmWaitTime(t, implicit).IsZero() {
				t.Fatal("implicit confirmation: want implicitConfirm and no confirmWaitTime")
			}
			rejectedCl, rejected := f.enrolIR(t, nil)
			if a := f.certConf(t, rejectedCl, rejected, true); a.m.bodyType != bodyPKIConf {
				t.Fatalf("rejecting certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}

			if n := f.expire(t); n != 0 {
				t.Fatalf("%d revoked within the window", n)
			}
			f.advance(enrol.ConfirmWaitTime - time.Minute)
			if n := f.expire(t); n != 0 {
				t.Fatalf("%d revoked a minute before the deadline", n)
			}
			f.advance(2 * time.Minute)
			if n := f.expire(t); n != 1 {
				t.Fatalf("%d revoked after the deadline, want 1", n)
			}
			if ok, reason := f.revoked(t, unconfirmed.cert); !ok || reason != int(revocation.CessationOfOperation) {
				t.Fatalf("unconfirmed certificate: revoked %v, reason %d", ok, reason)
			}
			for name, c := range map[string]*x509.Certificate{"confirmed": confirmed.cert, "implicit": implicit.cert} {
				if ok, _ := f.revoked(t, c); ok {
					t.Fatalf("the %s certificate was revoked", name)
				}
			}
			if n := f.expire(t); n != 0 {
				t.Fatalf("second sweep revoked %d", n)
			}
			// The rejected certificate and the unconfirmed one: one revocation
			// each, no second attempt.
			if got := f.count(t, "certificate.revoke", "success"); got != 2 {
				t.Fatalf("%d revocations, want 2", got)
			}
			if got := f.count(t, "certificate.revoke", "refused"); got != 0 {
				t.Fatalf("%d refused revocations, want 0", got)
			}
			if got := f.count(t, "cmp.unconfirmed", "success"); got != 1 {
				t.Fatalf("%d cmp.unconfirmed records, want 1", got)
			}
			tx, err := f.db.Enrolments().GetTransaction(t.Context(), hex.EncodeToString(unconfirmedCl.tx))
			if err != nil || tx.State != "expired" {
				t.Fatalf("transaction: %+v %v", tx, err)
			}
			if a := f.certConf(t, unconfirmedCl, unconfirmed, false); a.failInfo != "certRevoked" {
				t.Fatalf("certConf after the sweep: %s %s, want certRevoked", bodyName(a.m.bodyType), a.failInfo)
			}
		})
	}
}

// TestCMPLateCertConf: a certConf after the deadline, before any sweep,
// revokes the certificate itself and is answered certRevoked; the sweep
// then has nothing left to do, and the certificate is revoked once.
func TestCMPLateCertConf(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			cl, ip := f.enrolIR(t, nil)
			f.advance(enrol.ConfirmWaitTime + time.Second)
			if a := f.certConf(t, cl, ip, false); a.failInfo != "certRevoked" {
				t.Fatalf("late certConf: %s %s, want certRevoked", bodyName(a.m.bodyType), a.failInfo)
			}
			if ok, reason := f.revoked(t, ip.cert); !ok || reason != int(revocation.CessationOfOperation) {
				t.Fatalf("revoked %v, reason %d", ok, reason)
			}
			if n := f.expire(t); n != 0 {
				t.Fatalf("the sweep revoked %d more", n)
			}
			if a := f.certConf(t, cl, ip, false); a.failInfo != "certRevoked" {
				t.Fatalf("second late certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			if r, u := f.count(t, "certificate.revoke", "success"), f.count(t, "cmp.unconfirmed", "success"); r != 1 || u != 1 {
				t.Fatalf("%d revocations and %d cmp.unconfirmed records, want 1 and 1", r, u)
			}
		})
	}
}

// TestCMPUnconfirmedTwoServers: two servers sharing the database sweep at
// once (each twice over); every unconfirmed certificate is revoked once.
func TestCMPUnconfirmedTwoServers(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			g := newFixtureOn(t, f.cfg, f)
			const certs = 12
			var ips []answer
			for range certs {
				_, ip := f.enrolIR(t, nil)
				ips = append(ips, ip)
			}
			f.advance(enrol.ConfirmWaitTime + time.Second)
			var wg sync.WaitGroup
			var mu sync.Mutex
			total := 0
			for _, srv := range []*Server{f.srv, g.srv, f.srv, g.srv} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := srv.ExpireUnconfirmed(context.Background())
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}()
			}
			wg.Wait()
			if total != certs {
				t.Fatalf("%d revoked, want %d", total, certs)
			}
			for _, ip := range ips {
				if ok, _ := f.revoked(t, ip.cert); !ok {
					t.Fatalf("certificate %x not revoked", ip.cert.SerialNumber)
				}
			}
			if r, x, u := f.count(t, "certificate.revoke", "success"), f.count(t, "certificate.revoke", "refused"), f.count(t, "cmp.unconfirmed", "success"); r != certs || x != 0 || u != certs {
				t.Fatalf("%d revocations, %d refused, %d cmp.unconfirmed records; want %d, 0, %d", r, x, u, certs, certs)
			}
		})
	}
}

// TestCMPUnconfirmedFailureHoldsUpNoOther: a transaction whose certificate
// cannot be revoked for a moment (the revocation fails for it) fails
// alone; the other
// unconfirmed certificates of the same claim are revoked in the same run,
// rather than being claimed again with it, and failing with it, for ever.
func TestCMPUnconfirmedFailureHoldsUpNoOther(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if err := f.db.Enrolments().InsertTransaction(t.Context(), enrol.Transaction{ID: "0bad", Sender: "ref:GONE", Serial: "7f00dead",
				Created: f.now().Add(-time.Minute), State: "waiting"}); err != nil { // the oldest: first in the claim
				t.Fatal(err)
			}
			_, ip := f.enrolIR(t, nil)
			f.srv.c.Revoker = revokeFailsFor{Revoker: f.revoker, serial: "7f00dead"}
			f.advance(enrol.ConfirmWaitTime + time.Second)
			n, err := f.srv.ExpireUnconfirmed(t.Context())
			if err == nil || n != 1 {
				t.Fatalf("sweep: %d revoked, %v; want 1 and the failure", n, err)
			}
			if ok, _ := f.revoked(t, ip.cert); !ok {
				t.Fatal("the unconfirmed certificate claimed with a failing one was not revoked")
			}
			tx, err := f.db.Enrolments().GetTransaction(t.Context(), "0bad")
			if err != nil || tx.State != "expiring" {
				t.Fatalf("the failing transaction: %+v %v, want expiring (taken over later)", tx, err)
			}
		})
	}
}

// closeFails is a transaction store whose CloseTransaction fails (a
// database that went away for a moment).
type closeFails struct {
	enrol.TransactionStore
	err error
}

func (c closeFails) CloseTransaction(context.Context, string, string, time.Time) error { return c.err }

// TestCMPCertConfNotRecorded: a certConf whose confirmation could not be
// recorded is answered with a failure the client retries after
// (systemFailure), not certConfirmed, which would tell it the certificate
// is confirmed while the transaction still waits and the sweep revokes the
// certificate; the retry confirms it, and the sweep leaves it alone.
func TestCMPCertConfNotRecorded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			cl, ip := f.enrolIR(t, nil)
			f.srv.c.Transactions = closeFails{TransactionStore: f.db.Enrolments(), err: errors.New("driver: bad connection")}
			if a := f.certConf(t, cl, ip, false); a.m.bodyType != bodyError || a.failInfo != "systemFailure" {
				t.Fatalf("certConf not recorded: %s %s, want systemFailure", bodyName(a.m.bodyType), a.failInfo)
			}
			f.srv.c.Transactions = f.db.Enrolments()
			if a := f.certConf(t, cl, ip, false); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf retried: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.advance(enrol.ConfirmWaitTime + time.Minute)
			if n := f.expire(t); n != 0 {
				t.Fatalf("the sweep revoked %d confirmed certificates", n)
			}
		})
	}
}
