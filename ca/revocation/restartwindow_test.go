package revocation_test

import (
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store/storetest"
)

// A node restarted just after its citizen responder was renewed by a CA
// whose clock is a few minutes ahead (the node's clock is before the new
// responder's notBefore) answers with the responder the renewal replaced,
// kept in the data folder with the label of its key, as the running node
// does after a backward clock step. Without that one, it answers
// internalError until the new one is valid, as before.
func TestResponderRestartBeforeNewValid(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			certPath, _ := f.rp.Paths("citizen")
			old := readCert(t, certPath)
			f.pki.Skew(3 * time.Minute)
			rn, err := f.rp.RenewResponder(t.Context(), "citizen", old)
			f.pki.Skew(0)
			if err != nil {
				t.Fatal(err)
			}
			next := rn.Responder.Cert
			if !time.Now().Before(next.NotBefore) {
				t.Fatalf("the renewed responder is valid from %s: no window to test", next.NotBefore)
			}
			if got := readCert(t, certPath); !got.Equal(next) {
				t.Fatal("the renewed responder is not the one in the folder")
			}

			n := f.startNode(t, 48*time.Hour) // the restart
			if c, st := answer(t, f, n); st != xocsp.Success || !c.Equal(old) {
				t.Fatalf("before the new responder's notBefore: status %d, signed by the previous one %v", st, c != nil && c.Equal(old))
			}

			// Without the previous responder: as before, no answer.
			if err := os.Remove(f.rp.PreviousPath("citizen")); err != nil {
				t.Fatal(err)
			}
			n = f.startNode(t, 48*time.Hour)
			if _, st := answer(t, f, n); st != xocsp.InternalError {
				t.Fatalf("no previous responder: status %d, want internalError", st)
			}
		})
	}
}

// A responder replaced because it was revoked (its key compromised) never
// signs again: a restart before the renewed responder's notBefore finds
// it kept in the folder, valid by its dates and its key on the token, but
// revoked in the store, and answers internalError until the new one is
// valid.
func TestResponderRestartPreviousRevoked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			certPath, _ := f.rp.Paths("citizen")
			old := readCert(t, certPath)
			f.pki.Skew(3 * time.Minute)
			rn, err := f.rp.RenewResponder(t.Context(), "citizen", old)
			f.pki.Skew(0)
			if err != nil {
				t.Fatal(err)
			}
			if !time.Now().Before(rn.Responder.Cert.NotBefore) {
				t.Fatalf("the renewed responder is valid from %s: no window to test", rn.Responder.Cert.NotBefore)
			}
			svc, err := revocation.New(revocation.Options{Store: f.db.Revocations(), Certificates: f.db.Certificates(nil), Audit: f.log})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Revoke(t.Context(), "officer-7", hex.EncodeToString(old.SerialNumber.Bytes()), "keyCompromise", nil); err != nil {
				t.Fatalf("revoking the replaced responder: %v", err)
			}
			if _, err := os.Stat(f.rp.PreviousPath("citizen")); err != nil {
				t.Fatalf("the replaced responder is not kept: %v", err)
			}

			n := f.startNode(t, 48*time.Hour) // the restart
			if c, st := answer(t, f, n); st != xocsp.InternalError {
				t.Fatalf("status %d (signed by the revoked responder: %v), want internalError", st, c != nil && c.Equal(old))
			}
		})
	}
}

// The responder kept is used only while its key is on the token and its
// certificate valid: Previous says why it cannot sign.
func TestResponderPreviousOnlyWhenUsable(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	certPath, _ := f.rp.Paths("citizen")
	old := readCert(t, certPath)
	if _, err := f.rp.Previous(t.Context(), "citizen", old, time.Now()); err == nil {
		t.Fatal("a previous responder while the current one is valid")
	}
	f.pki.Skew(3 * time.Minute)
	rn, err := f.rp.RenewResponder(t.Context(), "citizen", old)
	f.pki.Skew(0)
	if err != nil {
		t.Fatal(err)
	}
	next := rn.Responder.Cert
	rc, err := f.rp.Previous(t.Context(), "citizen", next, time.Now())
	if err != nil || !rc.Cert.Equal(old) {
		t.Fatalf("previous responder: %v", err)
	}
	if _, err := f.rp.Previous(t.Context(), "citizen", next, old.NotAfter); err == nil {
		t.Fatal("a previous responder after its notAfter")
	}
	// Its key gone from the token: none.
	if err := f.keys.tok.DeleteKey(t.Context(), labelOf(t, f, old)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rp.Previous(t.Context(), "citizen", next, time.Now()); err == nil {
		t.Fatal("a previous responder whose key is no longer on the token")
	}
}

// labelOf is the label of the citizen responder key that cert certifies.
func labelOf(t *testing.T, f *fixture, cert *x509.Certificate) string {
	t.Helper()
	labels, err := f.keys.Labels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		k, err := f.keys.Key(t.Context(), l)
		if err != nil {
			continue
		}
		if pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(cert.PublicKey) {
			return l
		}
	}
	t.Fatal("no key on the token for the responder")
	return ""
}

// answer is n's answer about a citizen serial (with a nonce: signed now):
// the responder certificate it carries and the response status.
func answer(t *testing.T, f *fixture, n *node) (*x509.Certificate, xocsp.ResponseStatus) {
	t.Helper()
	req, err := ocsp.NewRequest(f.pki.CAs["citizen"], big.NewInt(424242), crypto.SHA256, []byte("restart-nonce-01"))
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
