package main

// The signing service: e-seals for agencies and remote signatures with sole
// control for citizens, over keys the CA generated on the token at issuance
// (keyInHSM) and certified (credentialID = the key's label).
//
// Credentials come into the signing_credentials table from the CA's
// certificates table: on first use of a credential ID (and when a citizen
// lists their credentials) the service reads the issued certificate, takes
// the owner from the certificate itself (the subject's organizationIdentifier
// for organisation-seal, the civil number of the subject's serialNumber
// IDCxx-NNN for citizen-signing) and records the binding, which never
// changes afterwards. The request that issued the certificate is not trusted
// for it.

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
)

// Audit actions of the signing service.
const (
	actionSeal      = "document.seal"
	actionSign      = "document.sign"
	actionSignHash  = "hash.sign"
	actionAuthorize = "credential.authorize"
	actionPINSet    = "credential.pin.set"
	actionInfo      = "credential.info"
	actionList      = "credential.list"
)

// errCredentialRefused is returned for a credential that does not exist, is
// not a signing credential, or belongs to someone else: callers cannot tell
// which, so credential IDs cannot be probed.
var errCredentialRefused = errors.New("credential not found or not yours")

// signingCredential is a credential ready to sign: its record, key and chain.
type signingCredential struct {
	rec   *store.SigningCredential
	key   crypto.Signer
	chain []*x509.Certificate
	// goodUntil (Unix nanoseconds) skips the revocation look-up for a
	// moment after one found the certificate not revoked.
	goodUntil atomic.Int64
}

// errCertificateRevoked is the cause of a refusal for a credential whose
// certificate is revoked (other refusals of a usable-looking credential are
// for a certificate outside its validity).
var errCertificateRevoked = errors.New("certificate revoked")

// revocationRecheck is how long a "not revoked" answer is reused: well
// under revocation.pollEvery, the time other instances take to notice.
const revocationRecheck = time.Second

// maxLoadedCredentials bounds the in-memory cache of credentials.
const maxLoadedCredentials = 10000

// signingService holds what the seal, sign and CSC endpoints share.
type signingService struct {
	cfg        config.SigningConfig
	creds      *store.SigningCredentials
	certs      *store.Certificates
	revoked    *store.Revocations
	token      *hsm.Token
	audit      *audit.Log
	logger     *slog.Logger
	pins       *pin.Manager
	caCerts    map[string]*x509.Certificate // by CA name
	root       *x509.Certificate
	validation signer.ValidationOptions
	metrics    *signingMetrics
	now        func() time.Time

	mu     sync.Mutex
	loaded map[string]*signingCredential
}

