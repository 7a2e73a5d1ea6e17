package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"io"
	"math/big"
	"testing"
	"time"
)

// revokingKey is a responder key whose certificate is revoked while it
// signs (the revocation commits on this node meanwhile).
type revokingKey struct {
	crypto.Signer
	revoke func()
}

func (k revokingKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.revoke()
	return k.Signer.Sign(rand, digest, opts)
}

// A response being signed when its responder is revoked is not handed out
// (tryLater, as the ones after), and not served later from the cache.
func TestResponderRevokedWhileSigning(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	rc := p.responder(t, 48*time.Hour)
	var r *Responder
	rc.Signer = revokingKey{Signer: rc.Signer, revoke: func() {
		if err := r.Revoked(context.Background(), "citizen", rc.Cert.SerialNumber); err != nil {
			t.Error(err)
		}
	}}
	var err error
	r, err = New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: rc}}, src, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, nonce := range [][]byte{nil, []byte("nonce-0123456789"), nil} {
		req, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA256, nonce)
		if resp, _ := r.Respond(context.Background(), req); !bytes.Equal(resp, respTryLater) {
			t.Fatalf("nonce %q: answered %x, want tryLater: a response signed by the responder revoked while it signed", nonce, resp)
		}
	}
}
