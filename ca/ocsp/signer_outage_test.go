package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/outage"
)

// failingKey is a responder key whose token fails every signature with err.
type failingKey struct {
	crypto.Signer
	err error
}

func (f failingKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, f.err }

// TestSignerOutageIsTryLater: a response that must be signed now (a cache
// miss, a nonce) while the responder key's token is unavailable for now
// (hsm marks the error) is answered tryLater and counted so; any other
// signing failure stays internalError.
func TestSignerOutageIsTryLater(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want []byte
		out  outcome
	}{
		{"token-unavailable", fmt.Errorf("hsm: signing with key %q: %w", "ocsp", outage.Mark(errors.New("pkcs11: 0x30: CKR_DEVICE_ERROR"))), respTryLater, outTryLater},
		{"other-failure", errors.New("hsm: signing with key \"ocsp\": pkcs11: 0x70: CKR_MECHANISM_INVALID"), respInternal, outInternal},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPKI(t, "Thiqa")
			src := &memStatus{}
			src.set("citizen", 7, Status{State: Good})
			rc := p.responder(t, 48*time.Hour)
			rc.Signer = failingKey{rc.Signer, c.err}
			r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: rc}}, src, NewCache(0), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, nonce := range [][]byte{nil, []byte("nonce-0123456789")} {
				req, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA256, nonce)
				if resp, _ := r.Respond(context.Background(), req); !bytes.Equal(resp, c.want) {
					t.Fatalf("nonce %q: answered %x, want %x", nonce, resp, c.want)
				}
			}
			if got := testutil.ToFloat64(r.m.signedResp[c.out]); got != 2 {
				t.Fatalf("%v responses counted as %s, want 2", got, outcomeNames[c.out])
			}
		})
	}
}
