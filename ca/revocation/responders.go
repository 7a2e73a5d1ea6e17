package revocation

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// KeyStore is the token holding the responder keys, as the responders
// need it (hsm/keyring implements it: keyring.Ring). The keys it returns
// sign every OCSP response: they should be ready to sign all day.
type KeyStore interface {
	// Key returns the key labelled label, or an error wrapping
	// fs.ErrNotExist when the token has none.
	Key(ctx context.Context, label string) (crypto.Signer, error)
	// GenerateKey generates a key labelled label on the token and records
	// its generation in the audit log.
	GenerateKey(ctx context.Context, label string) (crypto.Signer, error)
	// Labels lists the labels of the keys on the token: the last resort
	// of a responder whose label file names another key than its
	// certificate's.
	Labels(ctx context.Context) ([]string, error)
}

// Certifier is the CA as the responders need it (*ca.Authority): the
// issuing CAs' certificates, and issuance of ocsp-responder certificates.
type Certifier interface {
	CACertificate(name string) (*x509.Certificate, bool)
	Issue(ctx context.Context, req ca.Request) (*ca.Issued, error)
}

// ResponderSubject is the organisation and country an issuing CA's
// responder certificate names ("Thiqa" and "OM" when empty).
type ResponderSubject struct {
	Organization, Country string
}

// ResponderOptions are the parts Responders are built from.
type ResponderOptions struct {
	// Dir holds each CA's current responder certificate
	// (ocsp-<ca>.pem) and the label of its key (ocsp-<ca>.label).
	Dir string
	// Keys is the token; CA issues the responder certificates.
	Keys KeyStore
	CA   Certifier
	// Subjects are the responder certificates' subjects by CA name; the
	// later generations of a CA (hierarchy.GenerationName) that CA knows
	// name the same organisation.
	Subjects map[string]ResponderSubject
	// Actor requests the certificates ("thiqa-init", "thiqa-serve").
	Actor string
	// Renewals coordinates renewal between the nodes that share this
	// store, token and data folder: one renews a responder due, the others
	// adopt the responder it made. Nil: these responders renew alone.
	Renewals ResponderRenewals
	// Logger receives the repairs of a label file out of step with its
	// certificate; discarded when nil.
	Logger *slog.Logger
	// Audit, when set, records every renewal RenewResponder makes or
	// fails to make (ActionRenewResponder), as the TSA records its unit's.
	Audit ResponderAuditor
}

// ActionRenewResponder is the audit action of a delegated OCSP responder's
// renewal while serving: outcome success with the new certificate's
// serial as object, or failure with the serial of the one due.
const ActionRenewResponder = "ocsp.responder.renew"

// ResponderAuditor appends to the hash-chained audit log (*audit.Log).
type ResponderAuditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// Responders issues and loads the delegated OCSP responder of each issuing
// CA: a key generated on the token and an ocsp-responder certificate issued
// by the CA. It is the responder's ocsp.ResponderRenewer.
type Responders struct {
	o      ResponderOptions
	log    *slog.Logger
	holder string     // names this node in its claims to renew (Renewals)
	mu     sync.Mutex // one renewal at a time writes the files
	// pending holds, by CA, the key issue generated last whose
	// certificate the CA could not issue (the CA down): the next issue
	// has it certified instead of generating another, so renewals retried
	// every few seconds (a revoked responder) leave at most one unused key
	// on the token. Guarded by mu.
	pending map[string]pendingKey
}

// pendingKey is a responder key generated but not certified.
type pendingKey struct {
	label string
	key   crypto.Signer
}

// NewResponders returns the responders o describes.
func NewResponders(o ResponderOptions) *Responders {
	subjects := maps.Clone(o.Subjects)
	for name, sub := range o.Subjects {
		for n := 2; ; n++ {
			g := hierarchy.GenerationName(name, n)
			if _, ok := o.CA.CACertificate(g); !ok {
				break
			}
			subjects[g] = sub
		}
	}
	o.Subjects = subjects
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Responders{o: o, log: log, holder: rand.Text()}
}