// signingMetrics counts signatures per operation, level and outcome.
type signingMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newSigningMetrics(reg prometheus.Registerer) (*signingMetrics, error) {
	m := &signingMetrics{
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

func (m *signingMetrics) observe(op, level, outcome string, d time.Duration) {
	m.total.WithLabelValues(op, level, outcome).Inc()
	if outcome == audit.OutcomeSuccess {
		m.duration.WithLabelValues(op, level).Observe(d.Seconds())
	}
}

// newSigningService builds the service. transport, when set, carries the
// calls to this deployment's own TSA, OCSP responder and CRLs (in process
// when serving); nil uses the network. own, when set, is this server's own
// TSA called in process, used when signing.tsaURL names it.
func newSigningService(ctx context.Context, p *platform, reg prometheus.Registerer, transport http.RoundTripper, own *ownTSA) (*signingService, error) {
	cfg := p.cfg.Signing.WithDefaults()
	parts, err := findHierarchy(ctx, p.cfg, p.token)
	if err != nil {
		return nil, err
	}
	s := &signingService{
		cfg: cfg, creds: p.db.SigningCredentials(), certs: p.db.Certificates(nil), revoked: p.db.Revocations(), token: p.token, audit: p.audit,
		logger: p.logger.With("service", "signing"), caCerts: map[string]*x509.Certificate{}, now: time.Now,
		loaded: map[string]*signingCredential{},
	}
	var extra []*x509.Certificate
	for _, c := range parts {
		if c.cert == nil {
			return nil, fmt.Errorf("CA %s has no certificate: run `thiqa init --data %s`", c.conf.Name, p.cfg.Dir())
		}
		s.caCerts[c.conf.Name] = c.cert
		extra = append(extra, c.cert)
	}
	s.root = parts[0].cert
	pp := pin.DefaultParams()
	pp.MemoryKiB, pp.Time = cfg.PINMemoryKiB, cfg.PINTime
	if s.pins, err = pin.New(s.creds, pp); err != nil {
		return nil, err
	}
	if s.metrics, err = newSigningMetrics(reg); err != nil {
		return nil, err
	}
	client := &http.Client{Transport: transport, Timeout: cfg.Timeout}
	tsaURL := cfg.TSAURLOrDefault(p.cfg.PublicBaseURL)
	tsc, err := timestamp.NewClient(tsaURL, timestamp.ClientOptions{HTTPClient: client, Timeout: cfg.Timeout})
	if err != nil {
		return nil, fmt.Errorf("signing.tsaURL: %w", err)
	}
	s.validation = signer.ValidationOptions{
		TSA:        tsc,
		Revocation: newRevocationFetcher(client, extra, s.now),
		ExtraCerts: extra,
		Cache:      signer.NewCache(),
		Timeout:    cfg.Timeout,
	}
	if own != nil {
		s.validation.TSA = own
	}
	return s, nil
}

// ownerOf classifies an issued certificate of a key on the token: the owner
// is read from the certificate, whatever the issuance request said.
func ownerOf(profile string, cert *x509.Certificate) (kind, owner string, err error) {
	switch profile {
	case policies.ProfileOrganisationSeal:
		for _, n := range cert.Subject.Names {
			if v, ok := n.Value.(string); ok && n.Type.Equal(oidOrganizationIdentifier) && v != "" {
				return store.OwnerAgency, v, nil
			}
		}
		return "", "", errors.New("organisation-seal certificate without organizationIdentifier")
	case policies.ProfileCitizenSigning:
		if cn := auth.CivilNumber(cert.Subject.SerialNumber); cn != "" {
			return store.OwnerCitizen, cn, nil
		}
		return "", "", fmt.Errorf("citizen-signing certificate whose serialNumber %q is not IDCxx-NNN", cert.Subject.SerialNumber)
	}
	return "", "", fmt.Errorf("profile %s is not a signing profile", profile)
}

// register records the signing credential of an issued certificate.
func (s *signingService) register(ctx context.Context, credID, caName, profile, serial string, der []byte) (*store.SigningCredential, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("credential %s: parsing certificate: %w", credID, err)
	}
	kind, owner, err := ownerOf(profile, cert)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", credID, err)
	}
	issuer := s.caCerts[caName]
	if issuer == nil || cert.CheckSignatureFrom(issuer) != nil {
		return nil, fmt.Errorf("credential %s: certificate is not signed by CA %q", credID, caName)
	}
	chain := append(append(append([]byte(nil), cert.Raw...), issuer.Raw...), s.root.Raw...)
	return s.creds.RegisterCredential(ctx, store.SigningCredential{
		ID: credID, OwnerKind: kind, OwnerID: owner, Profile: profile, KeyLabel: credID,
		CertSerial: serial, ChainDER: chain, NotAfter: cert.NotAfter,
	})
}

// syncCredentials registers every issued keyInHSM certificate not yet known
// (those of other profiles are skipped).
func (s *signingService) syncCredentials(ctx context.Context) error {
	pending, err := s.creds.UnregisteredCredentials(ctx, 1000)
	if err != nil {
		return err
	}
	for _, u := range pending {
		if u.Profile != policies.ProfileOrganisationSeal && u.Profile != policies.ProfileCitizenSigning {
			continue
		}
		if _, err := s.register(ctx, u.CredentialID, u.CA, u.Profile, u.Serial, u.DER); err != nil {
			s.logger.WarnContext(ctx, "a credential cannot be registered", "credentialID", u.CredentialID, "err", err)
		}
	}
	return nil
}

// credential returns the credential id if it belongs to kind/owner, else an
// error wrapping errCredentialRefused (or a storage or token error).
func (s *signingService) credential(ctx context.Context, id, kind, owner string) (*signingCredential, error) {
	s.mu.Lock()
	c := s.loaded[id]
	s.mu.Unlock()
	if c == nil {
		var err error
		if c, err = s.load(ctx, id, kind, owner); err != nil {
			return nil, err
		}
	}
	if owner == "" || c.rec.OwnerKind != kind || c.rec.OwnerID != owner {
		return nil, errCredentialRefused
	}
	if now := s.now(); now.After(c.chain[0].NotAfter) || now.Before(c.chain[0].NotBefore) {
		return nil, refuse(http.StatusForbidden, "the certificate of credential %s is not valid now", id)
	}
	// Revocation is final and may have been recorded by another process:
	// read it on every use (one indexed look-up).
	now := s.now()
	if now.UnixNano() < c.goodUntil.Load() {
		return c, nil
	}
	switch _, err := s.revoked.Revocation(ctx, c.rec.CertSerial); {
	case err == nil:
		return nil, &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("the certificate of credential %s is revoked", id), err: errCertificateRevoked}
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("checking the revocation of credential %s: %w", id, err)
	}
	c.goodUntil.Store(now.Add(revocationRecheck).UnixNano())
	return c, nil
}

