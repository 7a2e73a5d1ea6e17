package hierarchy

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/internal/audit"
)

// ActRootRetireOnline is the audit action of the retirement of an online
// root (`thiqa ca root retire-online`), recorded before the online copy of
// the root key is destroyed.
const ActRootRetireOnline = "ca.root.retire-online"

// ErrNoProof is a root CRL that does not prove that the offline copy of
// the root key works: its number is not above the last the online root
// signed.
var ErrNoProof = errors.New("not a proof that the offline copy of the root key signs")

// ErrUnknownKey is a key on the online token whose public key the token
// does not show, so that RetireOnlineRoot cannot tell whether it is the
// root's.
var ErrUnknownKey = errors.New("a key on the online token cannot be told apart from the root's")

// RetireToken is the online token as RetireOnlineRoot uses it.
type RetireToken interface {
	// Keys lists the keys on the token.
	Keys(ctx context.Context) ([]KeyInfo, error)
	// DeleteKey destroys the key labelled label: an error wrapping
	// ErrKeyNotFound when the token no longer holds it.
	DeleteKey(ctx context.Context, label string) error
}

// CRLNumbers tells the last CRL number an issuer signed online.
type CRLNumbers interface {
	// LastCRLNumber is the number of the last CRL issuer signed (0 when
	// none).
	LastCRLNumber(ctx context.Context, issuer string) (*big.Int, error)
}

// RetireOnline is what RetireOnlineRoot needs: the data folder's parts
// and the checked proof.
type RetireOnline struct {
	// RootName is the root's name in the deployment (ca.root.name), Root
	// its certificate.
	RootName string
	Root     *x509.Certificate
	// Offline says the configuration names the root offline already (a
	// run again).
	Offline bool
	// Dir is the data folder and ConfigPath its thiqa.yaml, as the
	// messages and the audit record name them.
	Dir, ConfigPath string
	// Proof is the root CRL the ceremony signed after adopting the root,
	// checked by crl.CheckImported, read from Source.
	Proof  *crl.ImportedCRL
	Source string
	// Actor is who retires the key (the operator); Now is the time of the
	// import.
	Actor string
	Now   time.Time

	// Token is the online token holding the root key, Numbers the
	// revocation store's CRL numbers, CRLs where imported CRLs are kept
	// and Audit the data folder's audit log.
	Token   RetireToken
	Numbers CRLNumbers
	CRLs    crl.ImportedStore
	Audit   Auditor
	// SetOffline rewrites the configuration so that its root is offline
	// (ca.root.offline: true, no key); it reports whether it changed it.
	SetOffline func() (bool, error)
}

