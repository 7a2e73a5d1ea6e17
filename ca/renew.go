package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// Renewal and re-key. A certificate of a citizen or an agency is replaced
// by a new one for the same subject and profile: with the same key
// (renewal), with the key of a new CSR, or with a new key on the token for
// a credential there (re-key). A credential keeps its ID, and with it its
// PIN and its mobile-ID enrolment. Once the new certificate is stored, the
// rest follows in an order that a crash can interrupt anywhere: the
// credential is switched to the new certificate (and key), the replaced
// certificate is revoked (superseded), the replaced key is destroyed on the
// token, and only then is the renewal recorded as complete; every step is
// idempotent, and a server's sweep (Renewer.Run) completes what a crash
// left.
//
// A renewal may keep the replaced certificate valid until its holder
// confirms the new one (RenewRequest.KeepReplaced: a CMP key update
// without implicit confirmation, RFC 9483 §4.1.3 and §4.1.1): Supersede
// then revokes it once the confirmation came, and Withdraw, when the new
// certificate was rejected or never confirmed (and revoked for it),
// releases the replaced one, valid as it was, to be renewed again.

// ActionRenewCertificate is the audit action of a renewal or re-key.
const ActionRenewCertificate = string(policies.ActionRenewCertificate)

// reasonKeyCompromise is the CRL reason code of keyCompromise (RFC 5280).
const reasonKeyCompromise = 1

// Refusals of a renewal, for errors.Is; a *RenewalError carries one.
var (
	// ErrRenewalRefused matches every *RenewalError.
	ErrRenewalRefused = errors.New("renewal refused")
	// ErrNotPermitted: the caller is neither a registration officer nor
	// the certificate's subject.
	ErrNotPermitted = errors.New("not the caller's certificate")
	// ErrAlreadyRenewed: another certificate replaced this one already.
	ErrAlreadyRenewed = errors.New("certificate already renewed")
	// ErrNotRenewable: the certificate's state or profile does not allow
	// this caller to renew it (revoked, expired, a service certificate).
	ErrNotRenewable = errors.New("certificate cannot be renewed")
	// ErrCryptoPeriod: the key's crypto-period would end before the
	// renewed certificate expires; a new key is needed.
	ErrCryptoPeriod = errors.New("the key's crypto-period is over")
	// ErrSameKey: a re-key with the replaced certificate's own key.
	ErrSameKey = errors.New("re-key with the same key")
	// ErrNotWithdrawable: Withdraw of a renewal whose certificate is not
	// revoked, or of a certificate that renews nothing.
	ErrNotWithdrawable = errors.New("renewal cannot be withdrawn")
)

// RenewalError is a refused renewal: Kind (one of the sentinels above)
// decides the answer, Reason says why.
type RenewalError struct {
	Kind   error
	Reason string
	// Successor is the certificate that replaced this one (ErrAlreadyRenewed).
	Successor string
}

// Error implements the error interface.
func (e *RenewalError) Error() string { return e.Reason }

// Is makes errors.Is match the kind and ErrRenewalRefused.
func (e *RenewalError) Is(target error) bool { return target == e.Kind || target == ErrRenewalRefused }