// load reads credential id, registering it on its first use. When kind is
// set, a credential not yet registered is registered only for its owner
// (kind, owner): a refused request writes nothing.
func (s *signingService) load(ctx context.Context, id, kind, owner string) (*signingCredential, error) {
	if id == "" || len(id) > 64 {
		return nil, errCredentialRefused
	}
	rec, err := s.creds.Credential(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		cr, cerr := s.certs.CertificateByCredential(ctx, id)
		if errors.Is(cerr, ca.ErrNotFound) {
			return nil, errCredentialRefused
		}
		if cerr != nil {
			return nil, cerr
		}
		if kind != "" {
			cert, perr := x509.ParseCertificate(cr.DER)
			if perr != nil {
				return nil, fmt.Errorf("credential %s: parsing certificate: %w", id, perr)
			}
			if k, o, oerr := ownerOf(cr.Profile, cert); oerr != nil || k != kind || o != owner {
				return nil, errCredentialRefused
			}
		}
		if rec, err = s.register(ctx, id, cr.CA, cr.Profile, cr.Serial, cr.DER); err != nil {
			s.logger.WarnContext(ctx, "a credential cannot be registered", "credentialID", id, "err", err)
			return nil, errCredentialRefused
		}
	} else if err != nil {
		return nil, err
	}
	chain, err := x509.ParseCertificates(rec.ChainDER)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("credential %s: stored chain: %v", id, err)
	}
	key, err := s.token.FindKey(ctx, rec.KeyLabel)
	if err != nil {
		return nil, fmt.Errorf("credential %s: key on the token: %w", id, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("credential %s: the key on the token does not match the certificate", id)
	}
	key.SetMetricLabel(rec.Profile) // never the credential ID
	if rec.Profile == policies.ProfileOrganisationSeal {
		// An agency's seal key signs all day; a citizen's key signs once
		// per authorisation and is not worth a copy (hsm/sessioncopy.go).
		key.UseSessionCopies()
	}
	c := &signingCredential{rec: rec, key: key, chain: chain}
	s.mu.Lock()
	if len(s.loaded) >= maxLoadedCredentials {
		clear(s.loaded) // millions of citizens: keep the working set only
	}
	s.loaded[id] = c
	s.mu.Unlock()
	return c, nil
}

// signRecord is the audit record of one seal or signature.
type signRecord struct {
	action, actor, credential, level string
	documentDigest                   []byte
	hash                             crypto.Hash
	size                             int64
	name                             string
}

func (s *signingService) auditSign(ctx context.Context, r signRecord, outcome, reason string) error {
	d := signDetails{Credential: r.credential, Level: r.level, Name: r.name, Reason: reason}
	if outcome != audit.OutcomeSuccess {
		d.Caller = auth.CallerOf(ctx) // a refusal names the caller: method, subject, roles
	}
	if len(r.documentDigest) > 0 {
		d.DocumentDigest = hex.EncodeToString(r.documentDigest)
		d.Hash = r.hash.String()
	}
	if r.size > 0 {
		d.Size = r.size
	}
	_, err := s.audit.Append(ctx, audit.Entry{Actor: r.actor, Action: r.action, Object: r.credential, Outcome: outcome, Details: d})
	if err != nil {
		s.logger.ErrorContext(ctx, "audit append failed", "action", r.action, "err", err)
	}
	return err
}

