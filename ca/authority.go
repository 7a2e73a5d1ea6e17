package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// Sentinel errors a Store returns (wrapped or not) so the CA can decide.
var (
	// ErrDuplicateSerial: the serial is already reserved; the CA draws another.
	ErrDuplicateSerial = errors.New("serial already used")
	// ErrDuplicateRequest: the request ID, or the key for this profile, was already issued.
	ErrDuplicateRequest = errors.New("request already processed")
	// ErrNotFound: no certificate with that serial.
	ErrNotFound = errors.New("certificate not found")
	// ErrKeyBlocked: the subject key was reported compromised (a
	// certificate for it was revoked for keyCompromise); it is never
	// certified again, whatever the profile, the CA or the protocol the
	// request came by (REST today; CMP and EST go through Issue too).
	ErrKeyBlocked = errors.New("key reported compromised")
	// ErrKeyOtherSubject: the subject key is certified for another subject.
	// A key may be certified again for its own subject (renewal), never
	// for someone else's.
	ErrKeyOtherSubject = errors.New("key certified for another subject")
)

// KeyBlock is a subject key blocked after a keyCompromise revocation.
type KeyBlock struct {
	// Serial is the certificate whose keyCompromise revocation blocked it.
	Serial    string
	BlockedBy string
	BlockedAt time.Time
}

// Intent is what the CA is about to sign, recorded before signing (Boulder's
// "precertificate" step): the serial is reserved and the linted TBS pinned.
type Intent struct {
	Serial      string // lower-case hex
	CA          string
	Profile     string
	TBSHash     [32]byte // SHA-256 of the linted TBSCertificate
	KeyHash     [32]byte // SHA-256 of the subject's SubjectPublicKeyInfo
	RequestID   string   // client idempotency key, may be empty
	RequestedBy string
	NotAfter    time.Time
	Created     time.Time
	// Subject is the certificate's subject (x509 Name.String()): the store
	// refuses the intent with ErrKeyOtherSubject when another subject's
	// live certificate has the key.
	Subject string
	// Replaces is the serial of the certificate a renewal or re-key
	// replaces ("" for a new issuance); a certificate is replaced once.
	Replaces string
	// KeyLabel names the subject key on the token when it is not the
	// credential ID (the new key of a re-keyed credential).
	KeyLabel string
	// KeepsReplaced: a renewal that leaves the replaced certificate valid
	// until its holder confirms the new one (RenewRequest.KeepReplaced).
	// The store records it as complete from the intent on: the renewal
	// sweep (PendingRenewals) must never supersede the replaced
	// certificate of one, neither while it is issued nor when its
	// follow-up failed; Renewer.Supersede does, on the confirmation.
	KeepsReplaced bool
}

// CertificateRecord is an issued certificate as stored.
type CertificateRecord struct {
	Serial       string
	CA           string
	Profile      string
	DER          []byte
	KeyHash      [32]byte
	RequestID    string
	CredentialID string
	RequestedBy  string
	NotBefore    time.Time
	NotAfter     time.Time
	// CRLPartition is the CRL partition the certificate's distribution
	// point names (crl.Partition; 0: the CA's whole-CA CRL).
	CRLPartition int
	// Revoked, RevokedAt and RevocationReason are filled by the revocation service.
	Revoked          bool
	RevokedAt        time.Time
	RevocationReason int
	// KeyBlocked: the certificate's key was reported compromised (this or
	// another certificate with it was revoked for keyCompromise).
	KeyBlocked bool
	// Replaces is the serial of the certificate this one renewed or
	// re-keyed ("" for a new issuance).
	Replaces string
	// KeyLabel is the label of the subject key on the token: the
	// credential ID, or the new label of a re-keyed credential's key (""
	// when the key is not on the token).
	KeyLabel string
}

