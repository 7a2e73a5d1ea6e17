package enrol

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// Refusals, for errors.Is. Each leaves the enrolment as it was.
var (
	// ErrNotFound: no enrolment with that reference.
	ErrNotFound = errors.New("no such enrolment")
	// ErrUsed: the enrolment's certificate was issued already (single use).
	ErrUsed = errors.New("enrolment already used")
	// ErrExpired: the enrolment's time is over.
	ErrExpired = errors.New("enrolment expired")
	// ErrBusy: another request is being issued under the enrolment now.
	ErrBusy = errors.New("enrolment in use by another request")
	// ErrVoid: an officer voided the enrolment (its secret leaked, it was
	// given to the wrong person); it can never be used.
	ErrVoid = errors.New("enrolment void")
	// ErrBadSecret: the secret (or the MAC made with it) is wrong.
	ErrBadSecret = errors.New("wrong enrolment secret")
	// ErrDuplicate: a reference drawn twice (the caller draws another).
	ErrDuplicate = errors.New("enrolment reference already exists")
	// ErrCertificateRefused: the certificate that authenticates a request
	// is not one this CA issued, or is expired, revoked or blocked.
	ErrCertificateRefused = errors.New("certificate refused")
	// ErrRevoked comes with ErrCertificateRefused for a revoked
	// certificate or one whose key is blocked.
	ErrRevoked = errors.New("certificate revoked")
)

// Enrolment is one enrolment record.
type Enrolment struct {
	Reference  string
	Profile    string
	Subject    map[string]string
	SecretHash [32]byte
	CreatedBy  string
	Created    time.Time
	Expires    time.Time
	// State is StateOpen, StateClaimed, StateUsed or StateVoid.
	State string
	// Claim names the request holding a claimed enrolment.
	Claim     string
	ClaimedAt time.Time
	// Serial is the certificate issued under a used enrolment.
	Serial string
	Used   time.Time
	// Voided is when a void enrolment was voided.
	Voided time.Time
}

// The states of an enrolment.
const (
	StateOpen    = "open"
	StateClaimed = "claimed"
	StateUsed    = "used"
	// StateVoid: voided by an officer (Service.Void), never usable.
	StateVoid = "void"
)

// ClaimTimeout is how long a claim holds an enrolment: a claim older than
// that (a server stopped while issuing) may be taken over.
const ClaimTimeout = 2 * time.Minute

// Store keeps the enrolments (package store implements it).
type Store interface {
	// InsertEnrolment records a new enrolment and, in the same
	// transaction, the audit records seal writes (nil: none): the
	// enrolment exists with its enrolment.create record or not at all.
	// ErrDuplicate when the reference exists.
	InsertEnrolment(ctx context.Context, e Enrolment, seal audit.Sealer) error
	// GetEnrolment returns the enrolment or an error wrapping ErrNotFound.
	GetEnrolment(ctx context.Context, reference string) (*Enrolment, error)
	// ClaimEnrolment atomically moves an open, unexpired enrolment (or one
	// claimed before stale) to claimed by claim. It returns an error
	// wrapping ErrNotFound, ErrUsed, ErrVoid, ErrExpired or ErrBusy otherwise.
	ClaimEnrolment(ctx context.Context, reference, claim string, now, stale time.Time) error
	// ReleaseEnrolment moves an enrolment claimed by claim back to open.
	ReleaseEnrolment(ctx context.Context, reference, claim string) error
	// CompleteEnrolment moves an enrolment claimed by claim to used, with
	// the serial of its certificate, and commits the audit records seal
	// writes (nil: none) in the same transaction: the enrolment is used
	// with its enrolment.use record or stays claimed without it.
	CompleteEnrolment(ctx context.Context, reference, claim, serial string, now time.Time, seal audit.Sealer) error
	// VoidEnrolment moves an open enrolment (or one claimed before stale)
	// to void at now, its validity ended, and commits the audit records
	// seal writes (nil: none) in the same transaction. It returns an
	// error wrapping ErrNotFound, ErrUsed (also when a certificate issued
	// under RequestID(reference) stands, not revoked, its use unrecorded),
	// ErrBusy, or ErrVoid when it was void already (then nothing is
	// written).
	VoidEnrolment(ctx context.Context, reference string, now, stale time.Time, seal audit.Sealer) error
}