// signDetails are the details of a signing record. The fields are in
// alphabetical order and the optional ones omitted when empty, so the JSON
// is what the map of the same entries gives, without building and sorting
// a map per signature.
type signDetails struct {
	Caller         *auth.Caller `json:"caller,omitempty"`
	Credential     string       `json:"credential"`
	DocumentDigest string       `json:"documentDigest,omitempty"`
	Hash           string       `json:"hash,omitempty"`
	Level          string       `json:"level"`
	Name           string       `json:"name,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	Size           int64        `json:"size,omitempty"`
}

// document is one PDF to sign, on disk or in memory.
type pdfInput struct {
	r    io.ReaderAt
	size int64
}

// signPDF signs in with cred at level and writes the result to the writer
// out returns. The audit record of the success is written (and must
// succeed) after every step succeeded and before out is called, so before
// the first byte of the answer; out gets the document digest and the size
// of the signed PDF. authorize, when set, is called with the document
// digest and the DTBS before the key is used (sole control).
//
// tune, when set, adjusts the options last (the fixed time and placeholder
// of a two-step signature).
func (s *signingService) signPDF(ctx context.Context, rec signRecord, cred *signingCredential, level signer.Level, in pdfInput, out func(documentDigest []byte, size int64) (io.Writer, error),
	authorize func(ctx context.Context, documentDigest, dtbs []byte) error, tune func(*signer.Options)) (*signer.Result, error) {
	dst := &deferredWriter{}
	rec.hash = signerHash(cred) // named in the record
	opts := signer.Options{
		Level: level, Signer: cred.key, Chain: cred.chain, Hash: rec.hash, Validation: s.validation,
		BeforeSign: func(ctx context.Context, documentDigest, dtbs []byte) error {
			rec.documentDigest = append([]byte(nil), documentDigest...)
			if authorize != nil {
				return authorize(ctx, documentDigest, dtbs)
			}
			return nil
		},
		BeforeWrite: func(size int64) error {
			if err := s.auditSign(ctx, rec, audit.OutcomeSuccess, ""); err != nil {
				return fmt.Errorf("%w: %v", errAudit, err)
			}
			w, err := out(rec.documentDigest, size)
			dst.w = w
			return err
		},
	}
	if rec.action == actionSeal {
		opts.Reason = "e-seal"
	}
	if tune != nil {
		tune(&opts)
	}
	return signer.Sign(ctx, in.r, in.size, dst, opts)
}

// errAudit marks a failure to write the audit record: nothing was sent.
var errAudit = errors.New("audit record could not be written")

// deferredWriter writes to w, which BeforeWrite sets once the signed
// document is complete and audited.
type deferredWriter struct{ w io.Writer }

func (d *deferredWriter) Write(b []byte) (int, error) {
	if d.w == nil {
		return 0, errAudit
	}
	return d.w.Write(b)
}

// wireSigning serves the seal, sign and CSC endpoints.
func wireSigning(ctx context.Context, p *platform, sv *serving) error {
	if !p.cfg.Signing.Enabled(p.cfg.CA) {
		return nil
	}
	base, err := url.Parse(p.cfg.PublicBaseURL)
	if err != nil {
		return err
	}
	// The signature time-stamps of B-T and above: this server's own TSA in
	// process when signing.tsaURL names it, else over HTTP.
	own := ownTSAFor(sv, p.cfg.PublicBaseURL, p.cfg.Signing.WithDefaults().TSAURLOrDefault(p.cfg.PublicBaseURL))
	// Calls to this server's own URLs take the routes `thiqa serve` takes:
	// the raw prefixes (POST /tsa, GET /ocsp/…) first, then the mux.
	ownURLs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rawPrefixes(sv.raw, sv.mux).ServeHTTP(w, r) })
	s, err := newSigningService(ctx, p, p.reg, &inProcessTransport{host: base.Host, handler: ownURLs, next: http.DefaultTransport}, own)
	if err != nil {
		return err
	}
	s.logger.Debug("signature time-stamps", "inProcess", own != nil)
	h := &signingHTTP{s: s}
	seal := p.authn.Require(policies.ActionSeal)
	sign := p.authn.Require(policies.ActionSign)
	sv.mux.Handle("POST /api/v1/seal", seal(http.HandlerFunc(h.seal)))
	sv.mux.Handle("POST /api/v1/seal/batch", seal(http.HandlerFunc(h.sealBatch)))
	sv.mux.Handle("POST /api/v1/sign", sign(http.HandlerFunc(h.sign)))
	sv.mux.Handle("POST /api/v1/sign/prepare", sign(http.HandlerFunc(h.signPrepare)))
	sv.mux.Handle("POST /api/v1/sign/complete", sign(http.HandlerFunc(h.signComplete)))
	sv.mux.Handle("POST /api/v1/credentials/{id}/pin", sign(http.HandlerFunc(h.setPIN)))
	sv.mux.HandleFunc("POST /csc/v2/info", cscInfoService)
	sv.mux.Handle("POST /csc/v2/credentials/list", cscErrors(sign(http.HandlerFunc(h.cscList))))
	sv.mux.Handle("POST /csc/v2/credentials/info", cscErrors(sign(http.HandlerFunc(h.cscInfo))))
	sv.mux.Handle("POST /csc/v2/credentials/authorize", cscErrors(sign(http.HandlerFunc(h.cscAuthorize))))
	sv.mux.Handle("POST /csc/v2/signatures/signHash", cscErrors(sign(http.HandlerFunc(h.cscSignHash))))
	sv.background = append(sv.background, func(ctx context.Context) {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := s.creds.DeleteExpiredSADs(ctx, s.now().Add(-time.Hour)); err != nil {
					s.logger.Warn("deleting expired SADs", "err", err)
				}
			}
		}
	})
	return nil
}

// initSigning registers the signing credentials issued so far (idempotent).
func initSigning(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.Signing.Enabled(p.cfg.CA) {
		return nil
	}
	s, err := newSigningService(ctx, p, nil, nil, nil)
	if err != nil {
		return err
	}
	return s.syncCredentials(ctx)
}