// Store is the persistence the CA needs. Implementations must enforce the
// uniqueness of serials (ErrDuplicateSerial) and of non-empty request IDs
// (ErrDuplicateRequest) atomically in InsertIntent.
type Store interface {
	// InsertIntent reserves the serial and records the linted TBS hash.
	InsertIntent(ctx context.Context, in Intent) error
	// InsertCertificate stores the signed certificate of a recorded intent
	// and, in the same transaction, the audit records seal writes (nil:
	// none): the certificate is issued (and answered "good" by OCSP) with
	// its certificate.issue record or not at all.
	InsertCertificate(ctx context.Context, rec CertificateRecord, seal audit.Sealer) error
	// GetCertificate returns the certificate with that serial or ErrNotFound.
	GetCertificate(ctx context.Context, serial string) (*CertificateRecord, error)
	// FindIssued returns the serial of an unexpired certificate of that
	// profile for that key (SPKI hash), or "" when there is none.
	FindIssued(ctx context.Context, profile string, keyHash [32]byte, now time.Time) (string, error)
	// KeyBlocked returns the block of a key (SPKI hash) reported
	// compromised, or nil when it is not blocked. InsertCertificate refuses
	// a blocked key too (an error wrapping ErrKeyBlocked): a block recorded
	// while the CA signs stops the issuance.
	KeyBlocked(ctx context.Context, keyHash [32]byte) (*KeyBlock, error)
}

// Auditor appends to the audit log (an *audit.Log): refusals and failures
// with Append, an issuance's record with Prepare, sealed by the store in
// the transaction that stores the certificate.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
	Prepare(entries ...audit.Entry) (audit.Sealer, error)
}

// appendAudit records e with details (never nil: an empty object when
// none) in log; a refusal or failure also names the authenticated caller
// (method, subject, roles) among the details, a success the caller that
// is its actor (addCaller).
func appendAudit(ctx context.Context, log Auditor, e audit.Entry, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	if c := auth.CallerOf(ctx); c != nil && e.Outcome != audit.OutcomeSuccess {
		details["caller"] = c
	} else if e.Outcome == audit.OutcomeSuccess {
		addCaller(ctx, details, e.Actor)
	}
	e.Details = details
	_, err := log.Append(ctx, e)
	return err
}

// Request asks for one certificate.
type Request struct {
	// Profile names the certificate profile.
	Profile string
	// CA picks the issuing CA when the profile allows several (ocsp-responder); empty = default.
	// It names the CA (citizen), whose current generation issues.
	CA string
	// Issuer, when set, names the exact generation that issues (its issuer
	// name: citizen, citizen_2, …) instead of the CA's current one: an older
	// generation still certifies its own OCSP responders. The profile must
	// allow that generation's CA.
	Issuer string
	// Subject holds the request's subject fields (JSON keys of the API).
	Subject map[string]string
	// SerialNumber is the serialNumber attribute of the subject the
	// request names itself, when Subject was read from it (SubjectFields
	// of an RA's CSR or CMP certTemplate, of a certificate renewed): the
	// subject validated must make the same one
	// (policies.Subject.CheckSerialNumber), or the request is refused
	// with a *policies.SubjectError. Empty: nothing to check.
	SerialNumber string
	// SubjectRepeats names the attributes that subject carries more than
	// once (SubjectRepeats): the request is refused with
	// *policies.SubjectErrors, as SubjectFields kept only one value.
	SubjectRepeats []string
	// SubjectUnsupported names what an RA's request asks for that the
	// certificate would not carry (SubjectUnsupported: an OU, a non-string
	// serialNumber, a dNSName, a keyUsage extension …): the request is
	// refused with *policies.SubjectErrors rather than certified without it.
	SubjectUnsupported []*policies.SubjectError
	// Extensions are the extensions an RA's request asks for: a keyUsage,
	// extKeyUsage, basicConstraints or subjectKeyIdentifier other than the
	// certificate's is refused (the others are SubjectUnsupported's).
	Extensions []pkix.Extension
	// CSR is a PKCS#10 request, PEM or DER; its signature proves possession.
	CSR []byte
	// PublicKey is the subject key when there is no CSR.
	PublicKey crypto.PublicKey
	// KeyGeneratedByService says PublicKey belongs to a key the service
	// generated on its own token; only then may CSR be absent, and only
	// then does the certificate claim a secure device (QcSSCD, QCP-n-qscd,
	// QCP-l-qscd, NCP+) when its profile does.
	KeyGeneratedByService bool
	// PossessionProvedBy names how the caller proved, before asking, that
	// the requester holds PublicKey's private key when there is no CSR: a
	// CRMF signature proof of possession checked by the CMP server
	// ("crmf-signature"). Such a key is the requester's, not the
	// service's: its certificate claims no secure device.
	PossessionProvedBy string
	// CredentialID names that key (remote signing credential); stored as is.
	CredentialID string
	// FirstPINActivation says that the holder sets the first PIN of that
	// credential with an activation code the officer hands over
	// (signing.pinPolicy.firstPINActivation): the success record says so
	// ("firstPIN": "activationCode"), never the code.
	FirstPINActivation bool
	// RequestID is an optional client idempotency key.
	RequestID string
	// RequestedBy is the authenticated caller.
	RequestedBy string
}

