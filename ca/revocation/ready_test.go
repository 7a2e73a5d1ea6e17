package revocation_test

import (
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store/storetest"
)

// The responder's readiness (the "ocsp" entry of /readyz) with the
// responders on SoftHSM and the store: ready with a valid responder; not
// once its certificate is revoked, naming the CA and its serial, until
// its renewal with a new key; and not when the responder key is gone from
// the token, which the first response it fails to sign shows.
func TestResponderReady(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			certPath, labelPath := f.rp.Paths("citizen")
			first := readCert(t, certPath)
			n := f.startNode(t, 48*time.Hour)
			r := n.pub.Responder
			if err := r.Ready(t.Context()); err != nil {
				t.Fatalf("Ready with valid responders: %v", err)
			}

			svc, err := revocation.New(revocation.Options{Store: n.db.Revocations(), Certificates: n.db.Certificates(nil), Audit: f.log, Responder: r})
			if err != nil {
				t.Fatal(err)
			}
			serial := hex.EncodeToString(first.SerialNumber.Bytes())
			if _, err := svc.Revoke(t.Context(), "officer-7", serial, "keyCompromise", nil); err != nil {
				t.Fatal(err)
			}
			err = r.Ready(t.Context())
			if !errors.Is(err, ocsp.ErrResponderRevoked) || !strings.Contains(err.Error(), "CA citizen") || !strings.Contains(err.Error(), first.SerialNumber.Text(16)) {
				t.Fatalf("Ready with the citizen responder revoked: %v", err)
			}
			if strings.Contains(err.Error(), "organisation") {
				t.Fatalf("Ready blames another CA: %v", err)
			}
			if _, err := r.RenewDue(t.Context(), n.rp); err != nil {
				t.Fatal(err)
			}
			if err := r.Ready(t.Context()); err != nil {
				t.Fatalf("Ready once the revoked responder is renewed: %v", err)
			}

			raw, err := os.ReadFile(labelPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.keys.tok.DeleteKey(t.Context(), strings.TrimSpace(string(raw))); err != nil {
				t.Fatal(err)
			}
			if c, _ := answerAbout(t, f, n, big.NewInt(424242), []byte("gone-key-nonce-1")); c != nil {
				t.Fatal("signed with a key deleted from the token")
			}
			if err := r.Ready(t.Context()); !errors.Is(err, ocsp.ErrResponderKey) || !strings.Contains(err.Error(), "CA citizen") {
				t.Fatalf("Ready with the responder key gone from the token: %v", err)
			}
		})
	}
}