// Paths are where a CA's current responder certificate (PEM) and the label
// of its key on the token are kept.
func (rp *Responders) Paths(caName string) (certPath, labelPath string) {
	return filepath.Join(rp.o.Dir, "ocsp-"+caName+".pem"), filepath.Join(rp.o.Dir, "ocsp-"+caName+".label")
}

// maxLabelLines bounds the labels a label file lists while a renewal
// writes the files.
const maxLabelLines = 4

// readLabels returns the labels the label file lists: one, or while a
// renewal writes the files (or after it was interrupted) the new key's
// first and then the labels it listed before.
func readLabels(labelPath string) ([]string, error) {
	raw, err := os.ReadFile(labelPath)
	if err != nil {
		return nil, err
	}
	var labels []string
	for line := range strings.Lines(string(raw)) {
		if l := strings.TrimSpace(line); l != "" && !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	if len(labels) == 0 {
		labels = []string{""}
	}
	return labels, nil
}

// readResponderCert reads the one certificate of a responder file.
func readResponderCert(certPath string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	blk, rest := pem.Decode(raw)
	if blk == nil || blk.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%s: want exactly one PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	return cert, nil
}

// certifies reports whether cert certifies key's public key.
func certifies(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// load returns the responder recorded in the folder, or an error wrapping
// fs.ErrNotExist when there is none. When the label file names another key
// than the certificate's (a renewal interrupted between the two files, or
// two nodes writing them at once), the certificate decides: its key is the
// one of the other labels the file lists, or (with Renewals) the one the
// renewal that made it recorded, or as a last resort another of the CA's
// responder keys on the token; the label file is then put right.
func (rp *Responders) load(ctx context.Context, caName string, caCert *x509.Certificate) (ocsp.ResponderCert, error) {
	certPath, labelPath := rp.Paths(caName)
	cert, err := readResponderCert(certPath)
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	labels, err := readLabels(labelPath)
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	label := labels[0]
	key, err := rp.o.Keys.Key(ctx, label)
	if err == nil && certifies(cert, key) && len(labels) == 1 {
		if err := cert.CheckSignatureFrom(caCert); err != nil {
			return ocsp.ResponderCert{}, fmt.Errorf("%s is not issued by CA %s: %w", certPath, caName, err)
		}
		return ocsp.ResponderCert{Cert: cert, Signer: key}, nil
	}
	if err := cert.CheckSignatureFrom(caCert); err == nil {
		if rc, found, ferr := rp.findKey(ctx, caName, cert, labels); ferr != nil {
			return ocsp.ResponderCert{}, ferr
		} else if found != "" {
			if len(labels) > 1 || found != label {
				if werr := atomicfile.Write(labelPath, []byte(found+"\n"), 0o644); werr != nil {
					return ocsp.ResponderCert{}, werr
				}
				rp.log.Warn("OCSP responder label file out of step with its certificate (a renewal interrupted or racing another node's): put right",
					"ca", caName, "file", labelPath, "was", strings.Join(labels, ","), "key", found, "serial", hex.EncodeToString(cert.SerialNumber.Bytes()))
			}
			return rc, nil
		}
	}
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("responder key %q of %s: %w", label, caName, err)
	}
	if !certifies(cert, key) {
		return ocsp.ResponderCert{}, fmt.Errorf("responder key %q does not match %s", label, certPath)
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("%s is not issued by CA %s: %w", certPath, caName, err)
	}
	return ocsp.ResponderCert{Cert: cert, Signer: key}, nil
}

// findKey finds the key that cert, caName's responder certificate,
// certifies: under one of labels, which the label file lists, or (with
// Renewals) under the label the renewal that made cert recorded. It returns
// the key's label, or "" when none of them is cert's key.
func (rp *Responders) findKey(ctx context.Context, caName string, cert *x509.Certificate, labels []string) (ocsp.ResponderCert, string, error) {
	// Only this CA's responder keys: a label file naming another CA's key
	// is not a renewal out of step but a foreign file.
	prefix := "ocsp-" + caName + "-"
	if !strings.HasPrefix(labels[0], prefix) {
		return ocsp.ResponderCert{}, "", nil
	}
	candidates := slices.Clone(labels)
	if rp.o.Renewals != nil {
		rec, err := rp.o.Renewals.Recorded(ctx, caName, cert.Raw)
		if err != nil {
			return ocsp.ResponderCert{}, "", fmt.Errorf("looking up the key of the OCSP responder certificate of %s: %w", caName, err)
		}
		if rec != nil && !slices.Contains(candidates, rec.KeyLabel) {
			candidates = append(candidates, rec.KeyLabel)
		}
	}
	try := func(labels []string) (ocsp.ResponderCert, string, error) {
		for _, l := range labels {
			if !strings.HasPrefix(l, prefix) {
				continue
			}
			key, err := rp.o.Keys.Key(ctx, l)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return ocsp.ResponderCert{}, "", fmt.Errorf("responder key %q of %s: %w", l, caName, err)
			}
			if certifies(cert, key) {
				return ocsp.ResponderCert{Cert: cert, Signer: key}, l, nil
			}
		}
		return ocsp.ResponderCert{}, "", nil
	}
	if rc, l, err := try(candidates); err != nil || l != "" {
		return rc, l, err
	}
	// Last resort (files a version without these safeguards left out of
	// step): every responder key of the CA on the token.
	all, err := rp.o.Keys.Labels(ctx)
	if err != nil {
		return ocsp.ResponderCert{}, "", fmt.Errorf("listing the keys on the token for the OCSP responder of %s: %w", caName, err)
	}
	all = slices.DeleteFunc(all, func(l string) bool { return slices.Contains(candidates, l) })
	return try(all)
}