// Issued is a freshly issued certificate.
type Issued struct {
	Serial       string
	CA           string
	Profile      string
	Certificate  *x509.Certificate
	Chain        []*x509.Certificate // issuing CA, then root
	CredentialID string
}

// AuthorityConfig wires an Authority.
type AuthorityConfig struct {
	Root     *x509.Certificate
	Issuers  []*Issuer
	Profiles *policies.ProfileSet
	Store    Store
	Auditor  Auditor
	Logger   *slog.Logger
	// Metrics registers the CA's metrics; nil means none.
	Metrics prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Backdate moves notBefore into the past to absorb relying parties' clock skew (default 1 minute).
	Backdate time.Duration
	// Revoked is shared by the authorities of one process (ApplyRootCRL on
	// any of them reaches all); nil means the Authority's own.
	Revoked *RevokedIssuers
}

// Authority is the issuance service over a set of issuing CAs.
type Authority struct {
	root *x509.Certificate
	// issuers holds the current generation of each CA by CA name, byName
	// every generation by issuer name (see IssuerOptions.Generation).
	issuers  map[string]*Issuer
	byName   map[string]*Issuer
	profiles *policies.ProfileSet
	store    Store
	audit    Auditor
	log      *slog.Logger
	now      func() time.Time
	backdate time.Duration
	linter   *Linter
	primes   *big.Int
	phase    *prometheus.HistogramVec
	results  *prometheus.CounterVec
	// revoked holds the generations the root CRL lists (ApplyRootCRL).
	revoked *RevokedIssuers
}

// NewAuthority checks the configuration and builds the linter.
func NewAuthority(cfg AuthorityConfig) (*Authority, error) {
	if cfg.Root == nil || len(cfg.Issuers) == 0 || cfg.Profiles == nil || cfg.Store == nil || cfg.Auditor == nil {
		return nil, errors.New("authority: root, issuers, profiles, store and auditor are required")
	}
	a := &Authority{
		root: cfg.Root, issuers: map[string]*Issuer{}, byName: map[string]*Issuer{}, profiles: cfg.Profiles, store: cfg.Store, audit: cfg.Auditor,
		log: cfg.Logger, now: cfg.Now, backdate: cfg.Backdate, primes: smallPrimesProduct(), revoked: cfg.Revoked,
	}
	if a.revoked == nil {
		a.revoked = new(RevokedIssuers)
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.backdate == 0 {
		a.backdate = time.Minute
	}
	for _, is := range cfg.Issuers {
		if _, dup := a.byName[is.name]; dup {
			return nil, fmt.Errorf("authority: issuer %q configured twice", is.name)
		}
		if err := is.cert.CheckSignatureFrom(cfg.Root); err != nil {
			return nil, fmt.Errorf("authority: issuer %s is not signed by the root: %w", is.name, err)
		}
		a.byName[is.name] = is
		switch cur, ok := a.issuers[is.ca]; {
		case ok && cur.generation == is.generation:
			return nil, fmt.Errorf("authority: CA %s has two issuers of generation %d (%s, %s)", is.ca, is.generation, cur.name, is.name)
		case !ok || cur.generation < is.generation:
			a.issuers[is.ca] = is
		}
	}
	var err error
	if a.linter, err = NewLinter(); err != nil {
		return nil, err
	}
	a.phase = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "thiqa_ca_issue_phase_seconds", Help: "Time spent per issuance phase (validate, lint, store, sign, verify, audit).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
	}, []string{"phase"})
	a.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "thiqa_ca_issue_total", Help: "Issuance requests by profile and result.",
	}, []string{"profile", "result"})
	if cfg.Metrics != nil {
		for _, c := range append([]prometheus.Collector{a.phase, a.results, a.revokedCollector()}, a.expiryCollectors()...) {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("authority: registering metrics: %w", err)
			}
		}
	}
	return a, nil
}