// Issuer is the CA's issuance (*ca.Authority).
type Issuer interface {
	Issue(ctx context.Context, req ca.Request) (*ca.Issued, error)
	CheckRequest(req ca.Request) error
	// CACertificate returns the root ("root") or an issuing CA's
	// certificate by issuer name.
	CACertificate(name string) (*x509.Certificate, bool)
}

// Certificates reads the certificates the CA issued (package store).
type Certificates interface {
	GetCertificate(ctx context.Context, serial string) (*ca.CertificateRecord, error)
	// FindIssued returns the serial of an unexpired certificate of that
	// profile for that key (SPKI SHA-256), or "" when there is none.
	FindIssued(ctx context.Context, profile string, keyHash [32]byte, now time.Time) (string, error)
}

// StatusChecker refuses a revoked or blocked certificate
// (*revocation.Checker): an error wrapping revocation.ErrRefused.
type StatusChecker interface {
	Check(ctx context.Context, cert *x509.Certificate) error
}

// Auditor appends to the audit log (*audit.Log): refusals and failures
// with Append; the records of an enrolment made or used with Prepare,
// sealed by the store in the transaction that commits the change.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
	Prepare(entries ...audit.Entry) (audit.Sealer, error)
}

// Config wires a Service.
type Config struct {
	Store        Store
	Issuer       Issuer
	Certificates Certificates
	Status       StatusChecker
	// Renewer re-enrols holders (CARenewer over the CA's renewal); nil
	// refuses re-enrolment.
	Renewer Renewer
	Audit   Auditor
	// SecretKey derives the secrets: a key on the token whose signatures
	// are deterministic (RSA PKCS #1 v1.5).
	SecretKey crypto.Signer
	// Profiles lists the profiles an enrolment may name (nil: any the CA
	// knows).
	Profiles []string
	// DefaultTTL is how long an enrolment is valid when the request names
	// no time (default 7 days); MaxTTL bounds it (default 30 days).
	DefaultTTL, MaxTTL time.Duration
	Logger             *slog.Logger
	Now                func() time.Time
}

// HolderProfiles are the profiles open to enrolment by CMP and EST (a
// Config's Profiles for a deployment's enrolments): the certificates of
// citizens and agencies whose keys they hold.
func HolderProfiles() []string {
	return []string{policies.ProfileCitizenAuth, policies.ProfileCitizenSigning, policies.ProfileOrganisationSeal}
}

// Service creates enrolments and turns authenticated protocol requests
// into certificates.
type Service struct {
	c       Config
	hmacKey []byte
	log     *slog.Logger
	now     func() time.Time
}

// secretKeyInput is what the secret key signs to give the HMAC key.
const secretKeyInput = "thiqa enrolment secret key v1"

// New checks cfg and derives the secrets' HMAC key with cfg.SecretKey.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Issuer == nil || cfg.Certificates == nil || cfg.Status == nil || cfg.Audit == nil || cfg.SecretKey == nil {
		return nil, errors.New("enrol: store, issuer, certificates, status, audit and secret key are required")
	}
	digest := sha256.Sum256([]byte(secretKeyInput))
	s1, err := cfg.SecretKey.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("enrol: deriving the secret key: %w", err)
	}
	s2, err := cfg.SecretKey.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("enrol: deriving the secret key: %w", err)
	}
	if !hmac.Equal(s1, s2) {
		return nil, errors.New("enrol: the secret key's signatures are not deterministic (use an RSA key)")
	}
	k := sha256.Sum256(s1)
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = 7 * 24 * time.Hour
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 30 * 24 * time.Hour
	}
	s := &Service{c: cfg, hmacKey: k[:], log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newReference draws a reference: 80 random bits, base32 upper case.
func newReference() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return b32.EncodeToString(b[:]), nil
}

// Secret returns the secret of the enrolment with that reference: 130
// bits of an HMAC of the reference under the token-derived key, base32.
func (s *Service) Secret(reference string) string {
	m := hmac.New(sha256.New, s.hmacKey)
	m.Write([]byte("enrolment secret\x00" + reference))
	return b32.EncodeToString(m.Sum(nil))[:26]
}