// writeFiles makes label and cert caName's responder in the folder, so
// that whatever point a crash (or another node writing them too) stops
// it at, the label file lists the key of the certificate file: first the
// label file lists label before the labels it listed, then the certificate
// is replaced, then the label file lists label alone.
func (rp *Responders) writeFiles(caName, label string, cert *x509.Certificate) error {
	certPath, labelPath := rp.Paths(caName)
	lines := []string{label}
	if prev, err := readLabels(labelPath); err == nil {
		for _, l := range prev {
			if l != "" && !slices.Contains(lines, l) && len(lines) < maxLabelLines {
				lines = append(lines, l)
			}
		}
	}
	if err := rp.keepPrevious(caName, cert); err != nil {
		return err
	}
	if len(lines) > 1 {
		if err := atomicfile.Write(labelPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return err
	}
	return atomicfile.Write(labelPath, []byte(label+"\n"), 0o644)
}

// issue generates a new responder key on the token (or takes the one the
// last issue for caName could not have certified: pending) and has the CA
// issue its ocsp-responder certificate; it writes nothing. The previous
// key stays on the token. The caller holds mu.
func (rp *Responders) issue(ctx context.Context, caName string) (ocsp.ResponderCert, string, error) {
	caCert, ok := rp.o.CA.CACertificate(caName)
	if !ok || caName == "root" {
		return ocsp.ResponderCert{}, "", fmt.Errorf("no issuing CA %q", caName)
	}
	pk, ok := rp.pending[caName]
	delete(rp.pending, caName)
	if !ok {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return ocsp.ResponderCert{}, "", fmt.Errorf("choosing a key label: %w", err)
		}
		pk.label = "ocsp-" + caName + "-" + hex.EncodeToString(b[:])
		key, err := rp.o.Keys.GenerateKey(ctx, pk.label)
		if err != nil {
			return ocsp.ResponderCert{}, "", fmt.Errorf("generating responder key %s: %w", pk.label, err)
		}
		pk.key = key
	}
	label, key := pk.label, pk.key
	sub := rp.o.Subjects[caName]
	if sub.Organization == "" {
		sub.Organization = "Thiqa"
	}
	if sub.Country == "" {
		sub.Country = "OM"
	}
	issued, err := rp.o.CA.Issue(ctx, ca.Request{
		Profile: policies.ProfileOCSPResponder, CA: caName, PublicKey: key.Public(), KeyGeneratedByService: true, RequestedBy: rp.o.Actor,
		Subject: map[string]string{
			policies.FieldCommonName:       "OCSP Responder " + caName,
			policies.FieldOrganizationName: sub.Organization,
			policies.FieldCountry:          sub.Country,
		},
	})
	if err != nil {
		// Not certified: the next try certifies this key (it never
		// signed), unless the CA refuses it for good (certified already,
		// blocked).
		if !errors.Is(err, ca.ErrDuplicateRequest) && !errors.Is(err, ca.ErrKeyBlocked) && !errors.Is(err, ca.ErrKeyOtherSubject) {
			if rp.pending == nil {
				rp.pending = map[string]pendingKey{}
			}
			rp.pending[caName] = pk
		}
		return ocsp.ResponderCert{}, "", fmt.Errorf("issuing the responder certificate of %s: %w", caName, err)
	}
	if err := issued.Certificate.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, "", fmt.Errorf("responder certificate of %s: %w", caName, err)
	}
	return ocsp.ResponderCert{Cert: issued.Certificate, Signer: key}, label, nil
}