func refuseRenewal(kind error, format string, args ...any) error {
	return &RenewalError{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// renewableProfiles are the profiles whose certificates their holders and
// the registration officers renew; service certificates (OCSP responders,
// TSA units) are renewed by their services.
var renewableProfiles = []string{policies.ProfileCitizenSigning, policies.ProfileCitizenAuth, policies.ProfileOrganisationSeal}

// RenewalStore is what renewals need of the store beyond Store.
type RenewalStore interface {
	// Successor returns the serial of the certificate (issued, or being
	// issued) that replaces serial, or "".
	Successor(ctx context.Context, serial string) (string, error)
	// FirstCertified returns the earliest notBefore of the issued
	// certificates of a key (SPKI hash); zero when there is none.
	FirstCertified(ctx context.Context, keyHash [32]byte) (time.Time, error)
	// PendingRenewals returns up to limit issued certificates that replace
	// another and whose renewal is not recorded as complete, oldest first.
	PendingRenewals(ctx context.Context, limit int) ([]CertificateRecord, error)
	// RenewalPending says whether serial is an issued renewal not recorded
	// as complete nor withdrawn (one that PendingRenewals would list).
	RenewalPending(ctx context.Context, serial string) (bool, error)
	// CompleteRenewal records that the renewal by serial is complete.
	CompleteRenewal(ctx context.Context, serial string, at time.Time) error
	// WithdrawRenewal records that the renewal by serial was withdrawn:
	// Successor, PendingRenewals and Expiring no longer count it, and the
	// certificate it replaced may be renewed again. Idempotent.
	WithdrawRenewal(ctx context.Context, serial string, at time.Time) error
	// Expiring returns up to limit issued, unrevoked certificates that no
	// other replaces and whose notAfter is after from and at most to,
	// soonest first.
	Expiring(ctx context.Context, from, to time.Time, limit int) ([]CertificateRecord, error)
	// CountExpiring counts those certificates by profile.
	CountExpiring(ctx context.Context, from, to time.Time) (map[string]int, error)
}

// RenewalKeys makes and destroys subject keys on the service's token
// (hsm/keyring implements it: keyring.Credentials).
type RenewalKeys interface {
	KeyGenerator
	// DestroyKey destroys the key labelled label once its credential moved
	// to a new key, recording reason; a key already gone is no error.
	DestroyKey(ctx context.Context, label, reason string) error
}

// CredentialSwitch moves a credential to its new certificate.
type CredentialSwitch struct {
	// CredentialID names the credential (unchanged by the renewal).
	CredentialID string
	// Replaced is the serial of the certificate it had.
	Replaced string
	// Serial, CA, Profile and DER are the new certificate's.
	Serial, CA, Profile string
	DER                 []byte
	// KeyLabel is the label of its key on the token.
	KeyLabel string
}

// CredentialSwitcher points a credential at its new certificate (the
// signing service, adapted by cmd/thiqa). It must be idempotent, and must
// not move a credential that is no longer at Replaced.
type CredentialSwitcher interface {
	SwitchCredential(ctx context.Context, sw CredentialSwitch) error
}

// Superseder revokes a replaced certificate with reason superseded (the
// revocation service: revocation.Service.RevokeSuperseded); a certificate
// revoked already is no error.
type Superseder interface {
	RevokeSuperseded(ctx context.Context, actor, serial string) error
}

// RenewerConfig wires a Renewer.
type RenewerConfig struct {
	Authority *Authority
	Store     RenewalStore
	// Keys makes the new keys of re-keys on the token and destroys the
	// replaced ones; nil refuses {"rekey": true}.
	Keys RenewalKeys
	// Credentials switches credentials; nil when no service keeps any.
	Credentials CredentialSwitcher
	// Superseder revokes replaced certificates; nil keeps them valid
	// until they expire (ca.renewal.keepSuperseded).
	Superseder Superseder
	// Logger receives the renewals' logs; nil discards.
	Logger *slog.Logger
	// Metrics registers thiqa_certificates_expiring; nil registers nothing.
	Metrics prometheus.Registerer
}

// Renewer renews and re-keys certificates and completes what follows.
type Renewer struct {
	a        *Authority
	store    RenewalStore
	keys     RenewalKeys
	creds    CredentialSwitcher
	supers   Superseder
	log      *slog.Logger
	expiring *prometheus.GaugeVec
}

// NewRenewer builds a Renewer.
func NewRenewer(cfg RenewerConfig) (*Renewer, error) {
	if cfg.Authority == nil || cfg.Store == nil {
		return nil, errors.New("renewer: an authority and a renewal store are required")
	}
	rn := &Renewer{a: cfg.Authority, store: cfg.Store, keys: cfg.Keys, creds: cfg.Credentials, supers: cfg.Superseder, log: cfg.Logger}
	if rn.log == nil {
		rn.log = slog.New(slog.DiscardHandler)
	}
	rn.expiring = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "thiqa_certificates_expiring",
		Help: "Valid certificates (issued, unrevoked, not yet renewed) that expire within the window, by profile.",
	}, []string{"profile", "within"})
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(rn.expiring); err != nil {
			return nil, fmt.Errorf("renewer: registering metrics: %w", err)
		}
	}
	return rn, nil
}

