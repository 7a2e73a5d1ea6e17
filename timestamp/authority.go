package timestamp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// Errors about the TSA unit and its clock. Service renews a unit before its
// certificate expires, and replaces an expired one before serving.
var (
	// ErrUnitCertificateExpired: now is after the unit certificate's
	// NotAfter; the key must not sign any more tokens with it.
	ErrUnitCertificateExpired = errors.New("timestamp: TSA unit certificate has expired")
	// ErrUnitCertificateNotYetValid: now is before the certificate's NotBefore.
	ErrUnitCertificateNotYetValid = errors.New("timestamp: TSA unit certificate is not yet valid")
	// ErrClockNotInSync: the clock is not known to be within the declared accuracy.
	ErrClockNotInSync = errors.New("timestamp: clock not within the declared accuracy")
	// ErrUnitRevoked: the unit certificate was revoked (EN 319 421
	// §7.6.10: a unit whose key or time cannot be trusted issues no more
	// tokens); the Service renews the unit with a new key.
	ErrUnitRevoked = errors.New("timestamp: TSA unit certificate is revoked")
)

// TokenRecord is what is recorded for every token before it is returned.
type TokenRecord struct {
	Serial        *big.Int
	GenTime       time.Time
	HashAlgorithm crypto.Hash
	Imprint       []byte
	// Policy is the dotted policy OID of the token.
	Policy string
	// Requester identifies the client when known (empty otherwise).
	Requester string
}

// Recorder makes a token record durable (the audit log / store). A token is
// returned only after Record returns nil.
type Recorder interface {
	Record(ctx context.Context, rec TokenRecord) error
}

// Options are the parts an Authority is built from.
type Options struct {
	// Certificate is the TSA unit certificate: EKU timeStamping, critical
	// and alone, for Signer's public key.
	Certificate *x509.Certificate
	// Chain holds the issuing CA certificates (issuer first), included in
	// tokens when Config.IncludeChain is set; may be empty.
	Chain []*x509.Certificate
	// Signer holds the unit key (an HSM key in production).
	Signer crypto.Signer
	// Serials allocates token serial numbers (a BlockAllocator over the store).
	Serials SerialAllocator
	// Recorder makes each token record durable before the token is signed.
	Recorder Recorder
	// Clock says whether the clock is within the declared accuracy.
	Clock ClockChecker
	// Logger receives structured logs; discarded when nil.
	Logger *slog.Logger
	// Registerer receives the TSA metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// Now returns the current time; time.Now when nil (tests set it).
	Now func() time.Time
	// Issuers says whether the root revoked the unit's issuing CA: while
	// it does, the unit signs nothing (ErrUnitIssuerRevoked). Nil: never.
	Issuers IssuerStatus
	// Refusals records each refused request (ActionRefuse, within the
	// budget of refusal.go); nil records none. Its records' outcome is
	// failure: the refusals the TSA could not help (timeNotAvailable,
	// systemFailure).
	Refusals *audit.Group
	// ClientRefusals, when set, records instead the refusals of a request
	// the TSA will not serve (badAlg, badRequest, badDataFormat,
	// unacceptedPolicy, unacceptedExtension, the HTTP refusals): records
	// of outcome refused, as every service's refusal of its caller's
	// request. Nil: Refusals records them too.
	ClientRefusals *audit.Group
	// budget bounds the recorded refusals; a Service shares one among its
	// units. Nil: the Authority has its own.
	budget *refusalBudget
}

