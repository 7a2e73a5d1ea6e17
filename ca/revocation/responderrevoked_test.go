package revocation_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// Revoking the citizen CA's delegated OCSP responder certificate stops it
// on every node of a cluster: node a revokes it (its revocation service
// tells its responder at once), node b learns of it from its revocation
// poller. Neither signs with it again, nor serves a response it signed
// from the cache: the answer is tryLater until the new responder is in.
// One node renews it with a new key (audited with reason revoked), the
// other adopts it, and both sign with the new one.
func TestResponderRevokedStopsAndRenews(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { runResponderRevokedStopsAndRenews(t, d) })
	}
}

func runResponderRevokedStopsAndRenews(t *testing.T, d storetest.Dialect) {
	f := newFixture(t, d)
	certPath, _ := f.rp.Paths("citizen")
	first := readCert(t, certPath)
	f.issue(t, "12345678", "leaf.pem")
	leaf := readCert(t, f.path("leaf.pem"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, b := f.startNode(t, 48*time.Hour), f.startNode(t, 48*time.Hour) // not due
	revs := make([]*revocation.Service, 2)
	for i, n := range []*node{a, b} {
		// The pre-signer as `thiqa serve` runs it, its renewals audited.
		rp := revocation.NewResponders(revocation.ResponderOptions{Dir: f.dir, Keys: f.keys, CA: f.pki.Authority,
			Subjects: map[string]revocation.ResponderSubject{"citizen": {Organization: "Thiqa Test"}}, Actor: "thiqa-serve",
			Renewals: n.db.OCSPResponderRenewals(), Audit: f.log})
		go func() { _ = ocsp.NewPresigner(n.pub.Responder, rp).Run(ctx) }()
		var err error
		revs[i], err = revocation.New(revocation.Options{Store: n.db.Revocations(), Certificates: n.db.Certificates(nil), Audit: f.log,
			Responder: n.pub.Responder})
		if err != nil {
			t.Fatal(err)
		}
	}
	go revs[1].Poll(ctx, 50*time.Millisecond)
	for _, n := range []*node{a, b} {
		if c := n.signedBy(t, f, leaf.SerialNumber); !c.Equal(first) {
			t.Fatal("before the revocation, not signed by the responder")
		}
	}

	if _, err := revs[0].Revoke(t.Context(), "officer-7", hex.EncodeToString(first.SerialNumber.Bytes()), "keyCompromise", nil); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	deadline := revoked.Add(20 * time.Second)
	for i, n := range []*node{a, b} {
		// Node a stops at once; node b once its poller has seen the
		// revocation (every 50 ms here): it may sign with the old one
		// until then, and never after.
		noticed := i == 0
		for {
			if time.Now().After(deadline) {
				t.Fatalf("node %d: no new responder within 20 s of the revocation", i)
			}
			fresh, st := answerAbout(t, f, n, leaf.SerialNumber, []byte("revoked-nonce-01"))
			cached, cst := answerAbout(t, f, n, leaf.SerialNumber, nil)
			old := false
			for _, c := range []*x509.Certificate{fresh, cached} {
				old = old || c != nil && c.Equal(first)
			}
			switch {
			case old && (noticed || time.Since(revoked) > 2*time.Second):
				t.Fatalf("node %d: an answer signed by the revoked responder after the notice of its revocation", i)
			case old:
				time.Sleep(10 * time.Millisecond)
				continue
			}
			noticed = true
			if fresh == nil || cached == nil {
				for _, s := range []xocsp.ResponseStatus{st, cst} {
					if s != xocsp.Success && s != xocsp.TryLater {
						t.Fatalf("node %d: status %d while the responder is revoked, want tryLater", i, s)
					}
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if !fresh.Equal(cached) || pubEqual(fresh.PublicKey, first.PublicKey) {
				t.Fatalf("node %d: the new responder has the revoked one's key, or two responders sign", i)
			}
			break
		}
	}
	if ca, cb := a.signedBy(t, f, leaf.SerialNumber), b.signedBy(t, f, leaf.SerialNumber); !ca.Equal(cb) || !ca.Equal(readCert(t, certPath)) {
		t.Fatal("the nodes do not both sign with the responder ocsp-citizen.pem names")
	}
	var reasons []string
	if err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Action != revocation.ActionRenewResponder || r.Outcome != audit.OutcomeSuccess {
			return nil
		}
		var det struct{ CA, Previous, Reason string }
		if err := json.Unmarshal(r.Details, &det); err != nil {
			return err
		}
		if det.CA == "citizen" {
			if det.Previous != hex.EncodeToString(first.SerialNumber.Bytes()) {
				t.Errorf("renewal record replaces %s", det.Previous)
			}
			reasons = append(reasons, det.Reason)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 1 || reasons[0] != revocation.RenewReasonRevoked {
		t.Fatalf("citizen responder renewal records with reasons %q, want one with %q", reasons, revocation.RenewReasonRevoked)
	}
}

// A node that was down when its responder was revoked finds it revoked in
// the store as it starts: it answers tryLater, never with the revoked
// responder, and its pre-signer renews it at once.
func TestResponderRevokedWhileDown(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			certPath, _ := f.rp.Paths("citizen")
			first := readCert(t, certPath)
			svc, err := revocation.New(revocation.Options{Store: f.db.Revocations(), Certificates: f.db.Certificates(nil), Audit: f.log})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Revoke(t.Context(), "officer-7", hex.EncodeToString(first.SerialNumber.Bytes()), "superseded", nil); err != nil {
				t.Fatal(err)
			}
			n := f.startNode(t, 48*time.Hour)
			if c, st := answerAbout(t, f, n, big.NewInt(424242), []byte("down-nonce-00001")); c != nil || st != xocsp.TryLater {
				t.Fatalf("started with the revoked responder: status %d", st)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { _ = ocsp.NewPresigner(n.pub.Responder, n.rp).Run(ctx) }()
			waitFor(t, 20*time.Second, func() string {
				c, st := answerAbout(t, f, n, big.NewInt(424242), []byte("down-nonce-00002"))
				if c == nil {
					return "no answer yet: status " + xocsp.ResponseStatus(st).String()
				}
				if c.Equal(first) {
					t.Fatal("signed by the revoked responder")
				}
				return ""
			})
		})
	}
}

// answerAbout is n's answer about a citizen serial, with nonce (signed
// now) or without (from the cache when there): the responder certificate
// it carries (nil for an error status) and the response status.
func answerAbout(t *testing.T, f *fixture, n *node, serial *big.Int, nonce []byte) (*x509.Certificate, xocsp.ResponseStatus) {
	t.Helper()
	h := crypto.SHA256
	if nonce == nil {
		h = crypto.SHA1 // the hash the nodes pre-sign
	}
	req, err := ocsp.NewRequest(f.pki.CAs["citizen"], serial, h, nonce)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := n.pub.Responder.Respond(t.Context(), req)
	resp, err := xocsp.ParseResponse(der, f.pki.CAs["citizen"])
	var re xocsp.ResponseError
	if errors.As(err, &re) {
		return nil, re.Status
	}
	if err != nil || resp.Certificate == nil {
		t.Fatalf("OCSP answer: %v %+v", err, resp)
	}
	return resp.Certificate, xocsp.Success
}

func pubEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
