package cmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store/storetest"
)

// implicitConfirm is the generalInfo asking for implicit confirmation.
var implicitConfirm = []infoTypeAndValue{{Type: oidImplicitConfirm, Value: asn1.RawValue{FullBytes: asn1.NullBytes}}}

// holderCert enrols a fresh key (ir, implicitly confirmed) and returns it
// with its certificate: a holder who may send kur.
func (f *fixture) holderCert(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	ref, secret := f.enrolment(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cl := &client{ref: ref, secret: secret, info: implicitConfirm, now: f.now}
	a := parseAnswer(t, f.srv.Handle(t.Context(), cl.message(t, bodyIR, certReqBody(t, k, k, nil)), ""))
	if a.m.bodyType != bodyIP || a.status != statusAccepted {
		t.Fatalf("ir: %s %s", bodyName(a.m.bodyType), a.failInfo)
	}
	return k, a.cert
}

// keyUpdate sends kur for a new key, signed with key and its certificate
// cert (implicit: asking for implicit confirmation), and returns the
// client (to confirm with: no generalInfo) and the kup.
func (f *fixture) keyUpdate(t *testing.T, key *ecdsa.PrivateKey, cert *x509.Certificate, implicit bool) (*client, answer) {
	t.Helper()
	nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cl := &client{key: key, cert: cert, now: f.now}
	if implicit {
		cl.info = implicitConfirm
	}
	a := parseAnswer(t, f.srv.Handle(t.Context(), cl.message(t, bodyKUR, certReqBody(t, nk, nk, cert.SerialNumber)), ""))
	if a.m.bodyType != bodyKUP || a.status != statusAccepted {
		t.Fatalf("kur: %s %s", bodyName(a.m.bodyType), a.failInfo)
	}
	if a.m.hasGeneralInfo(oidImplicitConfirm) != implicit {
		t.Fatalf("kup: implicitConfirm %v, want %v", !implicit, implicit)
	}
	cl.info = nil
	return cl, a
}

// wantRevoked checks whether c is revoked, and for which reason.
func (f *fixture) wantRevoked(t *testing.T, what string, c *x509.Certificate, revoked bool, reason revocation.Reason) {
	t.Helper()
	ok, r := f.revoked(t, c)
	switch {
	case ok != revoked:
		t.Fatalf("%s: revoked %v, want %v", what, ok, revoked)
	case revoked && r != int(reason):
		t.Fatalf("%s: revoked for reason %d, want %d", what, r, reason)
	}
}

// TestCMPKeyUpdateSupersedesOnConfirmation: a kur without implicit
// confirmation leaves the current certificate valid until its holder
// confirms the new one (RFC 9483 §4.1.3); the positive certConf
// supersedes it, once. With implicit confirmation it is superseded at
// once, as before.
func TestCMPKeyUpdateSupersedesOnConfirmation(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			cl, kup := f.keyUpdate(t, k, old, false)
			f.wantRevoked(t, "current certificate before the certConf", old, false, 0)
			if n := f.expire(t); n != 0 {
				t.Fatalf("the sweep revoked %d within the window", n)
			}
			if a := f.certConf(t, cl, kup, false); a.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.wantRevoked(t, "current certificate after the certConf", old, true, revocation.Superseded)
			f.wantRevoked(t, "confirmed certificate", kup.cert, false, 0)
			f.advance(enrol.ConfirmWaitTime + time.Minute)
			if n := f.expire(t); n != 0 {
				t.Fatalf("the sweep revoked %d confirmed certificates", n)
			}
			if got := f.count(t, "certificate.revoke", "success"); got != 1 {
				t.Fatalf("%d revocations, want 1 (the superseded certificate)", got)
			}

			// Implicit confirmation: superseded at issuance.
			k2, old2 := f.holderCert(t)
			_, kup2 := f.keyUpdate(t, k2, old2, true)
			f.wantRevoked(t, "current certificate of an implicitly confirmed kur", old2, true, revocation.Superseded)
			f.wantRevoked(t, "implicitly confirmed certificate", kup2.cert, false, 0)
		})
	}
}

// TestCMPKeyUpdateRejectedKeepsCurrent: the holder rejects the certificate
// of its kur: the new certificate is revoked, the current one stays valid,
// and the holder updates it again with a second kur signed with it.
func TestCMPKeyUpdateRejectedKeepsCurrent(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			cl, kup := f.keyUpdate(t, k, old, false)
			if a := f.certConf(t, cl, kup, true); a.m.bodyType != bodyPKIConf {
				t.Fatalf("rejecting certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			f.wantRevoked(t, "rejected certificate", kup.cert, true, revocation.CessationOfOperation)
			f.wantRevoked(t, "current certificate after the rejection", old, false, 0)
			f.retryKeyUpdate(t, k, old)
		})
	}
}

