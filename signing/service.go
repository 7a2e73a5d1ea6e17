// Package signing is the signing service around the PAdES engine (package
// signer): e-seals for agencies and remote signatures with sole control for
// citizens, over keys the CA generated on the token at issuance (keyInHSM)
// and certified. It owns the credentials and their owners, the ownership
// checks, the citizens' signing PINs and SADs, the audit records and metrics
// of every signature, and its HTTP API (seal, batch seal, JAdES seal, sign,
// two-step sign, PIN enrolment, extension to B-LT/B-LTA, with the document
// options: reason, certification, visible appearance); signing/csc serves
// the same credentials in the shape of the Cloud Signature Consortium API v2.
//
// Credentials come from the CA's certificates: on first use of a credential
// ID (and when a citizen lists their credentials) the service reads the
// issued certificate, takes the owner from the certificate itself (the
// subject's organizationIdentifier for organisation-seal, the civil number
// of the subject's serialNumber IDCxx-NNN for citizen-signing) and records
// the binding, which never changes afterwards. The request that issued the
// certificate is not trusted for it.
//
// The service declares what it consumes (Store, KeyResolver, Auditor) and
// receives the time-stamp client and the revocation source of the signer;
// it owns its section of thiqa.yaml (ServiceConfig) but knows nothing of
// the database, the token or how the configuration file is read.
package signing

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
)

// Audit actions of the signing service.
const (
	// ActionSeal records an agency's seal (or an operator's, `thiqa seal`).
	ActionSeal = "document.seal"
	// ActionSign records a citizen's document signature.
	ActionSign = "document.sign"
	// ActionPrepare records a prepared (not yet signed) document.
	ActionPrepare = "document.sign.prepare"
	// ActionSignHash records a CSC signatures/signHash.
	ActionSignHash = "hash.sign"
	// ActionAuthorize records a PIN check: a CSC credentials/authorize or
	// the PIN of POST /api/v1/sign.
	ActionAuthorize = "credential.authorize"
	// ActionPINSet records a citizen's PIN enrolment.
	ActionPINSet = "credential.pin.set"
	// ActionInfo records a CSC credentials/info read.
	ActionInfo = "credential.info"
	// ActionList records a CSC credentials/list read.
	ActionList = "credential.list"
)

// revocationRecheck is how long a "not revoked" answer is reused: well
// under revocation.pollEvery, the time other instances take to notice.
const revocationRecheck = time.Second

// maxLoadedCredentials bounds the in-memory cache of credentials.
const maxLoadedCredentials = 10000

// oidOrganizationIdentifier is the organizationIdentifier attribute (2.5.4.97).
var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// Config is the service's runtime configuration (ServiceConfig.Config
// turns the signing section of thiqa.yaml, defaults filled, into it).
type Config struct {
	// Timeout bounds each call to the TSA and to the revocation services.
	Timeout time.Duration
	// MaxDocumentBytes bounds one PDF.
	MaxDocumentBytes int64
	// MaxBatchDocuments bounds the documents of one batch seal.
	MaxBatchDocuments int
	// SADLifetime is how long signature activation data stays usable.
	SADLifetime time.Duration
	// MaxHashesPerSAD bounds the hashes of one authorisation.
	MaxHashesPerSAD int
	// TempDir holds uploaded documents while they are signed, and a batch
	// seal's sealed documents until they are sent; empty means the
	// system's temporary folder.
	TempDir string
	// PIN is the cost and the policy of the citizens' signing PINs.
	PIN pin.Params
	// FirstPINActivation makes the first PIN of a citizen's credential
	// need an activation code (signing.pinPolicy.firstPINActivation): a
	// keyInHSM issuance gets one (RegisterIssuedBy) and setPIN refuses a
	// credential without a PIN.
	FirstPINActivation bool
	// Appearance is what visible signatures are drawn with.
	Appearance AppearanceConfig
}

// validate checks that every bound is set.
func (c Config) validate() error {
	switch {
	case c.Timeout <= 0:
		return errors.New("signing: Config.Timeout must be positive")
	case c.MaxDocumentBytes <= 0:
		return errors.New("signing: Config.MaxDocumentBytes must be positive")
	case c.MaxBatchDocuments <= 0:
		return errors.New("signing: Config.MaxBatchDocuments must be positive")
	case c.SADLifetime <= 0:
		return errors.New("signing: Config.SADLifetime must be positive")
	case c.MaxHashesPerSAD <= 0:
		return errors.New("signing: Config.MaxHashesPerSAD must be positive")
	}
	return nil
}

