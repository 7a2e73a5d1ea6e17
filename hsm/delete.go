package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// DeleteKey destroys the key pair labelled label: the private and the public
// object (and any other object carrying that label). It is for keys that
// never came into use, such as a key generated for a certificate request
// the CA then refused; keys in service are retired, not deleted. A label
// with no object is ErrKeyNotFound. Session copies of the key
// (UseSessionCopies) are destroyed with it. Signers already holding the key
// fail from then on (within a second, through copies made by another
// process that uses this package).
func (t *Token) DeleteKey(ctx context.Context, label string) error {
	if label == "" {
		return errors.New("hsm: DeleteKey needs a label")
	}
	deleted := 0
	err := t.do(ctx, func(s *session) error {
		// Not while GenerateKey checks and creates (held in the call,
		// which may outlive its caller).
		t.genMu.Lock()
		defer t.genMu.Unlock()
		// Session copies of the key carry its label, so the search below
		// destroys them too; the sessions then forget their handles.
		// copyMu keeps sessions from evicting a copy meanwhile.
		t.copyMu.Lock()
		defer t.copyMu.Unlock()
		defer t.copiesDestroyedLocked(label)
		// The private keys first, then what else carries the label: a
		// deletion stopped in between (a kill, a token error) then leaves a
		// public key, not a private key that no listing can match to its
		// public key any more (ListKeys shows none for an EC key without
		// its public object), which a caller retiring a key by its public
		// key would take for another key.
		for _, tmpl := range [][]*pkcs11.Attribute{
			{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label), pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)},
			{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)},
		} {
			hs, err := findObjects(t.p, s.h, tmpl, 0)
			if err != nil {
				return err
			}
			for _, h := range hs {
				if hook := t.testHookDestroy; hook != nil {
					if err := hook(); err != nil {
						return err
					}
				}
				if err := t.p.DestroyObject(s.h, h); err != nil {
					return err
				}
				deleted++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hsm: deleting key %q on token %q: %w", label, t.label, err)
	}
	if deleted == 0 {
		return fmt.Errorf("%w: no object labelled %q on token %q", ErrKeyNotFound, label, t.label)
	}
	t.log.Info("hsm key deleted", "key", label, "objects", deleted)
	return nil
}