// Authority is a TSA unit: it answers TimeStampReqs with TimeStampResps.
// It is safe for concurrent use.
type Authority struct {
	set       *settings
	cert      *x509.Certificate
	signer    *tsp.TokenSigner
	serials   SerialAllocator
	recorder  Recorder
	clock     ClockChecker
	log       *slog.Logger
	now       func() time.Time
	policy    string
	qcExt     []tsp.Extension
	metrics   *metrics
	lastClock atomic.Pointer[ClockStatus]
	// revoked is set once the unit certificate is known to be revoked:
	// from then on the unit signs nothing (Service.UnitRevoked).
	revoked atomic.Bool
	// issuers and refusals: Options.Issuers and Options.Refusals.
	issuers  IssuerStatus
	refusals *audit.Group
	// clientRefusals: Options.ClientRefusals, else Options.Refusals.
	clientRefusals *audit.Group
	budget         *refusalBudget
	// issuerRevokedSeen is set while the issuing CA is known revoked, so
	// that the change is logged once (issuerRevoked).
	issuerRevokedSeen atomic.Bool
	// failureResp is a pre-encoded systemFailure response for when even
	// encoding a response fails.
	failureResp []byte
	// bodies recycles the HTTP handler's request buffers (*[]byte).
	bodies sync.Pool
	// responses recycles the HTTP handler's response buffers (*[]byte).
	responses sync.Pool
}

// New checks the configuration and the unit certificate and returns an
// Authority.
func New(cfg Config, o Options) (*Authority, error) {
	return newAuthority(cfg, o, false)
}

// newAuthority is New; with notYetValid, a unit certificate whose
// notBefore is still ahead is accepted (the Service has the unit it
// replaces sign until then; each request checks the validity anyway).
func newAuthority(cfg Config, o Options, notYetValid bool) (*Authority, error) {
	set, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	switch {
	case o.Certificate == nil:
		return nil, errors.New("timestamp: no unit certificate")
	case o.Signer == nil:
		return nil, errors.New("timestamp: no signer")
	case o.Serials == nil:
		return nil, errors.New("timestamp: no serial allocator")
	case o.Recorder == nil:
		return nil, errors.New("timestamp: no recorder")
	case o.Clock == nil:
		return nil, errors.New("timestamp: no clock checker")
	}
	if err := checkUnitCertificate(o.Certificate, o.Signer, o.Chain); err != nil {
		return nil, err
	}
	a := &Authority{
		set: set, cert: o.Certificate, serials: o.Serials, recorder: o.Recorder,
		clock: o.Clock, log: o.Logger, now: o.Now, policy: set.policy.String(),
		issuers: o.Issuers, refusals: o.Refusals, clientRefusals: o.ClientRefusals, budget: o.budget,
	}
	if a.clientRefusals == nil {
		a.clientRefusals = a.refusals
	}
	if a.budget == nil {
		a.budget = newRefusalBudget(o.Now)
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.bodies.New = func() any { b := make([]byte, 0, 512); return &b }
	a.responses.New = func() any { b := make([]byte, 0, 8192); return &b }
	if a.now == nil {
		a.now = time.Now
	}
	if err := a.checkValidity(a.now()); err != nil && !(notYetValid && errors.Is(err, ErrUnitCertificateNotYetValid)) {
		return nil, err
	}
	if set.qualified {
		a.qcExt = []tsp.Extension{tsp.QualifiedStatementExtension()}
	}
	a.signer, err = tsp.NewTokenSigner(o.Signer, o.Certificate, o.Chain, tsp.SignerOptions{PSS: set.rsaPSS, SigningTime: set.signingTime})
	if err != nil {
		return nil, fmt.Errorf("timestamp: preparing the token signer: %w", err)
	}
	fr := tsp.Response{Status: tsp.StatusInfo{Status: tsp.StatusRejection, FailInfo: tsp.SystemFailure, Text: []string{"internal error"}}}
	if a.failureResp, err = fr.Marshal(); err != nil {
		return nil, err
	}
	if a.metrics, err = newMetrics(o.Registerer, a); err != nil {
		return nil, err
	}
	return a, nil
}

var oidEKU = []int{2, 5, 29, 37}

func checkUnitCertificate(cert *x509.Certificate, signer crypto.Signer, chain []*x509.Certificate) error {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("timestamp: the signer's public key does not match the unit certificate")
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(cert.UnknownExtKeyUsage) != 0 {
		return errors.New("timestamp: the unit certificate's extended key usage must be timeStamping only (RFC 3161 §2.3)")
	}
	critical := false
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidEKU) {
			critical = e.Critical
		}
	}
	if !critical {
		return errors.New("timestamp: the unit certificate's extended key usage extension must be critical (RFC 3161 §2.3)")
	}
	if k, ok := cert.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		return errors.New("timestamp: RSA unit keys must have at least 2048 bits (TS 119 312)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return errors.New("timestamp: the unit certificate's key usage allows no signatures")
	}
	if len(chain) > 0 {
		if err := cert.CheckSignatureFrom(chain[0]); err != nil {
			return fmt.Errorf("timestamp: the unit certificate is not issued by the first chain certificate: %w", err)
		}
	}
	return nil
}