// CACertificate returns the root ("root") or an issuing CA's certificate
// by issuer name: citizen is the first generation of the citizen CA,
// citizen_2 the second (the name in its certificates' caIssuers URL).
func (a *Authority) CACertificate(name string) (*x509.Certificate, bool) {
	if name == "root" {
		return a.root, true
	}
	is, ok := a.byName[name]
	if !ok {
		return nil, false
	}
	return is.cert, true
}

// CurrentCACertificate returns the certificate of the newest generation of
// the issuing CA named ca (its first generation's name, e.g. citizen).
func (a *Authority) CurrentCACertificate(ca string) (*x509.Certificate, bool) {
	is, ok := a.issuers[ca]
	if !ok {
		return nil, false
	}
	return is.cert, true
}

// CurrentCACertificates returns the current certificates
// (CurrentCACertificate) of the issuing CAs named cas, in that order,
// leaving out the names it does not know.
func (a *Authority) CurrentCACertificates(cas []string) []*x509.Certificate {
	var out []*x509.Certificate
	for _, name := range cas {
		if cert, ok := a.CurrentCACertificate(name); ok {
			out = append(out, cert)
		}
	}
	return out
}

// Issue validates, lints, records, signs and stores one certificate. Refusals
// are typed: errors wrapping policies.ErrUnknownProfile, *policies.SubjectError,
// ErrBadCSR, *WeakKeyError, *LintError, ErrDuplicateRequest, *RequestError,
// ErrKeyBlocked; and the service's own *IssuerExpiringError (ErrIssuerExpiring:
// the CA expires before the certificate would; not the caller's fault) and
// *IssuerRevokedError (ErrIssuerRevoked: the root CRL revokes the CA).
// Every outcome is audited; a refusal consumes no serial.
func (a *Authority) Issue(ctx context.Context, req Request) (*Issued, error) {
	return a.issueAudited(ctx, req, nil)
}

// issueAudited is Issue, for a renewal when rn is set.
func (a *Authority) issueAudited(ctx context.Context, req Request, rn *renewal) (*Issued, error) {
	out, err := a.issue(ctx, req, rn)
	if err == nil {
		// Its record was committed with the certificate (issue).
		a.results.WithLabelValues(a.profileLabel(req.Profile), "success").Inc()
		a.log.InfoContext(ctx, "certificate issued", "serial", out.Serial, "profile", req.Profile, "by", req.RequestedBy)
		return out, nil
	}
	result := "refused"
	entry := audit.Entry{Actor: req.RequestedBy, Action: string(policies.ActionIssueCertificate), Outcome: audit.OutcomeRefused}
	details := issueDetails(req, rn)
	if !IsRefusal(err) {
		result, entry.Outcome = "error", audit.OutcomeFailure
	}
	entry.Object = "profile:" + req.Profile
	details["error"] = err.Error()
	t := time.Now()
	aerr := appendAudit(ctx, a.audit, entry, details)
	a.phase.WithLabelValues("audit").Observe(time.Since(t).Seconds())
	a.results.WithLabelValues(a.profileLabel(req.Profile), result).Inc()
	if aerr != nil {
		a.log.ErrorContext(ctx, "audit append failed", "err", aerr, "profile", req.Profile, "outcome", result)
		return nil, fmt.Errorf("writing the audit record: %w", aerr)
	}
	if errors.Is(err, ErrIssuerExpiring) {
		a.log.ErrorContext(ctx, "issuing CA too close to the end of its validity for this profile: roll it over (thiqa ca rollover)",
			"profile", req.Profile, "by", req.RequestedBy, "err", err)
		return nil, err
	}
	a.log.InfoContext(ctx, "certificate refused", "profile", req.Profile, "by", req.RequestedBy, "outcome", result, "err", err)
	return nil, err
}