// renew issues a new responder for caName and records it in the folder.
func (rp *Responders) renew(ctx context.Context, caName string) (ocsp.ResponderCert, error) {
	rc, label, err := rp.issue(ctx, caName)
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	if err := rp.writeFiles(caName, label, rc.Cert); err != nil {
		return ocsp.ResponderCert{}, err
	}
	return rc, nil
}

// RenewResponder replaces current, caName's responder certificate, due
// (ocsp.ResponderRenewer). Alone (no Renewals) it generates a new
// responder key on the token, has the CA issue its ocsp-responder
// certificate and records both in the folder; the previous key stays on
// the token. With Renewals, it does so only when it wins the claim to
// renew current, and otherwise adopts the responder the winner made, or
// returns none while the winner is at it.
func (rp *Responders) RenewResponder(ctx context.Context, caName string, current *x509.Certificate) (ocsp.ResponderRenewal, error) {
	return rp.renewResponder(ctx, caName, current, "")
}

// RenewRevokedResponder is RenewResponder for current revoked
// (ocsp.RevokedRenewer): its audit records say reason revoked.
func (rp *Responders) RenewRevokedResponder(ctx context.Context, caName string, current *x509.Certificate) (ocsp.ResponderRenewal, error) {
	return rp.renewResponder(ctx, caName, current, RenewReasonRevoked)
}

// RenewReasonRevoked is the reason a responder renewal's audit record
// (ActionRenewResponder, detail "reason") gives when the responder it
// replaced was revoked.
const RenewReasonRevoked = "revoked"

// renewResponder is RenewResponder; reason, when set, goes into the audit
// records.
func (rp *Responders) renewResponder(ctx context.Context, caName string, current *x509.Certificate, reason string) (ocsp.ResponderRenewal, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var rc ocsp.ResponderCert
	how := renewedHere
	var err error
	if rp.o.Renewals == nil || current == nil {
		rc, err = rp.renew(ctx, caName)
	} else {
		rc, how, err = rp.replace(ctx, caName, current, time.Now())
	}
	if err != nil {
		rp.auditRenewal(ctx, caName, current, ocsp.ResponderCert{}, reason, err)
		return ocsp.ResponderRenewal{}, err
	}
	if how == renewedHere { // adopted or pending: the node that renews it records it
		rp.auditRenewal(ctx, caName, current, rc, reason, nil)
	}
	return ocsp.ResponderRenewal{Responder: rc, Adopted: how == renewedAdopted}, nil
}