// IssuingCA is one issuing CA of the hierarchy, by the name the CA records
// in its certificates.
type IssuingCA struct {
	// Name is the CA's short name (citizen, organisation, tsa).
	Name string
	// Cert is its certificate.
	Cert *x509.Certificate
}

// Options are the parts a Service is built from.
type Options struct {
	// Config bounds the service.
	Config Config
	// Store keeps credentials, PINs and SADs.
	Store Store
	// Keys finds the credentials' keys on the token.
	Keys KeyResolver
	// Root is the root CA certificate.
	Root *x509.Certificate
	// Issuers are the issuing CAs whose certificates may become
	// credentials, in the order their certificates go into the DSS.
	Issuers []IssuingCA
	// TSA issues the signature and document time-stamps of B-T and above.
	TSA signer.TimestampClient
	// Revocation supplies the OCSP responses and CRLs of B-LT and above.
	Revocation signer.RevocationSource
	// Audit records every signature, authorisation and refusal.
	Audit Auditor
	// Verifier judges documents before they are extended; without it
	// extensions are refused.
	Verifier DocumentVerifier
	// Logger receives the service's logs; discarded when nil.
	Logger *slog.Logger
	// Registerer receives the service's metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MobileIDs, when set, are the citizens' mobile IDs, whose login PINs
	// (managed by MobilePINs) the credential endpoints serve as well.
	MobileIDs  MobileIDs
	MobilePINs *pin.Manager
	// Country is the deployment's country (ISO 3166 alpha-2, e.g. OM): a
	// citizen-signing credential whose certificate names IDC<another
	// country>-<number> is no citizen's here, whoever has that number
	// (auth.CivilNumberIn). Empty when not known: any country counts.
	Country string
	// IssuerRevocations, when set, says whether the root revoked the
	// issuing CA of a credential's certificate (*ca.RevokedIssuers in
	// cmd/thiqa, the one the CA and the TSA share): such a credential
	// signs nothing and is listed as revoked. Nil: no issuing CA is
	// revoked.
	IssuerRevocations IssuerRevocations
}

// IssuerRevocations says whether the root revoked the issuing CA
// generation that issued a certificate. After a key compromise of an
// issuing CA the operators revoke it on the root CRL; every signature made
// with a certificate it issued fails validation for relying parties.
type IssuerRevocations interface {
	// RevokedIssuerOf returns why cert's issuing CA is revoked (non-nil)
	// or nil. It is asked before every signature: it must be cheap (a
	// map look-up).
	RevokedIssuerOf(cert *x509.Certificate) error
}

// Service is the signing service: what the seal, sign and CSC endpoints
// and the operator's `thiqa seal` share. It is safe for concurrent use.
type Service struct {
	cfg        Config
	store      Store
	keys       KeyResolver
	audit      Auditor
	logger     *slog.Logger
	pins       *pin.Manager
	mobile     MobileIDs
	mobilePINs *pin.Manager
	country    string                       // Options.Country
	issuers    IssuerRevocations            // Options.IssuerRevocations; nil: none revoked
	caCerts    map[string]*x509.Certificate // by CA name
	root       *x509.Certificate
	validation signer.ValidationOptions
	verifier   DocumentVerifier
	metrics    *metrics
	now        func() time.Time

	mu     sync.Mutex
	loaded map[string]*Credential

	// bodies keeps request-body buffers (*[]byte, at most pooledBody
	// bytes) for reuse by the next document.
	bodies sync.Pool
}