// profileLabel is the metrics label of a profile: its name, or "unknown"
// (a label set bounded by the configured profiles).
func (a *Authority) profileLabel(profile string) string {
	if _, err := a.profiles.Get(profile); err != nil {
		return "unknown"
	}
	return profile
}

// issueDetails are the audit details every certificate.issue record of req
// carries.
func issueDetails(req Request, rn *renewal) map[string]any {
	details := map[string]any{"profile": req.Profile}
	if req.RequestID != "" {
		details["requestID"] = req.RequestID
	}
	if rn != nil {
		details["replaces"] = rn.replaces
	}
	return details
}

// addCaller names in a success record's details the authenticated caller
// when it is the record's actor (auth.ActingCaller): who did it, by role,
// as a refusal names it (a citizen's activity page tells an officer's
// issuance or revocation from someone else's). A service acting under its
// own name gets none.
func addCaller(ctx context.Context, details map[string]any, actor string) {
	if c := auth.ActingCaller(ctx, actor); c != nil {
		details["caller"] = c
	}
}

// issuedRecord prepares the certificate.issue success record of cert,
// issued by CA caName for req, for the store to seal with the certificate;
// for a renewal by Renew also its certificate.renew summary.
func (a *Authority) issuedRecord(ctx context.Context, req Request, rn *renewal, serial, caName string, cert *x509.Certificate) (audit.Sealer, error) {
	details := issueDetails(req, rn)
	details["ca"] = caName
	details["subject"] = cert.Subject.String()
	if req.FirstPINActivation && req.CredentialID != "" {
		details["firstPIN"] = "activationCode"
	}
	addCaller(ctx, details, req.RequestedBy)
	entries := []audit.Entry{{Actor: req.RequestedBy, Action: string(policies.ActionIssueCertificate), Object: serial,
		Outcome: audit.OutcomeSuccess, Details: details}}
	if rn != nil && rn.mode != "" {
		entries = append(entries, renewedEntry(ctx, req.RequestedBy, rn, serial))
	}
	seal, err := a.audit.Prepare(entries...)
	if err != nil {
		return nil, fmt.Errorf("preparing the audit record of certificate %s: %w", serial, err)
	}
	return seal, nil
}

// IssueOnce is Issue for a key the service generated (req.PublicKey, no
// CSR) whose certification may have been interrupted after issuance (an
// init stopped before it wrote the certificate file): when an unexpired,
// unrevoked certificate of req.Profile was already issued for that key, it
// returns that one, without issuing or auditing anything, where Issue would
// refuse the request as a duplicate.
func (a *Authority) IssueOnce(ctx context.Context, req Request) (*Issued, error) {
	if req.PublicKey == nil || len(req.CSR) > 0 {
		return a.Issue(ctx, req)
	}
	spki, err := x509.MarshalPKIXPublicKey(req.PublicKey)
	if err != nil {
		return nil, &WeakKeyError{Reason: err.Error()}
	}
	serial, err := a.store.FindIssued(ctx, req.Profile, sha256.Sum256(spki), a.now())
	if err != nil {
		return nil, fmt.Errorf("looking for an earlier certificate: %w", err)
	}
	if serial == "" {
		return a.Issue(ctx, req)
	}
	rec, err := a.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, fmt.Errorf("reading certificate %s: %w", serial, err)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("parsing stored certificate %s: %w", serial, err)
	}
	is, ok := a.byName[rec.CA]
	if !ok {
		return nil, fmt.Errorf("certificate %s: issuing CA %q is not configured", serial, rec.CA)
	}
	return &Issued{Serial: serial, CA: rec.CA, Profile: rec.Profile, Certificate: cert, Chain: []*x509.Certificate{is.cert, a.root}, CredentialID: rec.CredentialID}, nil
}

// RequestError is a malformed request (no key, CA not allowed, ...).
type RequestError struct{ Reason string }

// Error implements the error interface.
func (e *RequestError) Error() string { return "bad request: " + e.Reason }