// auditRenewal records the renewal of caName's responder current into rc,
// or its failure with err; reason, when set, says why (revoked). A record
// that cannot be written is logged: the renewal (or its failure, which the
// caller logs) stands all the same.
func (rp *Responders) auditRenewal(ctx context.Context, caName string, current *x509.Certificate, rc ocsp.ResponderCert, reason string, err error) {
	if rp.o.Audit == nil {
		return
	}
	previous := ""
	if current != nil {
		previous = hex.EncodeToString(current.SerialNumber.Bytes())
	}
	details := map[string]any{"ca": caName}
	if reason != "" {
		details["reason"] = reason
	}
	e := audit.Entry{Actor: rp.o.Actor, Action: ActionRenewResponder, Object: previous, Outcome: audit.OutcomeFailure, Details: details}
	if err != nil {
		details["error"] = err.Error()
	} else {
		e.Object, e.Outcome = hex.EncodeToString(rc.Cert.SerialNumber.Bytes()), audit.OutcomeSuccess
		details["previous"], details["notAfter"] = previous, rc.Cert.NotAfter
	}
	if _, aerr := rp.o.Audit.Append(context.WithoutCancel(ctx), e); aerr != nil {
		rp.log.Error("recording the OCSP responder renewal in the audit log failed", "ca", caName, "outcome", e.Outcome, "err", aerr)
	}
}

// renewed is what replace did with a responder due.
type renewed int

const (
	renewedPending renewed = iota // another node renews it: nothing yet
	renewedHere                   // this node made the new responder
	renewedAdopted                // another node made it; this one adopted it
)

// replace replaces old, caName's responder certificate due at now, in a
// cluster: it renews it when it wins the claim and otherwise adopts the
// responder the winner made (none while the winner is still at it). The
// winner records the new responder in the store before it writes the
// files, so that a node finding the certificate file ahead of the label
// file learns the certificate's key from the store.
func (rp *Responders) replace(ctx context.Context, caName string, old *x509.Certificate, now time.Time) (ocsp.ResponderCert, renewed, error) {
	serial := hex.EncodeToString(old.SerialNumber.Bytes())
	claim, err := rp.o.Renewals.ClaimRenewal(ctx, caName, serial, rp.holder, now, now.Add(responderClaimTTL))
	if err != nil {
		return ocsp.ResponderCert{}, renewedPending, fmt.Errorf("claiming the renewal of OCSP responder %s of %s: %w", serial, caName, err)
	}
	if claim.Next != nil {
		rc, err := rp.adopt(ctx, caName, *claim.Next)
		if err != nil {
			return ocsp.ResponderCert{}, renewedPending, fmt.Errorf("adopting the responder that replaced OCSP responder %s of %s: %w", serial, caName, err)
		}
		return rc, renewedAdopted, nil
	}
	if !claim.Claimed {
		return ocsp.ResponderCert{}, renewedPending, nil
	}
	release := func() {
		if rerr := rp.o.Renewals.ReleaseRenewal(context.WithoutCancel(ctx), caName, serial, rp.holder); rerr != nil {
			rp.log.Warn("releasing the claim to renew the OCSP responder failed; another node may take it over when it lapses", "ca", caName, "serial", serial, "err", rerr)
		}
	}
	rc, label, err := rp.issue(ctx, caName)
	if err != nil {
		release()
		return ocsp.ResponderCert{}, renewedPending, err
	}
	if err := rp.o.Renewals.CompleteRenewal(context.WithoutCancel(ctx), caName, serial, rp.holder, RenewedResponder{KeyLabel: label, Cert: rc.Cert.Raw}); err != nil {
		// Not recorded: serving it here would leave this node signing
		// with a responder the others never adopt. It is retried.
		release()
		return ocsp.ResponderCert{}, renewedPending, fmt.Errorf("recording the renewed OCSP responder of %s for the other nodes: %w", caName, err)
	}
	if err := rp.writeFiles(caName, label, rc.Cert); err != nil {
		return ocsp.ResponderCert{}, renewedPending, err
	}
	return rc, renewedHere, nil
}