// New builds the service.
func New(o Options) (*Service, error) {
	if err := o.Config.validate(); err != nil {
		return nil, err
	}
	switch {
	case o.Store == nil || o.Keys == nil || o.Audit == nil:
		return nil, errors.New("signing: a store, a key resolver and an audit log are required")
	case o.Root == nil:
		return nil, errors.New("signing: the root CA certificate is required")
	}
	s := &Service{
		cfg: o.Config, store: o.Store, keys: o.Keys, audit: o.Audit, logger: o.Logger, root: o.Root, now: o.Now, verifier: o.Verifier,
		caCerts: map[string]*x509.Certificate{}, loaded: map[string]*Credential{}, mobile: o.MobileIDs, mobilePINs: o.MobilePINs, country: o.Country,
		issuers: o.IssuerRevocations,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	extra := []*x509.Certificate{o.Root}
	for _, is := range o.Issuers {
		if is.Cert == nil {
			return nil, fmt.Errorf("signing: CA %s has no certificate", is.Name)
		}
		s.caCerts[is.Name] = is.Cert
		extra = append(extra, is.Cert)
	}
	var err error
	if s.pins, err = pin.New(o.Store, o.Config.PIN); err != nil {
		return nil, err
	}
	if s.metrics, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	s.validation = signer.ValidationOptions{
		TSA:        o.TSA,
		Revocation: o.Revocation,
		ExtraCerts: extra,
		Cache:      signer.NewCache(),
		Timeout:    o.Config.Timeout,
	}
	return s, nil
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Logger returns the service's logger.
func (s *Service) Logger() *slog.Logger { return s.logger }

// metrics counts signatures per operation, level and outcome.
type metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_signing_operations_total",
			Help: "Seals, signatures and hash signatures by operation, PAdES level and outcome (success, refused, failure).",
		}, []string{"operation", "level", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "thiqa_signing_duration_seconds",
			Help:    "Time to produce a seal or signature, by operation and level.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"operation", "level"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.total, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering signing metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Observe counts one operation (seal, sign, prepare, signhash) at level
// with its audit outcome, and its duration when it succeeded.
func (s *Service) Observe(op, level, outcome string, d time.Duration) {
	s.metrics.total.WithLabelValues(op, level, outcome).Inc()
	if outcome == audit.OutcomeSuccess {
		s.metrics.duration.WithLabelValues(op, level).Observe(d.Seconds())
	}
}

// Credential is a credential ready to sign: its record, its key on the
// token and its certificate chain (the certificate, its issuer, the root).
// It is shared by every request: never modify what it returns.
type Credential struct {
	rec   *CredentialRecord
	key   crypto.Signer
	chain []*x509.Certificate
	// goodFrom (Unix nanoseconds) is when a revocation look-up last found
	// the certificate not revoked; the next look-up is skipped for
	// revocationRecheck after it, and not before it (a clock stepped back).
	goodFrom atomic.Int64
}

// ID returns the credential ID.
func (c *Credential) ID() string { return c.rec.ID }

// Signer returns the credential's key.
func (c *Credential) Signer() crypto.Signer { return c.key }

// Chain returns the certificate, then its issuer and the root.
func (c *Credential) Chain() []*x509.Certificate { return c.chain }

// ownerOf classifies an issued certificate of a key on the token: the owner
// is read from the certificate, whatever the issuance request said.
func ownerOf(profile string, cert *x509.Certificate) (kind, owner string, err error) {
	switch profile {
	case policies.ProfileOrganisationSeal:
		for _, n := range cert.Subject.Names {
			if v, ok := n.Value.(string); ok && n.Type.Equal(oidOrganizationIdentifier) && v != "" {
				return OwnerAgency, v, nil
			}
		}
		return "", "", errors.New("organisation-seal certificate without organizationIdentifier")
	case policies.ProfileCitizenSigning:
		if cn := auth.CivilNumber(cert.Subject.SerialNumber); cn != "" {
			return OwnerCitizen, cn, nil
		}
		return "", "", fmt.Errorf("citizen-signing certificate whose serialNumber %q is not IDCxx-NNN", cert.Subject.SerialNumber)
	}
	return "", "", fmt.Errorf("profile %s is not a signing profile", profile)
}

// register records the signing credential of an issued certificate.
func (s *Service) register(ctx context.Context, ic *IssuedCertificate) (*CredentialRecord, error) {
	credID := ic.CredentialID
	cert, err := x509.ParseCertificate(ic.DER)
	if err != nil {
		return nil, fmt.Errorf("credential %s: parsing certificate: %w", credID, err)
	}
	kind, owner, err := ownerOf(ic.Profile, cert)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", credID, err)
	}
	issuer := s.caCerts[ic.CA]
	if issuer == nil || cert.CheckSignatureFrom(issuer) != nil {
		return nil, fmt.Errorf("credential %s: certificate is not signed by CA %q", credID, ic.CA)
	}
	chain := append(append(append([]byte(nil), cert.Raw...), issuer.Raw...), s.root.Raw...)
	label := ic.KeyLabel
	if label == "" {
		label = credID
	}
	return s.store.RegisterCredential(ctx, CredentialRecord{
		ID: credID, OwnerKind: kind, OwnerID: owner, Profile: ic.Profile, KeyLabel: label,
		CertSerial: ic.Serial, ChainDER: chain, NotAfter: cert.NotAfter,
	})
}

// SwitchCredential moves a credential to the certificate that renewed or
// re-keyed its certificate replaced: the same ID, owner and PIN, the new
// certificate, chain and key. A credential not registered yet is left
// alone (its first use registers the newest certificate), and so is one of
// a profile the service does not keep (a mobile ID's citizen-auth key).
// The owner must not change. It is idempotent.
func (s *Service) SwitchCredential(ctx context.Context, ic IssuedCertificate, replaced string) error {
	if ic.Profile != policies.ProfileOrganisationSeal && ic.Profile != policies.ProfileCitizenSigning {
		return nil
	}
	cur, err := s.store.Credential(ctx, ic.CredentialID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.CertSerial == ic.Serial {
		s.forget(ic.CredentialID)
		return nil
	}
	cert, err := x509.ParseCertificate(ic.DER)
	if err != nil {
		return fmt.Errorf("credential %s: parsing certificate: %w", ic.CredentialID, err)
	}
	kind, owner, err := ownerOf(ic.Profile, cert)
	if err != nil {
		return fmt.Errorf("credential %s: %w", ic.CredentialID, err)
	}
	if kind != cur.OwnerKind || owner != cur.OwnerID {
		return fmt.Errorf("credential %s: the new certificate names another owner", ic.CredentialID)
	}
	issuer := s.caCerts[ic.CA]
	if issuer == nil || cert.CheckSignatureFrom(issuer) != nil {
		return fmt.Errorf("credential %s: certificate is not signed by CA %q", ic.CredentialID, ic.CA)
	}
	label := ic.KeyLabel
	if label == "" {
		label = ic.CredentialID
	}
	chain := append(append(append([]byte(nil), cert.Raw...), issuer.Raw...), s.root.Raw...)
	moved, err := s.store.SwitchCredential(ctx, ic.CredentialID, replaced, CredentialRecord{KeyLabel: label, CertSerial: ic.Serial, ChainDER: chain, NotAfter: cert.NotAfter})
	if err != nil {
		return err
	}
	s.forget(ic.CredentialID)
	if moved {
		s.logger.InfoContext(ctx, "credential moved to its new certificate", "credentialID", ic.CredentialID, "serial", ic.Serial, "replaces", replaced)
	}
	return nil
}

// forget drops a loaded credential, so that its next use reads it again.
func (s *Service) forget(id string) {
	s.mu.Lock()
	delete(s.loaded, id)
	s.mu.Unlock()
}

// SyncCredentials registers every issued keyInHSM certificate not yet known
// (those of other profiles are skipped; one that cannot be registered is
// logged). It is idempotent.
func (s *Service) SyncCredentials(ctx context.Context) error {
	pending, err := s.store.UnregisteredCredentials(ctx, 1000)
	if err != nil {
		return err
	}
	for i := range pending {
		u := &pending[i]
		if u.Profile != policies.ProfileOrganisationSeal && u.Profile != policies.ProfileCitizenSigning {
			continue
		}
		if _, err := s.register(ctx, u); err != nil {
			s.logger.WarnContext(ctx, "a credential cannot be registered", "credentialID", u.CredentialID, "err", err)
		}
	}
	return nil
}

// CredentialsOf lists the credentials of an owner (kind OwnerAgency or
// OwnerCitizen), oldest first.
func (s *Service) CredentialsOf(ctx context.Context, kind, owner string) ([]*CredentialRecord, error) {
	list, err := s.store.CredentialsOf(ctx, kind, owner)
	if err != nil || kind != OwnerCitizen || s.country == "" {
		return list, err
	}
	return slices.DeleteFunc(list, func(rec *CredentialRecord) bool {
		chain, err := x509.ParseCertificates(rec.ChainDER)
		return err != nil || len(chain) == 0 || s.otherCountry(kind, chain[0])
	}), nil
}

// otherCountry reports whether leaf, the certificate of a credential a
// citizen asks for (kind OwnerCitizen), names a national identity number
// of another country than the deployment's: its OwnerID is only the
// number, which a citizen of this country may have as well.
func (s *Service) otherCountry(kind string, leaf *x509.Certificate) bool {
	return kind == OwnerCitizen && s.country != "" && auth.CivilNumberIn(s.country, leaf.Subject.SerialNumber) == ""
}

// Credential returns credential id if it belongs to kind/owner and its
// certificate is usable now. Otherwise the error wraps ErrCredentialRefused
// (unknown, not a signing credential, someone else's),
// ErrCertificateNotValid or ErrCertificateRevoked, or is a storage or token
// error.
func (s *Service) Credential(ctx context.Context, id, kind, owner string) (*Credential, error) {
	s.mu.Lock()
	c := s.loaded[id]
	s.mu.Unlock()
	if c == nil {
		var err error
		if c, err = s.load(ctx, id, kind, owner); err != nil {
			return nil, err
		}
	}
	if owner == "" || c.rec.OwnerKind != kind || c.rec.OwnerID != owner || s.otherCountry(kind, c.chain[0]) {
		return nil, ErrCredentialRefused
	}
	err := s.usable(ctx, c)
	if errors.Is(err, ErrCertificateRevoked) || errors.Is(err, ErrCertificateNotValid) {
		// Another instance may have moved the credential to a renewed
		// certificate (and revoked this one as superseded): read it again.
		if fresh, ferr := s.store.Credential(ctx, id); ferr == nil && fresh.CertSerial != c.rec.CertSerial {
			s.forget(id)
			if c, err = s.load(ctx, id, kind, owner); err != nil {
				return nil, err
			}
			err = s.usable(ctx, c)
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// usable refuses a credential whose certificate is outside its validity or
// revoked.
func (s *Service) usable(ctx context.Context, c *Credential) error {
	if now := s.now(); now.After(c.chain[0].NotAfter) || now.Before(c.chain[0].NotBefore) {
		return Refuse(ErrCertificateNotValid, "the certificate of credential %s is not valid now", c.rec.ID)
	}
	// The root may revoke the issuing CA at any time (a map look-up, not
	// cached with the certificate's own state).
	if err := s.issuerRevoked(c.rec.ID, c.chain[0]); err != nil {
		return err
	}
	// Revocation is final and may have been recorded by another process:
	// read it on every use (one indexed look-up).
	now := s.now()
	// Wall time, stored: a window on both sides, so that a clock stepped
	// back does not stretch it (a revocation read only once the clock has
	// caught up) and one stepped forward ends it.
	if at, n := c.goodFrom.Load(), now.UnixNano(); at != 0 && n >= at && n < at+int64(revocationRecheck) {
		return nil
	}
	revoked, err := s.store.CertificateRevoked(ctx, c.rec.CertSerial)
	switch {
	case err != nil:
		return fmt.Errorf("checking the revocation of credential %s: %w", c.rec.ID, err)
	case revoked:
		return Refuse(ErrCertificateRevoked, "the certificate of credential %s is revoked", c.rec.ID)
	}
	c.goodFrom.Store(now.UnixNano())
	return nil
}

// issuerRevoked refuses credential id, whose certificate is cert, with an
// error wrapping ErrCertificateRevoked when the root revoked the issuing
// CA that issued cert (Options.IssuerRevocations). The refusal is the
// client's answer for a revoked certificate: the certificate can no
// longer make a signature anyone trusts, and the holder needs a new one
// from a CA that is not revoked.
func (s *Service) issuerRevoked(id string, cert *x509.Certificate) error {
	if s.issuers == nil {
		return nil
	}
	if s.issuers.RevokedIssuerOf(cert) != nil {
		return Refuse(ErrCertificateRevoked,
			"the issuing CA of the certificate of credential %s is revoked by the root; the credential needs a certificate from a CA that is not revoked", id)
	}
	return nil
}

// load reads credential id, registering it on its first use. When kind is
// set, a credential not yet registered is registered only for its owner
// (kind, owner): a refused request writes nothing; and a credential of
// another owner is ErrCredentialRefused before its key is looked up.
func (s *Service) load(ctx context.Context, id, kind, owner string) (*Credential, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrCredentialRefused
	}
	rec, err := s.store.Credential(ctx, id)
	if errors.Is(err, ErrNotFound) {
		ic, cerr := s.store.IssuedCertificate(ctx, id)
		if errors.Is(cerr, ErrNotFound) {
			return nil, ErrCredentialRefused
		}
		if cerr != nil {
			return nil, cerr
		}
		if kind != "" {
			cert, perr := x509.ParseCertificate(ic.DER)
			if perr != nil {
				return nil, fmt.Errorf("credential %s: parsing certificate: %w", id, perr)
			}
			if k, o, oerr := ownerOf(ic.Profile, cert); oerr != nil || k != kind || o != owner || s.otherCountry(kind, cert) {
				return nil, ErrCredentialRefused
			}
		}
		if rec, err = s.register(ctx, ic); err != nil {
			s.logger.WarnContext(ctx, "a credential cannot be registered", "credentialID", id, "err", err)
			return nil, ErrCredentialRefused
		}
	} else if err != nil {
		return nil, err
	}
	if kind != "" && (rec.OwnerKind != kind || rec.OwnerID != owner) {
		// Not the caller's: refused before its chain and key are looked
		// at, as an unknown credential is (a key missing from the token
		// would otherwise tell a non-owner that the credential exists).
		return nil, ErrCredentialRefused
	}
	chain, err := x509.ParseCertificates(rec.ChainDER)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("credential %s: stored chain: %v", id, err)
	}
	if s.otherCountry(kind, chain[0]) {
		return nil, ErrCredentialRefused
	}
	key, err := s.keys(ctx, rec.KeyLabel, rec.Profile)
	if err != nil {
		return nil, fmt.Errorf("credential %s: key on the token: %w", id, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("credential %s: the key on the token does not match the certificate", id)
	}
	c := &Credential{rec: rec, key: key, chain: chain}
	s.mu.Lock()
	if len(s.loaded) >= maxLoadedCredentials {
		clear(s.loaded) // millions of citizens: keep the working set only
	}
	s.loaded[id] = c
	s.mu.Unlock()
	return c, nil
}

// CheckPIN checks a citizen's signing PIN for credential credID (slow hash;
// locked after too many consecutive wrong tries, whose record the store
// commits while the PIN is locked). The errors are package pin's: ErrNotSet,
// ErrLocked, a *pin.WrongError; a lock whose record could not be written is
// ErrAudit (the PIN stays locked).
func (s *Service) CheckPIN(ctx context.Context, credID, value string) error {
	return s.checkPIN(ctx, &pinTarget{id: credID, kind: KindSigning, pins: s.pins}, "unknown", value)
}

// CheckCredentialPIN is CheckPIN for a credential the caller loaded (for
// its citizen): the record of a lock names its owner, and has it as actor
// when the request carries no principal (the digital ID's signing-PIN
// page, which checks the PIN on the citizen's behalf).
func (s *Service) CheckCredentialPIN(ctx context.Context, c *Credential, value string) error {
	return s.checkPIN(ctx, &pinTarget{id: c.rec.ID, kind: KindSigning, owner: c.rec.OwnerID, pins: s.pins}, c.rec.OwnerID, value)
}

// checkPIN checks value as t's PIN; the record of a lock names the
// request's principal, or actor when there is none.
func (s *Service) checkPIN(ctx context.Context, t *pinTarget, actor, value string) error {
	if pr, ok := auth.FromContext(ctx); ok && pr.Subject != "" {
		actor = pr.Subject
	}
	lock, err := s.lockRecord(actor, t)
	if err != nil {
		return err
	}
	return lockUnrecorded(s.pins.CheckRecorded(ctx, t.id, value, lock))
}

// PINStatus reports whether credential credID has a signing PIN and
// whether it is locked, as stored now.
func (s *Service) PINStatus(ctx context.Context, credID string) (set, locked bool, err error) {
	rec, err := s.store.Credential(ctx, credID)
	if err != nil {
		return false, false, err
	}
	return rec.PINSet, rec.PINFailures >= s.pins.Params().MaxFailures, nil
}

// Record appends e to the audit log; a failure is logged and returned.
func (s *Service) Record(ctx context.Context, e audit.Entry) error {
	_, err := s.audit.Append(ctx, e)
	if err != nil {
		s.logger.ErrorContext(ctx, "audit append failed", "action", e.Action, "err", err)
	}
	return err
}

// ExpireSADs deletes, every minute until ctx ends, the SADs that expired
// more than an hour ago: `thiqa serve` runs it in the background.
func (s *Service) ExpireSADs(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.store.DeleteExpiredSADs(ctx, s.now().Add(-time.Hour)); err != nil {
				s.logger.Warn("deleting expired SADs", "err", err)
			}
		}
	}
}