// IsRefusal reports whether err is the client's fault (a 4xx), not the service's.
func IsRefusal(err error) bool {
	var se *policies.SubjectError
	var we *WeakKeyError
	var le *LintError
	var re *RequestError
	return errors.Is(err, policies.ErrUnknownProfile) || errors.As(err, &se) || errors.Is(err, ErrBadCSR) ||
		errors.As(err, &we) || errors.As(err, &le) || errors.Is(err, ErrDuplicateRequest) || errors.As(err, &re) ||
		errors.Is(err, ErrKeyBlocked) || errors.Is(err, ErrKeyOtherSubject) || errors.Is(err, ErrRenewalRefused)
}

func (a *Authority) issue(ctx context.Context, req Request, rn *renewal) (*Issued, error) {
	t0 := time.Now()
	p, err := a.profiles.Get(req.Profile)
	if err != nil {
		return nil, err
	}
	is, err := a.pickIssuer(p, req)
	if err != nil {
		return nil, err
	}
	// Refused before anything else: the root revoked the CA, or no request
	// of this profile can succeed until the CA is rolled over.
	if err := a.checkRevoked(is, p, req, rn); err != nil {
		return nil, err
	}
	now := a.now()
	if err := is.expiring(p, now.Add(-a.backdate), a.backdate); err != nil {
		return nil, err
	}
	if err := checkSubjectUnsupported(req.SubjectUnsupported); err != nil {
		return nil, err
	}
	if err := checkSubjectRepeats(req.SubjectRepeats); err != nil {
		return nil, err
	}
	if err := checkNamedSerialNumber(p, req.SerialNumber); err != nil {
		return nil, err
	}
	sub, err := p.ValidateSubject(req.Subject)
	if err != nil {
		return nil, err
	}
	if err := sub.CheckSerialNumber(req.SerialNumber); err != nil {
		return nil, err
	}
	pub, err := a.subjectKey(req, rn)
	if err != nil {
		return nil, err
	}
	if err := checkRequestedExtensions(p, pub, req.Extensions); err != nil {
		return nil, err
	}
	if !keyOnToken(req) {
		// Only a key the service generated on its own token is known to
		// live in a secure device: a CSR's key gets no QcSSCD and no
		// device policy (QCP-n instead of QCP-n-qscd, …).
		p = p.WithoutKeyDevice()
	}
	kt, err := keyType(pub)
	if err != nil {
		return nil, err
	}
	if !p.AllowsKey(kt) {
		return nil, &WeakKeyError{Reason: fmt.Sprintf("key type %s not accepted by profile %s", kt, p.Name)}
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, &WeakKeyError{Reason: err.Error()}
	}
	keyHash := sha256.Sum256(spki)
	if err := a.checkKeyBlocked(ctx, keyHash); err != nil {
		return nil, err
	}
	if rn != nil {
		if err := rn.checkIssue(p, now, keyHash); err != nil {
			return nil, err
		}
	} else if prior, err := a.store.FindIssued(ctx, p.Name, keyHash, now); err != nil {
		return nil, fmt.Errorf("looking for an earlier certificate: %w", err)
	} else if prior != "" {
		return nil, fmt.Errorf("%w: key already certified for profile %s (serial %s): renew that certificate (POST /api/v1/certificates/%s/renew)",
			ErrDuplicateRequest, p.Name, prior, prior)
	}
	a.phase.WithLabelValues("validate").Observe(time.Since(t0).Seconds())

	qcExt, _, err := qcStatementsExtension(p.QC)
	if err != nil {
		return nil, err
	}
	subjectDER, err := marshalName(sub)
	if err != nil {
		return nil, err
	}
	want := expectation{profile: p, subject: subjectDER, email: sub.Email, qcExt: qcExt.Value, issuer: is.cert}
	for attempt := 0; ; attempt++ {
		serial, err := newSerial(rand.Reader)
		if err != nil {
			return nil, err
		}
		tmpl, err := is.leafTemplate(p, sub, pub, serial, now.Add(-a.backdate))
		if err != nil {
			return nil, err
		}
		t1 := time.Now()
		lintDER, err := is.signLintCopy(tmpl, pub)
		if err != nil {
			return nil, err
		}
		linted, err := a.linter.lint(lintDER, want)
		a.phase.WithLabelValues("lint").Observe(time.Since(t1).Seconds())
		if err != nil {
			return nil, err
		}
		hexSerial := hex.EncodeToString(serial.Bytes())
		t2 := time.Now()
		err = a.store.InsertIntent(ctx, Intent{
			Serial: hexSerial, CA: is.name, Profile: p.Name, TBSHash: sha256.Sum256(linted.RawTBSCertificate),
			KeyHash: keyHash, RequestID: req.RequestID, RequestedBy: req.RequestedBy, NotAfter: linted.NotAfter, Created: now,
			Subject: linted.Subject.String(), Replaces: rn.replacedSerial(), KeyLabel: rn.label(),
			KeepsReplaced: rn.keepsReplaced(),
		})
		a.phase.WithLabelValues("store").Observe(time.Since(t2).Seconds())
		if errors.Is(err, ErrDuplicateSerial) && attempt < 3 {
			continue
		}
		if err != nil {
			if errors.Is(err, ErrKeyOtherSubject) {
				return nil, fmt.Errorf("%w: this public key is certified for another subject; it is never certified for two", ErrKeyOtherSubject)
			}
			if errors.Is(err, ErrDuplicateRequest) && rn != nil {
				return nil, fmt.Errorf("%w: certificate %s is being renewed by another request, or was renewed", ErrDuplicateRequest, rn.replaces)
			}
			if errors.Is(err, ErrDuplicateRequest) && req.RequestID != "" {
				return nil, fmt.Errorf("%w: request ID %q was already used", ErrDuplicateRequest, req.RequestID)
			}
			if errors.Is(err, ErrDuplicateRequest) {
				return nil, fmt.Errorf("%w: key already certified for profile %s", ErrDuplicateRequest, p.Name)
			}
			return nil, fmt.Errorf("recording the issuance intent: %w", err)
		}
		t3 := time.Now()
		cert, digest, sch, err := is.sign(linted)
		t4 := time.Now()
		a.phase.WithLabelValues("sign").Observe(t4.Sub(t3).Seconds())
		if err != nil {
			return nil, err
		}
		err = is.verify(cert.Signature, digest, sch)
		a.phase.WithLabelValues("verify").Observe(time.Since(t4).Seconds())
		if err != nil {
			a.log.ErrorContext(ctx, "CA signature failed verification; certificate not published", "ca", is.name, "serial", hexSerial)
			return nil, err
		}
		seal, err := a.issuedRecord(ctx, req, rn, hexSerial, is.name, cert)
		if err != nil {
			return nil, err
		}
		t5 := time.Now()
		err = a.store.InsertCertificate(ctx, CertificateRecord{
			Serial: hexSerial, CA: is.name, Profile: p.Name, DER: cert.Raw, KeyHash: keyHash, RequestID: req.RequestID,
			CredentialID: req.CredentialID, RequestedBy: req.RequestedBy, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
			CRLPartition: is.CRLPartition(cert.SerialNumber),
		}, seal)
		a.phase.WithLabelValues("store").Observe(time.Since(t5).Seconds())
		if errors.Is(err, ErrKeyBlocked) {
			// Blocked while this certificate was being signed: never published.
			a.log.WarnContext(ctx, "key blocked during issuance; certificate not published", "ca", is.name, "serial", hexSerial)
			return nil, a.checkKeyBlocked(ctx, keyHash)
		}
		if err != nil {
			return nil, fmt.Errorf("storing certificate %s: %w", hexSerial, err)
		}
		return &Issued{Serial: hexSerial, CA: is.name, Profile: p.Name, Certificate: cert, Chain: []*x509.Certificate{is.cert, a.root}, CredentialID: req.CredentialID}, nil
	}
}