// Created is a new enrolment as its creator sees it once.
type Created struct {
	Reference string            `json:"reference"`
	Secret    string            `json:"secret"`
	Profile   string            `json:"profile"`
	Subject   map[string]string `json:"subject"`
	Expires   time.Time         `json:"expires"`
}

// Create records an enrolment for one certificate of profile for subject,
// valid for ttl (0: the default), after the CA checked both. Refusals are
// the CA's typed errors (unknown profile, bad subject) or *RequestError;
// every outcome is audited: the enrolment is recorded together with its
// success record (a failed append leaves no enrolment), a refusal or a
// failure with its own.
func (s *Service) Create(ctx context.Context, actor, profile string, subject map[string]string, ttl time.Duration) (*Created, error) {
	out, err := s.create(ctx, actor, profile, subject, ttl)
	if err == nil {
		return out, nil // its record was committed with it
	}
	details := map[string]any{"profile": profile, "error": err.Error()}
	e := audit.Entry{Actor: actor, Action: ActionCreate, Object: "profile:" + profile, Outcome: audit.OutcomeRefused, Details: details}
	if !isRefusal(err) {
		e.Outcome = audit.OutcomeFailure
	}
	if _, aerr := s.c.Audit.Append(ctx, e); aerr != nil {
		return nil, fmt.Errorf("writing the audit record: %w", aerr)
	}
	return nil, err
}

// ActionCreate, ActionRefused and ActionConsume are the audit actions of
// this package.
const (
	ActionCreate = "enrolment.create"
	// ActionRefused records a protocol request refused before or instead of
	// the CA (bad secret, used reference, foreign certificate, ...).
	ActionRefused = "enrolment.refused"
	// ActionConsume records the use of an enrolment (its certificate issued).
	ActionConsume = "enrolment.use"
)

// RequestError is a malformed request to this package.
type RequestError struct{ Reason string }

// Error implements error.
func (e *RequestError) Error() string { return e.Reason }

func isRefusal(err error) bool {
	var re *RequestError
	return errors.As(err, &re) || ca.IsRefusal(err)
}

func (s *Service) create(ctx context.Context, actor, profile string, subject map[string]string, ttl time.Duration) (*Created, error) {
	switch {
	case ttl < 0 || ttl > s.c.MaxTTL:
		return nil, &RequestError{Reason: fmt.Sprintf("validity must be between 1 minute and %s", s.c.MaxTTL)}
	case ttl == 0:
		ttl = s.c.DefaultTTL
	case ttl < time.Minute:
		return nil, &RequestError{Reason: "validity must be at least 1 minute"}
	}
	if len(s.c.Profiles) > 0 && !contains(s.c.Profiles, profile) {
		return nil, &RequestError{Reason: fmt.Sprintf("profile %q is not open to enrolment (allowed: %s)", profile, strings.Join(s.c.Profiles, ", "))}
	}
	if subject == nil {
		subject = map[string]string{}
	}
	if err := s.c.Issuer.CheckRequest(ca.Request{Profile: profile, Subject: subject}); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	for attempt := 0; ; attempt++ {
		ref, err := newReference()
		if err != nil {
			return nil, err
		}
		secret := s.Secret(ref)
		e := Enrolment{Reference: ref, Profile: profile, Subject: subject, SecretHash: sha256.Sum256([]byte(secret)),
			CreatedBy: actor, Created: now, Expires: now.Add(ttl).Truncate(time.Second), State: StateOpen}
		seal, err := s.c.Audit.Prepare(audit.Entry{Actor: actor, Action: ActionCreate, Object: ref, Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"profile": profile, "expires": e.Expires, "subject": subject}})
		if err != nil {
			return nil, fmt.Errorf("preparing the audit record: %w", err)
		}
		err = s.c.Store.InsertEnrolment(ctx, e, seal)
		if errors.Is(err, ErrDuplicate) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("recording the enrolment: %w", err)
		}
		return &Created{Reference: ref, Secret: secret, Profile: profile, Subject: subject, Expires: e.Expires}, nil
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Lookup returns the enrolment with that reference for a protocol that
// authenticates it itself (a CMP MAC): the secret to check with is
// Secret(reference). The enrolment's state is the caller's to check.
func (s *Service) Lookup(ctx context.Context, reference string) (*Enrolment, error) {
	if !validReference(reference) {
		return nil, fmt.Errorf("%w: malformed reference", ErrNotFound)
	}
	e, err := s.c.Store.GetEnrolment(ctx, reference)
	if err != nil {
		return nil, err
	}
	// The derived secret must be the one recorded: a token whose key
	// changed would otherwise accept secrets nobody was given.
	if sum := sha256.Sum256([]byte(s.Secret(reference))); subtle.ConstantTimeCompare(sum[:], e.SecretHash[:]) != 1 {
		return nil, fmt.Errorf("enrolment %s: the secret key on the token is not the one it was created with", reference)
	}
	return e, nil
}

