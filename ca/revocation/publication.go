package revocation

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/ocsp"
)

// StatusStore is the store of revocations as the CRLs and the OCSP
// responder read it (*store.Revocations).
type StatusStore interface {
	crl.NumberSource
	crl.RevokedSource
	ocsp.StatusSource
	// HighestPartition returns the highest CRL partition the
	// certificates of the issuer name (0 when none names one).
	HighestPartition(ctx context.Context, issuer string) (int, error)
}

// PublicationOptions are the parts a Publication is built from.
type PublicationOptions struct {
	// Parts are the hierarchy's CAs as hierarchy.Find returns them (the
	// root first).
	Parts []*hierarchy.Part
	// CRL and OCSP are the validated settings of the CRLs and of the
	// responder.
	CRL  crl.Settings
	OCSP ocsp.Settings
	// Store holds the revocations; Issued says until when each CA's
	// certificates are valid (a retired generation publishes nothing).
	Store  StatusStore
	Issued hierarchy.Issued
	// Responders are the issuing CAs' delegated OCSP responders.
	Responders *Responders
	// Shared, when set, is the store through which the nodes of a cluster
	// publish their CRLs: the publisher signs under each CA's lock only the
	// CRLs due and serves those stored (crl.Publisher.Share). Nil: this
	// process signs every CRL it serves.
	Shared crl.SharedStore
	// Memory, when set and Shared is not, records the CRLs this process
	// publishes, so that after a restart the next CRL is not dated before
	// the last one (crl.Publisher.Remember).
	Memory crl.Memory
	// Dir is the data folder, named in the advice to run `thiqa init`.
	Dir        string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Publication publishes the revocations of a hierarchy: a CRL generator
// for each CA holding its key on the token (the root too when its key is
// online) behind one CRL publisher, and the OCSP responder of the issuing
// CAs with their delegated responders. An offline root, a retired
// generation (everything it issued has expired) and an older generation
// whose key was destroyed publish nothing.
type Publication struct {
	// Responder answers OCSP requests; Publisher generates and serves
	// the CRLs.
	Responder  *ocsp.Responder
	Publisher  *crl.Publisher
	responders *Responders
}

// NewPublication builds the publication of o.Parts. A CA of the
// configuration without its key or certificate (other than the offline
// root or a destroyed older generation) is an error: the data folder needs
// `thiqa init`.
func NewPublication(ctx context.Context, o PublicationOptions) (*Publication, error) {
	var issuers []ocsp.Issuer
	var gens []*crl.Generator
	current := hierarchy.CurrentGenerations(o.Parts)
	for i, c := range o.Parts {
		root := i == 0
		if c.Key == nil || c.Cert == nil {
			if root {
				continue // the root key is kept offline: no root CRL from here
			}
			if hierarchy.KeyDestroyed(c, current) {
				o.Logger.Warn("an older CA generation has no key on the token: no CRLs or OCSP answers from it", "ca", c.Conf.Name)
				continue
			}
			return nil, fmt.Errorf("CA %s is not initialised: run `thiqa init --data %s`", c.Conf.Name, o.Dir)
		}
		if !root {
			if done, err := hierarchy.Retired(ctx, o.Issued, c, current, time.Now()); err != nil {
				return nil, err
			} else if done {
				o.Logger.Info("CA generation retired: its certificates have all expired; no more CRLs or OCSP answers from it", "ca", c.Conf.Name)
				continue
			}
		}
		set := o.CRL.ForIssuer(true, 0)
		if !root { // each partition the CA's certificates name has its CRL
			used, err := o.Store.HighestPartition(ctx, c.Conf.Name)
			if err != nil {
				return nil, err
			}
			set = o.CRL.ForIssuer(false, used)
		}
		g, err := crl.NewGenerator(set, crl.Issuer{Name: c.Conf.Name, Cert: c.Cert, Signer: c.Key, CACerts: root}, o.Store, o.Store)
		if err != nil {
			return nil, err
		}
		gens = append(gens, g)
		if root {
			continue
		}
		rc, _, err := o.Responders.Ensure(ctx, c.Conf.Name, 0)
		if err != nil {
			return nil, fmt.Errorf("OCSP responder of %s: %w", c.Conf.Name, err)
		}
		is := ocsp.Issuer{Name: c.Conf.Name, Cert: c.Cert, Responder: rc}
		// Revoked while this node was down: it signs nothing, and the
		// pre-signer renews it with a new key at once.
		if st, err := o.Store.Status(ctx, c.Conf.Name, rc.Cert.SerialNumber); err != nil {
			o.Logger.Warn("cannot tell whether the OCSP responder certificate was revoked", "ca", c.Conf.Name, "err", err)
		} else if st.State == ocsp.Revoked {
			is.Revoked = true
			o.Logger.Error("the OCSP responder certificate was revoked: no responses signed with it (tryLater); renewing it with a new key now",
				"ca", c.Conf.Name, "serial", hex.EncodeToString(rc.Cert.SerialNumber.Bytes()))
		}
		if now := time.Now(); now.Before(rc.Cert.NotBefore) {
			// A restart just after a renewal, the clock behind the CA's:
			// the responder it replaced signs until this one is valid.
			prev, err := o.Responders.Previous(ctx, c.Conf.Name, rc.Cert, now)
			if err == nil {
				// It may have been replaced because it was revoked (its
				// key compromised): a revoked responder never signs again.
				err = notRevoked(ctx, o.Store, c.Conf.Name, prev.Cert)
			}
			if err != nil {
				// As before: no answer until it is valid, nothing worse.
				o.Logger.Error("the OCSP responder certificate is not valid yet and no previous responder can sign: OCSP answers internalError until it is",
					"ca", c.Conf.Name, "notBefore", rc.Cert.NotBefore.UTC().Format(time.RFC3339), "err", err)
			} else {
				is.Previous = &prev
				o.Logger.Warn("the OCSP responder certificate is not valid yet: the one it replaced signs until it is", "ca", c.Conf.Name,
					"notBefore", rc.Cert.NotBefore, "previousNotAfter", prev.Cert.NotAfter)
			}
		}
		issuers = append(issuers, is)
	}
	responder, err := ocsp.New(o.OCSP, issuers, o.Store, ocsp.NewCache(o.OCSP.CacheEntries), o.Logger, o.Registerer)
	if err != nil {
		return nil, err
	}
	publisher, err := crl.NewPublisher(o.CRL, o.Logger, o.Registerer, gens...)
	if err != nil {
		return nil, err
	}
	if o.Shared != nil {
		publisher.Share(o.Shared, crl.ShareOptions{})
	} else if o.Memory != nil {
		publisher.Remember(o.Memory)
	}
	return &Publication{Responder: responder, Publisher: publisher, responders: o.Responders}, nil
}

// Loops are what keeps the publication current while serving: the CRL
// publisher, and the OCSP pre-signer (which renews the delegated
// responders too). Each returns when its context is done.
func (p *Publication) Loops() []func(ctx context.Context) {
	return []func(ctx context.Context){
		func(ctx context.Context) { _ = p.Publisher.Run(ctx) },
		func(ctx context.Context) { _ = ocsp.NewPresigner(p.Responder, p.responders).Run(ctx) },
	}
}