// RetireOnlineRoot takes the root of a data folder offline after `thiqa ca
// root adopt` took it into a ceremony folder: it switches the folder to an
// offline root and destroys the root key on the online token, writing what
// it does to w. The proof that the offline copy of the key works is r.Proof,
// the root CRL the ceremony signed after adopting the root: signed by the
// root's key, with a CRL number above every one the online servers handed
// out (so not signed online; refused with ErrNoProof, wrapped by
// crl.Refused, otherwise), and it becomes the imported root CRL (the same
// CRL imported already is left as it is, and not recorded again). In this
// order, each step kept when done: import the CRL, rewrite the
// configuration, record the retirement in the audit log (before each key
// it destroys), destroy the key. A run again after an interruption takes
// up where it stopped; on a folder whose root is offline with no root key
// on the token it changes nothing. A key another node sharing the HSM
// destroyed already is recorded as such, before the configuration is
// rewritten. A private key on the token whose public key the token does
// not show may be the root's: the run stops with ErrUnknownKey before it
// switches or destroys anything.
func RetireOnlineRoot(ctx context.Context, r RetireOnline, w io.Writer) error {
	root, proof := r.Root, r.Proof
	last, err := r.Numbers.LastCRLNumber(ctx, r.RootName)
	if err != nil {
		return err
	}
	if proof.Number == nil || proof.Number.Cmp(last) <= 0 {
		return crl.Refused(r.Source, fmt.Errorf("%w: its number %s is not above %s, the last the online root signed: it may come from the online key, so it proves nothing about the offline copy; "+
			"sign the root CRL in the ceremony folder that adopted the root (thiqa ca crl --ceremony C --out root.crl) and give that one", ErrNoProof, proof.NumberString(), last))
	}
	sum := ca.Fingerprint(proof.DER)
	// The same CRL imported already (a run again, another node sharing the
	// database) is no new import: nothing stored, nothing recorded again.
	switch err := crl.Import(ctx, r.CRLs, r.Audit, proof, r.Source, r.Actor, r.Now); {
	case errors.Is(err, crl.ErrAlreadyImported):
		fmt.Fprintf(w, "root CRL number %s imported already (SHA-256 fingerprint %s)\n", proof.NumberString(), sum)
	case errors.Is(err, crl.ErrNotNewer) && r.Offline:
		fmt.Fprintf(w, "root CRL: a newer one than %s is imported already\n", r.Source)
	case err != nil:
		return err
	default:
		fmt.Fprintf(w, "root CRL number %s imported (SHA-256 fingerprint %s): signed by the offline copy of the root key\n", proof.NumberString(), sum)
	}
	keys, err := r.Token.Keys(ctx)
	if err != nil {
		return err
	}
	var rootKeys []KeyInfo
	var unknown []string
	for _, k := range keys {
		pub, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool })
		switch {
		case !ok:
			unknown = append(unknown, k.URI)
		case pub.Equal(root.PublicKey):
			rootKeys = append(rootKeys, k)
		}
	}
	if len(unknown) > 0 {
		// A private key whose public half the token does not show (an EC
		// key whose public object is gone, as a deletion interrupted
		// between its two objects leaves it) may be the root's: taken for
		// another key, the root key would stay online while the command
		// said it was gone.
		return fmt.Errorf("%w: the online token holds private keys whose public key it does not show (%s): "+
			"they may be the root's, so the root key cannot be said to be gone; check them (thiqa keys list --data %s), destroy the one of the root, and run the command again",
			ErrUnknownKey, strings.Join(unknown, ", "), r.Dir)
	}
	details := func(more map[string]any) map[string]any {
		d := map[string]any{"root": root.Subject.String(), "rootSHA256": ca.Fingerprint(root.Raw),
			"proofCRL": proof.NumberString(), "proofSHA256": sum, "lastOnlineCRL": last.String()}
		for k, v := range more {
			d[k] = v
		}
		return d
	}
	// With no key of the root on the token (another node sharing the HSM
	// destroyed it), the switch of this folder is recorded before it is
	// made: recorded after it, a run killed in between switched the folder
	// for good without a record, and a run again found nothing to do.
	keyGone := len(rootKeys) == 0 && !r.Offline
	if keyGone {
		if _, err := r.Audit.Append(ctx, audit.Entry{Actor: r.Actor, Action: ActRootRetireOnline, Object: r.ConfigPath, Outcome: audit.OutcomeSuccess,
			Details: details(map[string]any{"key": "not on the online token"}),
		}); err != nil {
			return fmt.Errorf("writing the audit record (%s was not changed: run the command again): %w", r.ConfigPath, err)
		}
	}
	changed, err := r.SetOffline()
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(w, "%s: ca.root is now offline (ca.root.offline: true, no key)\n", r.ConfigPath)
	}
	for _, k := range rootKeys {
		spki, err := ca.SPKIHash(k.Public)
		if err != nil {
			return err
		}
		if _, err := r.Audit.Append(ctx, audit.Entry{Actor: r.Actor, Action: ActRootRetireOnline, Object: k.URI, Outcome: audit.OutcomeSuccess,
			Details: details(map[string]any{"spkiSHA256": hex.EncodeToString(spki[:])}),
		}); err != nil {
			return fmt.Errorf("writing the audit record (the online root key was not destroyed: run the command again): %w", err)
		}
		if err := r.Token.DeleteKey(ctx, k.Label); err != nil && !errors.Is(err, ErrKeyNotFound) {
			return fmt.Errorf("destroying the online root key %s: %w (run the command again)", k.URI, err)
		}
		fmt.Fprintf(w, "online root key %s destroyed (SPKI SHA-256 %s)\n", k.URI, hex.EncodeToString(spki[:]))
	}
	switch {
	case keyGone:
		fmt.Fprintln(w, "the online token holds no key of the root (already destroyed)")
	case len(rootKeys) == 0:
		fmt.Fprintf(w, "the root of %s is offline already and its key is not on the online token: nothing else to do\n", r.Dir)
	}
	fmt.Fprintf(w, "next: restart every thiqa serve of this deployment; copy the online token again (its backup must no longer hold the root key);\n"+
		"sign the next root CRL in the ceremony before %s and import it (thiqa ca crl import --data %s --crl F)\n",
		proof.NextUpdate.Add(-14*24*time.Hour).Format(time.DateOnly), r.Dir)
	return nil
}