// CheckSecret authenticates a reference and secret (EST HTTP Basic).
func (s *Service) CheckSecret(ctx context.Context, reference, secret string) (*Enrolment, error) {
	e, err := s.Lookup(ctx, reference)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(secret))))
	if subtle.ConstantTimeCompare(sum[:], e.SecretHash[:]) != 1 {
		return nil, ErrBadSecret
	}
	return e, nil
}

// ValidReference says whether r has the form of an enrolment reference (16
// base32 characters), without looking it up: a protocol names in its
// records only a reference of that form, never what a caller sent instead.
func ValidReference(r string) bool { return validReference(r) }

func validReference(r string) bool {
	if len(r) != 16 {
		return false
	}
	_, err := b32.DecodeString(r)
	return err == nil
}

// Usable refuses an enrolment that is used, void or expired.
func (s *Service) Usable(e *Enrolment) error {
	switch {
	case e.State == StateVoid:
		return fmt.Errorf("%w: enrolment %s was voided at %s", ErrVoid, e.Reference, e.Voided.UTC().Format(time.RFC3339))
	case e.State == StateUsed:
		return fmt.Errorf("%w: enrolment %s was used for certificate %s", ErrUsed, e.Reference, e.Serial)
	case !s.now().Before(e.Expires):
		return fmt.Errorf("%w: enrolment %s expired at %s", ErrExpired, e.Reference, e.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// RequestID is the CA request ID (and the audit actor) of the issuance
// under the enrolment with that reference: the CA issues at most one
// certificate under it.
func RequestID(reference string) string { return "enrolment:" + reference }

// Key is the subject key of a request and how its possession was proved:
// a PKCS #10 CSR (its signature), or a public key with a proof the
// protocol checked (a CRMF signature POP).
type Key struct {
	CSR       []byte
	PublicKey crypto.PublicKey
	ProvedBy  string
}

// Enrol issues the certificate of an authenticated enrolment for key: the
// profile and subject are the enrolment's. claim names the request (a CMP
// transaction ID, a random value for EST). The enrolment is claimed first
// (ErrUsed, ErrVoid, ErrExpired, ErrBusy), used once the certificate exists, and
// open again when the CA refuses. The CA audits the issuance; the use is
// recorded here, together with its audit record. When that fails the
// certificate stands (with its issuance record) and the enrolment is open
// again, unused and without a use record: a retry for the same key (a
// CSR signed with it) completes it with its record and answers that
// certificate, instead of issuing another, unless that certificate was
// revoked or its key blocked since.
func (s *Service) Enrol(ctx context.Context, e *Enrolment, claim string, key Key, protocol string) (*ca.Issued, error) {
	if err := s.Usable(e); err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.c.Store.ClaimEnrolment(ctx, e.Reference, claim, now, now.Add(-ClaimTimeout)); err != nil {
		return nil, err
	}
	release := func() {
		if rerr := s.c.Store.ReleaseEnrolment(context.WithoutCancel(ctx), e.Reference, claim); rerr != nil {
			s.log.ErrorContext(ctx, "releasing an enrolment", "reference", e.Reference, "err", rerr)
		}
	}
	actor := RequestID(e.Reference)
	got, err := s.issuedBefore(ctx, e, key, actor)
	if err == nil && got == nil {
		got, err = s.c.Issuer.Issue(ctx, ca.Request{Profile: e.Profile, Subject: e.Subject, CSR: key.CSR, PublicKey: key.PublicKey,
			PossessionProvedBy: key.ProvedBy, RequestID: actor, RequestedBy: actor})
	}
	if err != nil {
		release()
		return nil, err
	}
	seal, err := s.c.Audit.Prepare(audit.Entry{Actor: actor, Action: ActionConsume, Object: e.Reference, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"serial": got.Serial, "profile": e.Profile, "protocol": protocol}})
	if err == nil {
		err = s.c.Store.CompleteEnrolment(context.WithoutCancel(ctx), e.Reference, claim, got.Serial, s.now(), seal)
	}
	if err != nil {
		// The request ID (enrolment:<reference>) keeps the CA from issuing
		// under it again; a retry for this key finds the certificate.
		release()
		s.log.ErrorContext(ctx, "recording the use of an enrolment", "reference", e.Reference, "serial", got.Serial, "err", err)
		return nil, fmt.Errorf("certificate %s issued, but recording the use of enrolment %s with its audit record failed: %w", got.Serial, e.Reference, err)
	}
	return got, nil
}

// issuedBefore returns the certificate an earlier request under the
// enrolment e (request ID actor) was issued for key, whose use could not
// be recorded then; nil when there is none, when key's CSR is not signed
// with its key (no proof of possession), or when that certificate was
// revoked or its key blocked since: then the CA decides (and refuses).
func (s *Service) issuedBefore(ctx context.Context, e *Enrolment, key Key, actor string) (*ca.Issued, error) {
	pub := key.PublicKey
	if len(key.CSR) > 0 {
		der := key.CSR
		if b, _ := pem.Decode(der); b != nil {
			der = b.Bytes
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil || csr.CheckSignature() != nil {
			// The CA refuses it: a CSR not signed with its key proves no
			// possession, and obtains no certificate issued before.
			return nil, nil
		}
		pub = csr.PublicKey
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil // the CA refuses it
	}
	serial, err := s.c.Certificates.FindIssued(ctx, e.Profile, sha256.Sum256(spki), s.now())
	if err != nil || serial == "" {
		return nil, err
	}
	rec, err := s.c.Certificates.GetCertificate(ctx, serial)
	if err != nil {
		return nil, fmt.Errorf("reading certificate %s: %w", serial, err)
	}
	if rec.RequestID != actor {
		return nil, nil // another's: the CA refuses the key
	}
	if rec.Revoked || rec.KeyBlocked {
		// Revoked (or its key reported compromised) since it was issued:
		// no enrolment completes with it; the CA refuses the key.
		return nil, nil
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate %s: %w", serial, err)
	}
	is, ok1 := s.c.Issuer.CACertificate(rec.CA)
	root, ok2 := s.c.Issuer.CACertificate("root")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("certificate %s: issuing CA %q is not configured", serial, rec.CA)
	}
	s.log.WarnContext(ctx, "completing an enrolment whose certificate was issued before", "reference", e.Reference, "serial", serial)
	return &ca.Issued{Serial: serial, CA: rec.CA, Profile: rec.Profile, Certificate: cert, Chain: []*x509.Certificate{is, root}}, nil
}

// Holder checks that cert is a certificate this CA issued, within its
// validity, not revoked and its key not blocked, and returns its record:
// the only certificates that authenticate a re-enrolment, a CMP kur or rr.
func (s *Service) Holder(ctx context.Context, cert *x509.Certificate) (*ca.CertificateRecord, error) {
	serial := fmt.Sprintf("%x", cert.SerialNumber)
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	rec, err := s.c.Certificates.GetCertificate(ctx, serial)
	if errors.Is(err, ca.ErrNotFound) {
		return nil, fmt.Errorf("%w: certificate %s was not issued by this CA", ErrCertificateRefused, serial)
	}
	if err != nil {
		return nil, fmt.Errorf("reading certificate %s: %w", serial, err)
	}
	if !bytesEqual(rec.DER, cert.Raw) {
		return nil, fmt.Errorf("%w: certificate %s is not the one this CA issued with that serial", ErrCertificateRefused, serial)
	}
	if now := s.now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: certificate %s is not valid now", ErrCertificateRefused, serial)
	}
	if rec.Revoked || rec.KeyBlocked {
		return nil, fmt.Errorf("%w: %w: certificate %s", ErrCertificateRefused, ErrRevoked, serial)
	}
	if err := s.c.Status.Check(ctx, cert); errors.Is(err, revocation.ErrRefused) {
		return nil, fmt.Errorf("%w: %w: %w", ErrCertificateRefused, ErrRevoked, err)
	} else if err != nil {
		return nil, fmt.Errorf("checking the status of certificate %s: %w", serial, err)
	}
	return rec, nil
}

func bytesEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Reenrol issues the successor of the holder's current certificate for a
// new key through the Renewer (the CA's renewal rules): the current
// certificate's profile and subject, the current certificate superseded.
// current must have passed Holder.
func (s *Service) Reenrol(ctx context.Context, current *x509.Certificate, rec *ca.CertificateRecord, key Key, actor string) (*ca.Issued, error) {
	return s.reenrol(ctx, Renewal{Current: current, Record: rec, Key: key, Actor: actor})
}

// ReenrolUnconfirmed is Reenrol that leaves the current certificate valid
// until the holder confirms the new one (SupersedeConfirmed) or the
// renewal is withdrawn (WithdrawRejected): a CMP key update without
// implicit confirmation, whose response may be lost or its certificate
// rejected.
func (s *Service) ReenrolUnconfirmed(ctx context.Context, current *x509.Certificate, rec *ca.CertificateRecord, key Key, actor string) (*ca.Issued, error) {
	return s.reenrol(ctx, Renewal{Current: current, Record: rec, Key: key, Actor: actor, KeepCurrent: true})
}

func (s *Service) reenrol(ctx context.Context, r Renewal) (*ca.Issued, error) {
	if s.c.Renewer == nil {
		return nil, &RequestError{Reason: "re-enrolment is not available on this service"}
	}
	return s.c.Renewer.Renew(ctx, r)
}

// SupersedeConfirmed revokes (superseded) the certificate that serial, a
// re-enrolment's certificate now confirmed by its holder, replaced, and
// returns its serial; "" when serial is no re-enrolment's (or no
// re-enrolment is available).
func (s *Service) SupersedeConfirmed(ctx context.Context, actor, serial string) (string, error) {
	if s.c.Renewer == nil {
		return "", nil
	}
	return s.c.Renewer.Supersede(ctx, actor, serial)
}

// WithdrawRejected withdraws the re-enrolment whose certificate serial
// its holder rejected or never confirmed (revoked for it): the certificate
// it replaced stays as it was, and may be re-enrolled again. It returns
// that certificate's serial; "" when serial is no re-enrolment's.
func (s *Service) WithdrawRejected(ctx context.Context, serial string) (string, error) {
	if s.c.Renewer == nil {
		return "", nil
	}
	return s.c.Renewer.Withdraw(ctx, serial)
}

// Refused records a protocol request refused by the protocol layer. It
// returns the error of the audit append: a refusal whose record cannot be
// written must be answered as the protocol's failure, never as the
// refusal (no answer leaves without its record).
func (s *Service) Refused(ctx context.Context, actor, object, protocol string, why error, details map[string]any) error {
	d := map[string]any{"protocol": protocol, "error": why.Error()}
	for k, v := range details {
		d[k] = v
	}
	if actor == "" {
		actor = "unknown"
	}
	if _, err := s.c.Audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionRefused, Object: object, Outcome: audit.OutcomeRefused, Details: d}); err != nil {
		s.log.ErrorContext(ctx, "audit append failed for a refused enrolment request", "err", err)
		return fmt.Errorf("writing the audit record: %w", err)
	}
	return nil
}

// Audit appends e to the audit log (a protocol's own records: CMP
// confirmations).
func (s *Service) Audit(ctx context.Context, e audit.Entry) error {
	_, err := s.c.Audit.Append(ctx, e)
	return err
}

// PrepareAudit validates entries and returns the Sealer that writes them
// in the store transaction that commits the change they record (a
// protocol's own records: a CMP follow-up given up).
func (s *Service) PrepareAudit(entries ...audit.Entry) (audit.Sealer, error) {
	return s.c.Audit.Prepare(entries...)
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Certificate returns the record of a certificate this CA issued.
func (s *Service) Certificate(ctx context.Context, serial string) (*ca.CertificateRecord, error) {
	return s.c.Certificates.GetCertificate(ctx, serial)
}