// adopt takes over the responder another node renewed: it checks that the
// CA issued r.Cert and that the key labelled r.KeyLabel on the token is the
// one it certifies, and brings the files up to date, unless the
// certificate file names that responder already or one that expires later
// (the files never go back to an older responder).
func (rp *Responders) adopt(ctx context.Context, caName string, r RenewedResponder) (ocsp.ResponderCert, error) {
	caCert, ok := rp.o.CA.CACertificate(caName)
	if !ok {
		return ocsp.ResponderCert{}, fmt.Errorf("no issuing CA %q", caName)
	}
	cert, err := x509.ParseCertificate(r.Cert)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("the renewed responder certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("the renewed responder certificate is not issued by CA %s: %w", caName, err)
	}
	key, err := rp.o.Keys.Key(ctx, r.KeyLabel)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("finding the renewed responder key %q: %w", r.KeyLabel, err)
	}
	if !certifies(cert, key) {
		return ocsp.ResponderCert{}, fmt.Errorf("the key %q on the token is not the one the renewed responder certificate certifies", r.KeyLabel)
	}
	rc := ocsp.ResponderCert{Cert: cert, Signer: key}
	certPath, labelPath := rp.Paths(caName)
	if cur, err := readResponderCert(certPath); err == nil && (cur.Equal(cert) || cur.NotAfter.After(cert.NotAfter)) {
		if labels, err := readLabels(labelPath); cur.Equal(cert) && (err != nil || len(labels) != 1 || labels[0] != r.KeyLabel) {
			// The certificate is there, its label not (yet): put it.
			if err := atomicfile.Write(labelPath, []byte(r.KeyLabel+"\n"), 0o644); err != nil {
				return ocsp.ResponderCert{}, err
			}
		}
		return rc, nil
	}
	if err := rp.writeFiles(caName, r.KeyLabel, cert); err != nil {
		return ocsp.ResponderCert{}, err
	}
	return rc, nil
}

// Ensure returns an issuing CA's responder, issuing a new one when there is
// none, it no longer loads, or it expires within renewBefore; renewed says
// which. With Renewals, a responder due is renewed by one node: another
// node adopts it (renewed false), keeps a responder still valid while the
// renewal is under way, and waits for it when the responder has expired.
func (rp *Responders) Ensure(ctx context.Context, caName string, renewBefore time.Duration) (rc ocsp.ResponderCert, renewed bool, err error) {
	caCert, ok := rp.o.CA.CACertificate(caName)
	if !ok {
		return ocsp.ResponderCert{}, false, fmt.Errorf("no issuing CA %q", caName)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rc, err = rp.load(ctx, caName, caCert)
	if err == nil && time.Now().Add(renewBefore).Before(rc.Cert.NotAfter) {
		return rc, false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ocsp.ResponderCert{}, false, err
	}
	if err != nil || rp.o.Renewals == nil {
		rc, err = rp.renew(ctx, caName)
		return rc, err == nil, err
	}
	return rp.ensureClaimed(ctx, caName, rc, renewBefore)
}

// ensureClaimed replaces rc, due, in a cluster: it waits while another
// node renews it when it has expired, and follows the renewals made while
// this node was down until it has a responder that is not due.
func (rp *Responders) ensureClaimed(ctx context.Context, caName string, rc ocsp.ResponderCert, renewBefore time.Duration) (ocsp.ResponderCert, bool, error) {
	for adopted := 0; adopted < maxResponderAdoptions; {
		now := time.Now()
		next, how, err := rp.replace(ctx, caName, rc.Cert, now)
		switch {
		case err != nil:
			return ocsp.ResponderCert{}, false, err
		case how == renewedHere:
			return next, true, nil
		case how == renewedAdopted:
			rc = next
			adopted++
			if now.Add(renewBefore).Before(rc.Cert.NotAfter) {
				return rc, false, nil
			}
		case now.Before(rc.Cert.NotAfter):
			return rc, false, nil // still valid: adopted at a later check
		default:
			t := time.NewTimer(responderClaimRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return ocsp.ResponderCert{}, false, fmt.Errorf("waiting for another node to renew the OCSP responder of %s: %w", caName, ctx.Err())
			case <-t.C:
			}
		}
	}
	return ocsp.ResponderCert{}, false, fmt.Errorf("the OCSP responder of %s was renewed more than %d times since this node last ran, and every renewal is due", caName, maxResponderAdoptions)
}