// RenewRequest asks for a renewal or a re-key of one certificate.
type RenewRequest struct {
	// Serial is the certificate to replace (hex).
	Serial string
	// CSR, when set, re-keys with the CSR's key.
	CSR []byte
	// Rekey re-keys a credential on the token with a new key there.
	Rekey bool
	// PublicKey, when set, re-keys with a key whose possession the caller
	// proved without a CSR, as PossessionProvedBy says (a CMP key update's
	// CRMF signature, checked by package enrol/cmp).
	PublicKey          crypto.PublicKey
	PossessionProvedBy string
	// RequestID is an optional idempotency key.
	RequestID string
	// KeepReplaced leaves the replaced certificate valid: the caller
	// supersedes it with Supersede once the holder confirmed the new
	// certificate, or withdraws the renewal with Withdraw when the holder
	// rejected it or never confirmed it (a CMP key update without implicit
	// confirmation). Only for a re-key with PublicKey or CSR (a key the
	// holder keeps: no credential to switch, no key to destroy).
	KeepReplaced bool
	// Caller is who asks: a registration officer, or the certificate's
	// subject (a citizen or an agency).
	Caller *auth.Principal
}

// Renewed is a renewal's new certificate and the serial it replaces.
type Renewed struct {
	*Issued
	Replaces string
}

// renewal is what a renewal adds to an issuance (nil for a new issuance).
type renewal struct {
	replaces string
	// keyLabel is the new certificate's key label on the token ("": not on it).
	keyLabel string
	// sameKey: the replaced certificate's key, whose possession its first
	// certification proved; firstCertified is when that was.
	sameKey        bool
	firstCertified time.Time
	// keepReplaced: RenewRequest.KeepReplaced (Intent.KeepsReplaced).
	keepReplaced bool
	// mode and object are the certificate.renew record's mode and object
	// (the serial as the request gave it); mode "" records none (a renewal
	// not made by Renew).
	mode, object string
}

func (rn *renewal) replacedSerial() string {
	if rn == nil {
		return ""
	}
	return rn.replaces
}

func (rn *renewal) label() string {
	if rn == nil {
		return ""
	}
	return rn.keyLabel
}

func (rn *renewal) keepsKey() bool { return rn != nil && rn.sameKey }

func (rn *renewal) keepsReplaced() bool { return rn != nil && rn.keepReplaced }