// checkKeyBlocked refuses a key reported compromised (an error wrapping
// ErrKeyBlocked that names the certificate whose revocation blocked it).
func (a *Authority) checkKeyBlocked(ctx context.Context, keyHash [32]byte) error {
	b, err := a.store.KeyBlocked(ctx, keyHash)
	if err != nil {
		return fmt.Errorf("looking up blocked keys: %w", err)
	}
	if b == nil {
		return nil
	}
	return fmt.Errorf("%w: certificate %s with this public key was revoked for keyCompromise on %s; the key can never be certified again (generate a new key)",
		ErrKeyBlocked, b.Serial, b.BlockedAt.UTC().Format(time.RFC3339))
}

// keyOnToken reports whether the request's key was generated by the
// service on its own token (keyInHSM, service keys): the only keys whose
// certificates may claim a secure device.
func keyOnToken(req Request) bool {
	return req.KeyGeneratedByService && len(req.CSR) == 0 && req.PossessionProvedBy == ""
}

// pickIssuer returns the generation that issues req: the one req.Issuer
// names, else the current generation of req.CA (the profile's first CA
// when empty).
func (a *Authority) pickIssuer(p *policies.Profile, req Request) (*Issuer, error) {
	caName := req.CA
	if caName == "" {
		caName = p.Issuers[0]
	}
	if req.Issuer != "" {
		is, ok := a.byName[req.Issuer]
		if !ok || (req.CA != "" && req.CA != is.ca) {
			return nil, &RequestError{Reason: fmt.Sprintf("no issuing CA generation %q", req.Issuer)}
		}
		caName = is.ca
	}
	if !p.AllowsIssuer(caName) {
		return nil, &RequestError{Reason: fmt.Sprintf("CA %q may not issue profile %s", caName, p.Name)}
	}
	if req.Issuer != "" {
		return a.byName[req.Issuer], nil
	}
	is, ok := a.issuers[caName]
	if !ok {
		return nil, fmt.Errorf("issuing CA %q is not configured", caName)
	}
	return is, nil
}