func (a *Authority) checkValidity(now time.Time) error {
	if now.After(a.cert.NotAfter) {
		return fmt.Errorf("%w (not after %s)", ErrUnitCertificateExpired, a.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(a.cert.NotBefore) {
		return fmt.Errorf("%w (not before %s)", ErrUnitCertificateNotYetValid, a.cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// Certificate returns the unit certificate (Service renews it before NotAfter).
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// Ready reports whether the Authority can issue tokens now: the unit
// certificate and its issuing CA are not revoked, the clock is in sync and
// the unit certificate is valid. It backs /readyz.
func (a *Authority) Ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if a.revoked.Load() {
		return fmt.Errorf("%w (serial %x): a new unit key is being certified", ErrUnitRevoked, a.cert.SerialNumber)
	}
	if err := a.issuerRevoked(); err != nil {
		return err
	}
	if _, err := a.checkClock(ctx); err != nil {
		return err
	}
	return a.checkValidity(a.now())
}

func (a *Authority) checkClock(ctx context.Context) (ClockStatus, error) {
	st, err := a.clock.Check(ctx)
	if err != nil {
		st.InSync, st.Reason = false, "clock check failed: "+err.Error()
	}
	a.lastClock.Store(&st)
	if !st.InSync {
		return st, fmt.Errorf("%w: %s", ErrClockNotInSync, st.Reason)
	}
	return st, nil
}

// rejection is a refusal carried back to the client as a PKIStatusInfo.
type rejection struct {
	fail tsp.FailInfo
	text string
	// cause is the error behind a systemFailure, if any: when it is
	// marked as an outage (outage.Is), the HTTP answer is 503.
	cause error
	// noRetry: the 503 of an outage carries no Retry-After, since waiting
	// does not help (the issuing CA is revoked).
	noRetry bool
	// hash names the request's hash algorithm once it parsed; reason is
	// the refusal's audit reason, when it has one (refusal.go).
	hash, reason string
}

func (r *rejection) Error() string { return r.fail.String() + ": " + r.text }

func reject(f tsp.FailInfo, format string, args ...any) *rejection {
	return &rejection{fail: f, text: fmt.Sprintf(format, args...)}
}

// failure is the systemFailure refusal of a request that err stopped; err
// is kept (not told to the client) so an outage can be answered as such.
func failure(err error) *rejection {
	r := reject(tsp.SystemFailure, "internal error")
	r.cause = err
	return r
}

var derNULL = []byte{0x05, 0x00}

// check applies the TSA policy to a parsed request.
func (a *Authority) check(req *tsp.Request) (crypto.Hash, *rejection) {
	mi := req.MessageImprint
	h, known := tsp.HashFromOID(mi.HashAlgorithm)
	if !known || !a.set.hashes[h] {
		return 0, reject(tsp.BadAlg, "hash algorithm %s is not accepted", mi.HashAlgorithm)
	}
	if mi.HashParams != nil && !bytes.Equal(mi.HashParams, derNULL) {
		return 0, reject(tsp.BadAlg, "hash algorithm parameters must be absent or NULL")
	}
	if len(mi.HashedMessage) != h.Size() {
		return 0, reject(tsp.BadDataFormat, "%s imprint must be %d bytes, got %d", h, h.Size(), len(mi.HashedMessage))
	}
	if req.ReqPolicy != nil && !slices.ContainsFunc(a.set.accepted, req.ReqPolicy.Equal) {
		return 0, reject(tsp.UnacceptedPolicy, "policy %s is not supported", req.ReqPolicy)
	}
	if len(req.Extensions) > 0 {
		return 0, reject(tsp.UnacceptedExtension, "extension %s is not supported", req.Extensions[0].ID)
	}
	return h, nil
}

// Respond answers one DER TimeStampReq with a DER TimeStampResp: a token
// when granted, else a rejection with failInfo and statusString. requester
// identifies the client for the record ("" when unknown). No serial is
// consumed unless the request passes every check.
func (a *Authority) Respond(ctx context.Context, der []byte, requester string) ([]byte, tsp.StatusInfo) {
	out, _, st, _ := a.respondInto(ctx, nil, der, requester, nil)
	return slices.Clip(out), st
}

// respondInto is Respond encoding a granted response in buf's backing
// array when it is large enough (the token is written after
// tsp.GrantedHeadroom bytes, then the envelope in front of it). It also
// returns the buffer it used, grown if need be, for the caller to recycle
// once the response is sent, and whether the refusal is a systemFailure
// whose cause is unavailable for now (outage.Is: the database or the
// unit key's token), which the HTTP handler answers 503 (with Retry-After
// unless noRetry). A refusal is recorded before it is answered (refused;
// r is the HTTP request, nil in process).
func (a *Authority) respondInto(ctx context.Context, r *http.Request, der []byte, requester string, buf []byte) (out, used []byte, st tsp.StatusInfo, unavailable *rejection) {
	start := time.Now()
	token, rej := a.issue(ctx, der, requester, buf[:0:cap(buf)], tsp.GrantedHeadroom)
	resp := tsp.Response{Status: tsp.StatusInfo{Status: tsp.StatusGranted, FailInfo: tsp.NoFailInfo}}
	var err error
	if rej != nil {
		rej = a.refused(ctx, r, requester, rej)
		resp.Status = tsp.StatusInfo{Status: tsp.StatusRejection, FailInfo: rej.fail, Text: []string{rej.text}}
		out, err = resp.Marshal()
		if outage.Is(rej.cause) {
			unavailable = rej
		}
	} else {
		used = token
		out, err = tsp.EncodeGrantedInPlace(token, tsp.GrantedHeadroom)
	}
	if err != nil {
		a.log.Error("encoding a time-stamp response", "err", err)
		out = a.failureResp
		resp.Status = tsp.StatusInfo{Status: tsp.StatusRejection, FailInfo: tsp.SystemFailure}
	}
	a.metrics.observe(resp.Status, time.Since(start))
	if used == nil {
		used = buf
	}
	return out, used[:0], resp.Status, unavailable
}

// Issue returns a DER time-stamp token (ContentInfo) for a DER request, or
// an error carrying the refusal. It is Respond without the envelope, for
// callers in the same process.
func (a *Authority) Issue(ctx context.Context, der []byte, requester string) ([]byte, error) {
	start := time.Now()
	token, rej := a.issue(ctx, der, requester, nil, 0)
	if rej != nil {
		rej = a.refused(ctx, nil, requester, rej)
		a.metrics.observe(tsp.StatusInfo{Status: tsp.StatusRejection, FailInfo: rej.fail}, time.Since(start))
		return nil, &StatusError{Status: tsp.StatusInfo{Status: tsp.StatusRejection, FailInfo: rej.fail, Text: []string{rej.text}}, cause: rej.cause}
	}
	a.metrics.observe(tsp.StatusInfo{Status: tsp.StatusGranted, FailInfo: tsp.NoFailInfo}, time.Since(start))
	return slices.Clip(token), nil
}

// issue checks a request, records and signs its token, and returns the
// token appended to dst after headroom zero bytes (the caller's envelope).
func (a *Authority) issue(ctx context.Context, der []byte, requester string, dst []byte, headroom int) ([]byte, *rejection) {
	if int64(len(der)) > a.set.maxRequestBytes {
		return nil, reject(tsp.BadDataFormat, "request larger than %d bytes", a.set.maxRequestBytes)
	}
	req, err := tsp.ParseRequest(der)
	if errors.Is(err, tsp.ErrVersion) {
		return nil, reject(tsp.BadRequest, "only version 1 requests are supported")
	}
	if err != nil {
		return nil, reject(tsp.BadDataFormat, "%v", err)
	}
	token, rej := a.issueParsed(ctx, req, requester, dst, headroom)
	if rej != nil {
		rej.hash = hashName(req.MessageImprint.HashAlgorithm)
	}
	return token, rej
}

// hashName names a request's hash algorithm: its name when known, else
// its OID.
func hashName(oid asn1.ObjectIdentifier) string {
	if h, ok := tsp.HashFromOID(oid); ok {
		return h.String()
	}
	return oid.String()
}

// issueParsed is issue once the request parsed.
func (a *Authority) issueParsed(ctx context.Context, req *tsp.Request, requester string, dst []byte, headroom int) ([]byte, *rejection) {
	h, rej := a.check(req)
	if rej != nil {
		return nil, rej
	}
	// A requested policy that passed the checks is the token's policy
	// (RFC 3161 §2.4.2); otherwise the configured one.
	policy, policyName := a.set.policy, a.policy
	if req.ReqPolicy != nil {
		policy, policyName = req.ReqPolicy, req.ReqPolicy.String()
	}
	if _, err := a.checkClock(ctx); err != nil {
		a.log.Warn("refusing time-stamp: clock not in sync", "err", err)
		return nil, reject(tsp.TimeNotAvailable, "the TSA clock is not within its declared accuracy")
	}
	if a.revoked.Load() {
		return nil, revokedRejection()
	}
	if err := a.issuerRevoked(); err != nil {
		return nil, issuerRevokedRejection(err)
	}
	now := a.now()
	if err := a.checkValidity(now); err != nil {
		a.log.Error("refusing time-stamp: unit certificate", "err", err)
		return nil, reject(tsp.SystemFailure, "the TSA unit certificate is not valid now")
	}
	serial, err := a.serials.Next(ctx)
	if err != nil {
		a.log.Error("allocating a time-stamp serial", "err", err)
		return nil, failure(err)
	}
	info := tsp.TSTInfo{
		Policy: policy, MessageImprint: req.MessageImprint, SerialNumber: serial,
		GenTime: now, Accuracy: a.set.accuracy, Nonce: req.Nonce, Extensions: a.qcExt,
	}
	if a.set.includeTSAName {
		info.TSAName = a.cert.RawSubject
	}
	tst, err := info.Marshal()
	if err != nil {
		a.log.Error("encoding TSTInfo", "serial", serial, "err", err)
		return nil, reject(tsp.SystemFailure, "internal error")
	}
	// The record is durable before the key signs: no token exists that the
	// audit trail does not know.
	rec := TokenRecord{
		Serial: serial, GenTime: now.UTC().Truncate(time.Millisecond), HashAlgorithm: h,
		Imprint: bytes.Clone(req.MessageImprint.HashedMessage), Policy: policyName, Requester: requester,
	}
	if err := a.recorder.Record(ctx, rec); err != nil {
		a.log.Error("recording a time-stamp token", "serial", serial, "err", err)
		return nil, failure(err)
	}
	token, err := a.signer.SignAppend(append(dst, make([]byte, headroom)...), rand.Reader, tst, req.CertReq, a.set.includeChain, now)
	if err != nil {
		a.log.Error("signing a time-stamp token", "serial", serial, "err", err)
		return nil, failure(err)
	}
	if a.revoked.Load() {
		// Revoked while this request was recorded and signed (the
		// revocation committed meanwhile): its token is not handed out.
		a.log.Warn("time-stamp not returned: the unit was revoked while it was issued", "serial", serial)
		return nil, revokedRejection()
	}
	if err := a.issuerRevoked(); err != nil {
		// The root CRL naming the issuing CA was applied meanwhile.
		a.log.Warn("time-stamp not returned: the unit's issuing CA was revoked while it was issued", "serial", serial)
		return nil, issuerRevokedRejection(err)
	}
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.Debug("time-stamp issued", "serial", serial, "requester", requester)
	}
	return token, nil
}

// revokedRejection is the answer while the unit is revoked: unavailable
// until the new unit serves (a second or so), HTTP 503.
func revokedRejection() *rejection {
	return &rejection{fail: tsp.SystemFailure, text: "the TSA unit certificate is revoked; a new unit is being certified", cause: outage.Mark(ErrUnitRevoked)}
}