// checkIssue refuses a renewal with the same key whose certificate would
// outlive the key's crypto-period (counted from its first certificate).
func (rn *renewal) checkIssue(p *policies.Profile, now time.Time, _ [32]byte) error {
	if !rn.sameKey || p.CryptoPeriod == 0 || rn.firstCertified.IsZero() {
		return nil
	}
	end := rn.firstCertified.Add(p.CryptoPeriod)
	if notAfter := now.Add(p.Validity); notAfter.After(end) {
		return refuseRenewal(ErrCryptoPeriod, "the key's crypto-period for profile %s (%s from its first certificate, %s) ends on %s, before a renewed certificate would expire (%s): re-key instead (a CSR with a new key, or {\"rekey\": true} for a key on the token)",
			p.Name, p.CryptoPeriod, rn.firstCertified.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), notAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Renew replaces one certificate: see RenewRequest for the modes. The
// caller must be a registration officer or the certificate's subject; the
// subject renews only a valid certificate, an officer also an expired one;
// a revoked certificate is renewed by nobody (checkRenewable). A key
// blocked or revoked for keyCompromise is never renewed, and a key past its
// crypto-period is re-keyed instead. Every outcome is audited once: the
// issuance's record (certificate.issue, naming what it replaces), or the
// refusal's before anything is issued (certificate.renew). A renewal's
// summary record (certificate.renew, success) is committed with the new
// certificate and its certificate.issue record: when it cannot be
// written nothing is issued, and the renewal may be sent again.
func (rn *Renewer) Renew(ctx context.Context, req RenewRequest) (*Renewed, error) {
	actor := "unknown"
	if req.Caller != nil && req.Caller.Subject != "" {
		actor = req.Caller.Subject
	}
	out, reachedIssue, err := rn.renew(ctx, req, actor)
	if err == nil {
		return out, nil // its records were committed with the certificate
	}
	if reachedIssue {
		return nil, err // Issue recorded the outcome
	}
	entry := audit.Entry{Actor: actor, Action: ActionRenewCertificate, Object: req.Serial, Outcome: audit.OutcomeRefused}
	details := map[string]any{"mode": renewMode(req), "error": err.Error()}
	if !IsRefusal(err) && !errors.Is(err, ErrNotFound) {
		entry.Outcome = audit.OutcomeFailure
	}
	if aerr := appendAudit(ctx, rn.a.audit, entry, details); aerr != nil {
		rn.log.ErrorContext(ctx, "audit append failed", "action", ActionRenewCertificate, "err", aerr)
		return nil, fmt.Errorf("writing the audit record: %w", aerr)
	}
	return nil, err
}

// renewedEntry is the certificate.renew success record of the renewal rn
// by actor, whose new certificate is serial (Renew's summary): the store
// commits it with the certificate.
func renewedEntry(ctx context.Context, actor string, rn *renewal, serial string) audit.Entry {
	details := map[string]any{"mode": rn.mode, "serial": serial}
	if rn.keepReplaced {
		details["replacedSuperseded"] = "once the new certificate is confirmed"
	}
	addCaller(ctx, details, actor)
	return audit.Entry{Actor: actor, Action: ActionRenewCertificate, Object: rn.object, Outcome: audit.OutcomeSuccess, Details: details}
}

func renewMode(req RenewRequest) string {
	switch {
	case len(req.CSR) > 0:
		return "rekey-csr"
	case req.PublicKey != nil:
		return "rekey-" + req.PossessionProvedBy
	case req.Rekey:
		return "rekey-token"
	}
	return "renew"
}

// renew does Renew's work; reachedIssue says whether Issue ran (and so
// audited the outcome).
func (rn *Renewer) renew(ctx context.Context, req RenewRequest, actor string) (out *Renewed, reachedIssue bool, err error) {
	serial := strings.ToLower(req.Serial)
	if !isHexSerial(serial) {
		return nil, false, &RequestError{Reason: "serial must be 2 to 40 hex digits"}
	}
	old, err := rn.a.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, false, err
	}
	cert, err := x509.ParseCertificate(old.DER)
	if err != nil {
		return nil, false, fmt.Errorf("stored certificate %s: %w", serial, err)
	}
	officer := req.Caller.Has(policies.RoleRegistrationOfficer)
	if !officer && !req.Caller.OwnsCertificate(cert) {
		return nil, false, refuseRenewal(ErrNotPermitted, "the caller may not renew certificate %s: only its subject or a registration officer", serial)
	}
	if !slices.Contains(renewableProfiles, old.Profile) {
		return nil, false, refuseRenewal(ErrNotRenewable, "certificate %s has profile %s, which its own service renews", serial, old.Profile)
	}
	if succ, err := rn.store.Successor(ctx, serial); err != nil {
		return nil, false, fmt.Errorf("looking for a successor of %s: %w", serial, err)
	} else if succ != "" {
		rn.completeBySerial(ctx, succ, actor) // a retry after a crash finishes the first one
		return nil, false, &RenewalError{Kind: ErrAlreadyRenewed, Successor: succ,
			Reason: fmt.Sprintf("certificate %s was renewed already: its successor is %s", serial, succ)}
	}
	if err := checkRenewable(old, officer, rn.a.now()); err != nil {
		return nil, false, err
	}
	r, rnw, err := rn.request(ctx, req, old, cert, actor)
	if err != nil {
		return nil, false, err
	}
	got, err := rn.a.issueAudited(ctx, r, rnw)
	if err != nil {
		if req.Rekey && rn.keys != nil {
			if derr := rn.keys.DeleteKey(context.WithoutCancel(ctx), rnw.keyLabel); derr != nil {
				rn.log.ErrorContext(ctx, "removing the new key of a refused re-key", "label", rnw.keyLabel, "err", derr)
			}
		}
		return nil, true, err
	}
	nw := &CertificateRecord{Serial: got.Serial, CA: got.CA, Profile: old.Profile, DER: got.Certificate.Raw, CredentialID: old.CredentialID,
		KeyLabel: rnw.keyLabel, Replaces: serial}
	if err := rn.complete(ctx, nw, old, actor, !req.KeepReplaced); err != nil {
		// The certificate is issued; the sweep finishes the rest.
		rn.log.WarnContext(ctx, "renewal issued but not completed yet (the sweep retries)", "serial", got.Serial, "replaces", serial, "err", err)
	}
	return &Renewed{Issued: got, Replaces: serial}, true, nil
}

// checkRenewable refuses what old's state does not allow: a revoked
// certificate for anyone, and an expired one for its subject (an officer
// proves the identity again first). A revoked certificate is not renewed
// nor re-keyed, not even by an officer: its subject, attributes or key
// may be what was wrong with it (affiliationChanged, privilegeWithdrawn,
// keyCompromise), and a renewal would certify them again from the
// revoked certificate's own fields, unchecked. EN 319 411-1 asks that a
// renewal or re-key check the validity of the certificate it replaces
// and of the information about its subject (clause 6.2.3): after a
// revocation, the officer issues a new certificate
// (POST /api/v1/certificates) from a fresh check of the holder's identity.
func checkRenewable(old *CertificateRecord, officer bool, now time.Time) error {
	switch {
	case old.Revoked && old.RevocationReason == reasonKeyCompromise && !officer:
		return refuseRenewal(ErrNotRenewable, "certificate %s was revoked for keyCompromise: a registration officer issues a new one with a new key", old.Serial)
	case old.Revoked && old.RevocationReason == reasonKeyCompromise:
		// The officer was told so before (400 key-compromised, from the
		// key's block): the same answer, for a re-key too.
		return refuseRenewal(ErrKeyBlocked, "certificate %s was revoked for keyCompromise: it is not renewed; issue a new certificate with a new key after checking the holder's identity", old.Serial)
	case old.Revoked:
		return refuseRenewal(ErrNotRenewable, "certificate %s is revoked: a revoked certificate is not renewed; a registration officer issues a new one after checking the holder's identity", old.Serial)
	case now.After(old.NotAfter) && !officer:
		return refuseRenewal(ErrNotRenewable, "certificate %s expired on %s: only a registration officer may renew it, after checking the holder's identity",
			old.Serial, old.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// request builds the issuance request of a renewal of old in req's mode.
// For a re-key on the token it makes the new key, which the caller deletes
// should the issuance be refused.
func (rn *Renewer) request(ctx context.Context, req RenewRequest, old *CertificateRecord, cert *x509.Certificate, actor string) (Request, *renewal, error) {
	caName := old.CA
	if is, ok := rn.a.byName[old.CA]; ok {
		caName = is.ca // the CA's current generation issues
	}
	r := Request{Profile: old.Profile, CA: caName, Subject: SubjectFields(cert), SerialNumber: cert.Subject.SerialNumber, SubjectRepeats: SubjectRepeats(cert), CredentialID: old.CredentialID,
		RequestID: req.RequestID, RequestedBy: actor}
	rnw := &renewal{replaces: old.Serial, keepReplaced: req.KeepReplaced, mode: renewMode(req), object: req.Serial}
	switch {
	case len(req.CSR) > 0 && req.Rekey:
		return r, nil, &RequestError{Reason: `give either csr or rekey, not both`}
	case req.KeepReplaced && (req.Rekey || (req.PublicKey == nil && len(req.CSR) == 0)):
		return r, nil, &RequestError{Reason: "only a re-key with the holder's own new key waits for its confirmation"}
	case req.PublicKey != nil && (len(req.CSR) > 0 || req.Rekey):
		return r, nil, &RequestError{Reason: "give one new key: a CSR, a public key with its proof of possession, or rekey"}
	case req.PublicKey != nil:
		if req.PossessionProvedBy == "" {
			return r, nil, &RequestError{Reason: "a new public key needs a proof of possession"}
		}
		if old.CredentialID != "" {
			return r, nil, &RequestError{Reason: fmt.Sprintf("the key of certificate %s lives on the service's token (credential %s): re-key it there with {\"rekey\": true}", old.Serial, old.CredentialID)}
		}
		if publicKeysEqual(req.PublicKey, cert.PublicKey) {
			return r, nil, refuseRenewal(ErrSameKey, "the new key is the key of certificate %s: a re-key needs a new key", old.Serial)
		}
		r.PublicKey, r.PossessionProvedBy = req.PublicKey, req.PossessionProvedBy
	case len(req.CSR) > 0:
		if old.CredentialID != "" {
			return r, nil, &RequestError{Reason: fmt.Sprintf("the key of certificate %s lives on the service's token (credential %s): re-key it there with {\"rekey\": true}", old.Serial, old.CredentialID)}
		}
		csr, err := parseCSR(req.CSR)
		if err != nil {
			return r, nil, err
		}
		if publicKeysEqual(csr.PublicKey, cert.PublicKey) {
			return r, nil, refuseRenewal(ErrSameKey, "the CSR's key is the key of certificate %s: a re-key needs a new key (send {} to renew with the same key)", old.Serial)
		}
		r.CSR = req.CSR
	case req.Rekey:
		if old.CredentialID == "" {
			return r, nil, &RequestError{Reason: fmt.Sprintf("the key of certificate %s is not on the service's token: re-key with a CSR for a new key", old.Serial)}
		}
		if rn.keys == nil {
			return r, nil, &RequestError{Reason: "re-key on the token is not available on this service"}
		}
		if err := rn.a.CheckRequest(r); err != nil {
			return r, nil, err
		}
		label, pub, err := rn.keys.GenerateKey(ctx, old.Profile)
		if err != nil {
			return r, nil, fmt.Errorf("generating the new key on the token: %w", err)
		}
		r.PublicKey, r.KeyGeneratedByService, rnw.keyLabel = pub, true, label
	default:
		if old.KeyBlocked || (old.Revoked && old.RevocationReason == reasonKeyCompromise) {
			if err := rn.a.checkKeyBlocked(ctx, old.KeyHash); err != nil {
				return r, nil, err
			}
			return r, nil, fmt.Errorf("%w: certificate %s was revoked for keyCompromise: its key is never certified again (re-key)", ErrKeyBlocked, old.Serial)
		}
		first, err := rn.store.FirstCertified(ctx, old.KeyHash)
		if err != nil {
			return r, nil, fmt.Errorf("reading when the key was first certified: %w", err)
		}
		r.PublicKey, r.KeyGeneratedByService = cert.PublicKey, old.CredentialID != ""
		rnw.sameKey, rnw.firstCertified, rnw.keyLabel = true, first, old.KeyLabel
	}
	return r, rnw, nil
}

// SubjectFields reads a certificate's subject back into the request fields
// of the API (policies' field names), for a profile to validate anew: a
// renewal's subject, or the one an RA's CMP/EST request names. The civil
// number comes from serialNumber and the country from C: a request that
// reads a subject this way also passes its serialNumber
// (Request.SerialNumber), for the CA to refuse one whose serialNumber
// names another country than its C, and the attributes it repeats
// (Request.SubjectRepeats: SubjectFields keeps the last value of each).
func SubjectFields(c *x509.Certificate) map[string]string {
	fields := map[string]string{}
	for _, n := range c.Subject.Names {
		v, ok := n.Value.(string)
		if !ok {
			continue
		}
		switch n.Type.String() {
		case "2.5.4.6":
			fields[policies.FieldCountry] = v
		case "2.5.4.10":
			fields[policies.FieldOrganizationName] = v
		case policies.OIDAttrOrganizationIdentifier:
			fields[policies.FieldOrganizationIdentifier] = v
		case policies.OIDAttrGivenName:
			fields[policies.FieldGivenName] = v
		case policies.OIDAttrSurname:
			fields[policies.FieldSurname] = v
		case "2.5.4.5":
			if cn := auth.CivilNumber(v); cn != "" {
				fields[policies.FieldCivilNumber] = cn
			}
		case "2.5.4.3":
			fields[policies.FieldCommonName] = v
		}
	}
	if len(c.EmailAddresses) > 0 {
		fields[policies.FieldEmail] = c.EmailAddresses[0]
	}
	return fields
}

// complete does what follows a renewal, each step idempotent: switch the
// credential, revoke the replaced certificate (superseded; not when
// supersede is false: RenewRequest.KeepReplaced), destroy the replaced key
// when the credential moved to a new one, then record the renewal as
// complete.
func (rn *Renewer) complete(ctx context.Context, nw, old *CertificateRecord, actor string, supersede bool) error {
	ctx = context.WithoutCancel(ctx) // once issued, a client going away stops nothing
	if nw.CredentialID != "" && rn.creds != nil {
		label := nw.KeyLabel
		if label == "" {
			label = nw.CredentialID
		}
		if err := rn.creds.SwitchCredential(ctx, CredentialSwitch{CredentialID: nw.CredentialID, Replaced: old.Serial, Serial: nw.Serial,
			CA: nw.CA, Profile: nw.Profile, DER: nw.DER, KeyLabel: label}); err != nil {
			return fmt.Errorf("switching credential %s to %s: %w", nw.CredentialID, nw.Serial, err)
		}
	}
	if supersede && rn.supers != nil && !old.Revoked {
		if err := rn.supers.RevokeSuperseded(ctx, actor, old.Serial); err != nil {
			return fmt.Errorf("revoking %s (superseded): %w", old.Serial, err)
		}
	}
	if rn.keys != nil && old.KeyLabel != "" && nw.KeyLabel != "" && old.KeyLabel != nw.KeyLabel {
		reason := fmt.Sprintf("re-keyed: credential %s moved to key %s (certificate %s)", nw.CredentialID, nw.KeyLabel, nw.Serial)
		if err := rn.keys.DestroyKey(ctx, old.KeyLabel, reason); err != nil {
			return fmt.Errorf("destroying the replaced key %s: %w", old.KeyLabel, err)
		}
	}
	if err := rn.store.CompleteRenewal(ctx, nw.Serial, rn.a.now()); err != nil {
		return fmt.Errorf("recording renewal %s as complete: %w", nw.Serial, err)
	}
	rn.log.InfoContext(ctx, "renewal complete", "serial", nw.Serial, "replaces", old.Serial, "credentialID", nw.CredentialID)
	return nil
}

// completeBySerial completes the renewal by serial if it is pending. A
// renewal recorded as complete is left alone: one that keeps the replaced
// certificate (RenewRequest.KeepReplaced) is recorded so at issuance, and
// only its confirmation (Supersede) may revoke the replaced certificate.
func (rn *Renewer) completeBySerial(ctx context.Context, serial, actor string) {
	if pending, err := rn.store.RenewalPending(ctx, serial); err != nil || !pending {
		if err != nil {
			rn.log.WarnContext(ctx, "reading whether a renewal is pending", "serial", serial, "err", err)
		}
		return // complete, withdrawn, not issued yet, or no renewal
	}
	nw, err := rn.a.store.GetCertificate(ctx, serial)
	if err != nil || nw.Replaces == "" {
		return // not issued yet, or no renewal
	}
	old, err := rn.a.store.GetCertificate(ctx, nw.Replaces)
	if err == nil {
		err = rn.complete(ctx, nw, old, actor, true)
	}
	if err != nil {
		rn.log.WarnContext(ctx, "completing a renewal", "serial", serial, "err", err)
	}
}

// Supersede revokes the certificate that the renewal by serial replaced
// (superseded, as a renewal does at once unless RenewRequest.KeepReplaced),
// now that the holder confirmed the new certificate, and returns its
// serial ("" when serial renews nothing). Idempotent: a replaced
// certificate revoked already stays as it is.
func (rn *Renewer) Supersede(ctx context.Context, actor, serial string) (string, error) {
	nw, err := rn.a.store.GetCertificate(ctx, strings.ToLower(serial))
	if err != nil {
		return "", fmt.Errorf("reading renewal %s: %w", serial, err)
	}
	if nw.Replaces == "" {
		return "", nil
	}
	old, err := rn.a.store.GetCertificate(ctx, nw.Replaces)
	if err != nil {
		return "", fmt.Errorf("reading %s, which %s replaces: %w", nw.Replaces, nw.Serial, err)
	}
	if err := rn.complete(ctx, nw, old, actor, true); err != nil {
		return "", err
	}
	return old.Serial, nil
}

// Withdraw withdraws the renewal by serial, whose certificate its holder
// rejected or never confirmed and which was revoked for it: the replaced
// certificate stays as it was (valid, unless something else revoked it),
// no longer counts as renewed, and may be renewed again. It returns the
// replaced certificate's serial ("" when serial renews nothing).
// Idempotent; ErrNotWithdrawable for a certificate that is not revoked.
func (rn *Renewer) Withdraw(ctx context.Context, serial string) (string, error) {
	nw, err := rn.a.store.GetCertificate(ctx, strings.ToLower(serial))
	if err != nil {
		return "", fmt.Errorf("reading renewal %s: %w", serial, err)
	}
	if nw.Replaces == "" {
		return "", nil
	}
	if !nw.Revoked {
		return "", fmt.Errorf("%w: certificate %s is not revoked", ErrNotWithdrawable, nw.Serial)
	}
	if err := rn.store.WithdrawRenewal(ctx, nw.Serial, rn.a.now()); err != nil {
		return "", fmt.Errorf("withdrawing renewal %s: %w", nw.Serial, err)
	}
	rn.log.InfoContext(ctx, "renewal withdrawn", "serial", nw.Serial, "replaces", nw.Replaces)
	return nw.Replaces, nil
}

// CompletePending completes up to 100 renewals that a crash or a failure
// left incomplete, and returns how many it completed.
func (rn *Renewer) CompletePending(ctx context.Context) (int, error) {
	pending, err := rn.store.PendingRenewals(ctx, 100)
	if err != nil {
		return 0, err
	}
	done := 0
	for i := range pending {
		nw := &pending[i]
		old, err := rn.a.store.GetCertificate(ctx, nw.Replaces)
		if err == nil {
			err = rn.complete(ctx, nw, old, "renewal-sweep", true)
		}
		if err != nil {
			rn.log.WarnContext(ctx, "completing a renewal", "serial", nw.Serial, "replaces", nw.Replaces, "err", err)
			continue
		}
		done++
	}
	return done, nil
}

// Run completes pending renewals and refreshes the expiry gauge at once
// and then every interval, until ctx ends: `thiqa serve` runs it in the
// background.
func (rn *Renewer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := rn.CompletePending(ctx); err != nil && ctx.Err() == nil {
			rn.log.WarnContext(ctx, "listing pending renewals", "err", err)
		}
		if err := rn.RefreshExpiring(ctx); err != nil && ctx.Err() == nil {
			rn.log.WarnContext(ctx, "counting expiring certificates", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