// subjectKey takes the key from the CSR (checking its signature) or, for
// keys generated by the service and for a renewal with the same key (its
// possession was proven at its first certification), from the request;
// then refuses weak keys.
func (a *Authority) subjectKey(req Request, rn *renewal) (crypto.PublicKey, error) {
	var pub crypto.PublicKey
	switch {
	case len(req.CSR) > 0:
		csr, err := parseCSR(req.CSR)
		if err != nil {
			return nil, err
		}
		pub = csr.PublicKey
		if req.PublicKey != nil && !publicKeysEqual(req.PublicKey, pub) {
			return nil, &RequestError{Reason: "publicKey does not match the CSR's key"}
		}
	case (req.KeyGeneratedByService || rn.keepsKey()) && req.PublicKey != nil:
		pub = req.PublicKey
	case req.PossessionProvedBy != "" && req.PublicKey != nil:
		pub = req.PublicKey
	default:
		return nil, &RequestError{Reason: "a CSR is required unless the key was generated by the service"}
	}
	if err := checkKey(pub, a.primes); err != nil {
		return nil, err
	}
	return pub, nil
}

// Certificate returns a stored certificate by serial (hex).
func (a *Authority) Certificate(ctx context.Context, serial string) (*CertificateRecord, error) {
	return a.store.GetCertificate(ctx, serial)
}

// CheckRequest validates the profile, the issuing CA choice, that the CA
// can still issue the profile (an *IssuerExpiringError) and the subject
// without issuing: callers use it before creating a key on the token.
func (a *Authority) CheckRequest(req Request) error {
	p, err := a.profiles.Get(req.Profile)
	if err != nil {
		return err
	}
	if req.CA != "" && !p.AllowsIssuer(req.CA) {
		return &RequestError{Reason: fmt.Sprintf("CA %q may not issue profile %s", req.CA, p.Name)}
	}
	if is, err := a.pickIssuer(p, req); err == nil {
		if err := a.checkRevoked(is, p, req, nil); err != nil {
			return err
		}
		if err := is.expiring(p, a.now().Add(-a.backdate), a.backdate); err != nil {
			return err
		}
	}
	if err := checkSubjectUnsupported(req.SubjectUnsupported); err != nil {
		return err
	}
	if err := checkSubjectRepeats(req.SubjectRepeats); err != nil {
		return err
	}
	if err := checkNamedSerialNumber(p, req.SerialNumber); err != nil {
		return err
	}
	sub, err := p.ValidateSubject(req.Subject)
	if err != nil {
		return err
	}
	return sub.CheckSerialNumber(req.SerialNumber)
}