// TestCMPKeyUpdateUnconfirmedKeepsCurrent: no certConf comes for the
// certificate of a kur (its response was lost): the sweep revokes the new
// certificate after confirmWaitTime, the current one stays valid, and the
// holder updates it again with a second kur signed with it.
func TestCMPKeyUpdateUnconfirmedKeepsCurrent(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			cl, kup := f.keyUpdate(t, k, old, false)
			f.advance(enrol.ConfirmWaitTime + time.Second)
			if n := f.expire(t); n != 1 {
				t.Fatalf("the sweep revoked %d, want 1", n)
			}
			f.wantRevoked(t, "unconfirmed certificate", kup.cert, true, revocation.CessationOfOperation)
			f.wantRevoked(t, "current certificate after the sweep", old, false, 0)
			if a := f.certConf(t, cl, kup, false); a.failInfo != "certRevoked" {
				t.Fatalf("certConf after the sweep: %s %s, want certRevoked", bodyName(a.m.bodyType), a.failInfo)
			}
			f.wantRevoked(t, "current certificate after a late certConf", old, false, 0)
			f.retryKeyUpdate(t, k, old)
		})
	}
}

// retryKeyUpdate sends a second kur with the current certificate (after
// the first one's certificate was withdrawn), confirms it, and checks that
// the current certificate is superseded then, once.
func (f *fixture) retryKeyUpdate(t *testing.T, k *ecdsa.PrivateKey, old *x509.Certificate) {
	t.Helper()
	cl, kup := f.keyUpdate(t, k, old, false)
	f.wantRevoked(t, "current certificate before the second certConf", old, false, 0)
	if a := f.certConf(t, cl, kup, false); a.m.bodyType != bodyPKIConf {
		t.Fatalf("second certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
	}
	f.wantRevoked(t, "current certificate after the second certConf", old, true, revocation.Superseded)
	f.wantRevoked(t, "second certificate", kup.cert, false, 0)
	if got := f.count(t, "certificate.revoke", "success"); got != 2 {
		t.Fatalf("%d revocations, want 2 (the withdrawn certificate, then the superseded one)", got)
	}
}

// TestCMPKeyUpdateConfirmRacesSweep: holders' certConfs and two servers'
// sweeps meet at the deadline, and half of the holders send none:
// whichever claims a transaction decides, once; no holder is left with
// both certificates revoked, nor with both valid.
func TestCMPKeyUpdateConfirmRacesSweep(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			g := newFixtureOn(t, f.cfg, f)
			const holders = 6
			type kurOf struct {
				cl  *client
				kup answer
				old *x509.Certificate
			}
			var kurs []kurOf
			for range holders {
				k, old := f.holderCert(t)
				cl, kup := f.keyUpdate(t, k, old, false)
				kurs = append(kurs, kurOf{cl, kup, old})
			}
			// Half a second before the deadline by the server's clock: the
			// certConfs are in time if they claim first.
			f.advance(enrol.ConfirmWaitTime - 500*time.Millisecond)
			var wg sync.WaitGroup
			for i, k := range kurs {
				if i%2 == 1 {
					continue // its response was lost: no certConf
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					f.certConf(t, k.cl, k.kup, false)
				}()
			}
			wg.Add(2)
			for _, srv := range []*Server{f.srv, g.srv} {
				go func() {
					defer wg.Done()
					time.Sleep(time.Second)
					if _, err := srv.ExpireUnconfirmed(context.Background()); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			f.advance(time.Minute)
			f.expire(t)
			for i, k := range kurs {
				oldRevoked, _ := f.revoked(t, k.old)
				newRevoked, _ := f.revoked(t, k.kup.cert)
				if oldRevoked == newRevoked {
					t.Fatalf("holder %d: current certificate revoked %v, new one revoked %v", i, oldRevoked, newRevoked)
				}
			}
		})
	}
}

// TestCMPKeyUpdateResentKeepsCurrent: the kup of a kur without implicit
// confirmation is lost, and the holder sends kur again with its current
// certificate within the window. The second kur is refused (the first
// one's certificate still waits for its certConf), and must not supersede
// the current certificate: once the sweep revokes the unconfirmed one, the
// holder would hold no valid certificate. It keys its update again then.
func TestCMPKeyUpdateResentKeepsCurrent(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			k, old := f.holderCert(t)
			_, kup := f.keyUpdate(t, k, old, false) // its answer lost
			nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			cl := &client{key: k, cert: old, now: f.now}
			a := parseAnswer(t, f.srv.Handle(t.Context(), cl.message(t, bodyKUR, certReqBody(t, nk, nk, old.SerialNumber)), ""))
			if a.m.bodyType == bodyKUP && a.status == statusAccepted {
				t.Fatalf("a second kur while the first one's certificate waits for its certConf was accepted")
			}
			f.wantRevoked(t, "current certificate after a second kur", old, false, 0)
			f.advance(enrol.ConfirmWaitTime + time.Second)
			if n := f.expire(t); n != 1 {
				t.Fatalf("the sweep revoked %d, want 1", n)
			}
			f.wantRevoked(t, "unconfirmed certificate", kup.cert, true, revocation.CessationOfOperation)
			f.wantRevoked(t, "current certificate after the sweep", old, false, 0)
			f.retryKeyUpdate(t, k, old)
		})
	}
}
