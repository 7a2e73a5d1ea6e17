package ocsp

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/outage"
)

// StatusSource answers what the store knows. Status must return State
// Unknown for a serial the CA never issued; AllStatuses streams every
// certificate the CA issued (fn's error stops the stream and is returned).
type StatusSource interface {
	Status(ctx context.Context, issuer string, serial *big.Int) (Status, error)
	AllStatuses(ctx context.Context, issuer string, fn func(serial *big.Int, st Status) error) error
}

// ResponderRenewer issues a fresh responder certificate (ocsp-responder
// profile, key on the token) for an issuing CA before the current expires.
type ResponderRenewer interface {
	// RenewResponder replaces current, the responder certificate of the
	// CA issuer, which is due. Of the instances sharing one store, token
	// and data folder, one renews it and the others adopt what it made
	// (Adopted); an instance gets no responder (a nil Cert) while another
	// one renews it, and asks again at its next check.
	RenewResponder(ctx context.Context, issuer string, current *x509.Certificate) (ResponderRenewal, error)
}

// RevokedRenewer is a ResponderRenewer that records why it renews:
// RenewDue renews a responder whose certificate was revoked with
// RenewRevokedResponder (a new key, as always; the record says revoked).
type RevokedRenewer interface {
	RenewRevokedResponder(ctx context.Context, issuer string, current *x509.Certificate) (ResponderRenewal, error)
}

// ResponderRenewal is what ResponderRenewer.RenewResponder did.
type ResponderRenewal struct {
	// Responder replaces the current one; its Cert is nil while another
	// instance renews it.
	Responder ResponderCert
	// Adopted says another instance made it.
	Adopted bool
}

// Issuer is one issuing CA the responder is authoritative for.
type Issuer struct {
	Name      string // short name, e.g. "citizen"
	Cert      *x509.Certificate
	Responder ResponderCert
	// Previous, when set, is the responder Responder replaced: it signs
	// while the clock is before Responder's notBefore (a restart just
	// after a renewal, with the clock a little behind the CA's), as the
	// one a renewal replaces does (RenewDue).
	Previous *ResponderCert
	// Revoked says Responder's certificate is revoked (found as the
	// responder starts): it signs nothing, and the first RenewDue
	// replaces it.
	Revoked bool
}

type issuer struct {
	name    string
	cert    *x509.Certificate
	hashes  map[crypto.Hash][2][]byte // issuerNameHash, issuerKeyHash
	signing atomic.Pointer[signing]
}

// Responder answers OCSP requests for a set of issuing CAs.
type Responder struct {
	set     Settings
	log     *slog.Logger
	src     StatusSource
	cache   ResponseCache
	issuers map[string]*issuer // by name
	byHash  map[string]*issuer // by hash algorithm + name hash + key hash
	sem     chan struct{}
	now     func() time.Time
	m       *metrics
	// renewNow asks the Presigner for a renewal check now (a responder
	// just revoked).
	renewNow chan struct{}
}

// New builds a responder. Each issuer's responder certificate must be issued
// by it, carry the OCSPSigning EKU and match its signer.
func New(set Settings, issuers []Issuer, src StatusSource, cache ResponseCache, log *slog.Logger, reg prometheus.Registerer) (*Responder, error) {
	if src == nil || cache == nil || len(set.PresignHashes) == 0 || set.MaxConcurrentSigns < 1 || set.PresignWorkers < 1 {
		return nil, fmt.Errorf("%w: status source, cache and validated settings are required", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Responder{set: set, log: log, src: src, cache: cache, issuers: map[string]*issuer{}, byHash: map[string]*issuer{},
		sem: make(chan struct{}, set.MaxConcurrentSigns), now: time.Now, renewNow: make(chan struct{}, 1)}
	for _, is := range issuers {
		if is.Name == "" || is.Cert == nil {
			return nil, fmt.Errorf("%w: issuer name and certificate are required", ErrConfig)
		}
		if _, dup := r.issuers[is.Name]; dup {
			return nil, fmt.Errorf("%w: issuer %s twice", ErrConfig, is.Name)
		}
		sg, err := newSigning(is.Responder, is.Cert)
		if err != nil {
			return nil, fmt.Errorf("%w: responder of %s: %v", ErrConfig, is.Name, err)
		}
		if is.Previous != nil {
			prev, err := newSigning(*is.Previous, is.Cert)
			if err != nil {
				return nil, fmt.Errorf("%w: previous responder of %s: %v", ErrConfig, is.Name, err)
			}
			sg.previous = prev
		}
		if is.Revoked {
			sg.revoked.Store(true)
			select {
			case r.renewNow <- struct{}{}:
			default: // asked for already
			}
		}
		keyBits, err := publicKeyBits(is.Cert)
		if err != nil {
			return nil, err
		}
		in := &issuer{name: is.Name, cert: is.Cert, hashes: map[crypto.Hash][2][]byte{}}
		in.signing.Store(sg)
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			nh, kh := h.New(), h.New()
			nh.Write(is.Cert.RawSubject)
			kh.Write(keyBits)
			in.hashes[h] = [2][]byte{nh.Sum(nil), kh.Sum(nil)}
			r.byHash[hashKey(h, in.hashes[h][0], in.hashes[h][1])] = in
		}
		r.issuers[is.Name] = in
	}
	m, err := newMetrics(reg, cache, r.issuers)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

func hashKey(h crypto.Hash, nameHash, keyHash []byte) string {
	return string(rune(h)) + string(nameHash) + string(keyHash)
}

// errBusy means the on-demand signing limit was reached.
var errBusy = errors.New("too many on-demand signatures in flight")

// ErrResponderRevoked means the CA's responder certificate was revoked:
// it signs nothing more, and the answer is tryLater until its renewal (a
// new key) is in (RenewDue, at once).
var ErrResponderRevoked = errors.New("the OCSP responder certificate is revoked")

// Respond answers one DER request with a DER OCSPResponse, always (errors
// are OCSP error responses). entry is non-nil when the answer may be
// cached by HTTP caches (no nonce, one certificate).
func (r *Responder) Respond(ctx context.Context, der []byte) (resp []byte, entry *Entry) {
	req, err := ParseRequest(der)
	if err != nil {
		r.m.count(outMalformed)
		return respMalformed, nil
	}
	var is *issuer
	for _, id := range req.CertIDs {
		in := r.byHash[hashKey(id.Hash, id.IssuerNameHash, id.IssuerKeyHash)]
		if in == nil {
			r.m.count(outUnauthorized)
			return respUnauthorized, nil
		}
		if is != nil && is != in {
			// One response has one signer: a request mixing CAs is refused.
			r.m.count(outMalformed)
			return respMalformed, nil
		}
		is = in
	}
	if len(req.CertIDs) == 1 && req.Nonce == nil {
		id := req.CertIDs[0]
		if e, ok := r.cache.Get(is.name, id.Hash, id.Serial); ok && r.now().Before(e.NextUpdate.Add(-r.set.Validity/4)) && (e.by == nil || !e.by.revoked.Load()) {
			r.m.countState(e.State, true)
			return e.DER, e
		}
		e, err := r.signOne(ctx, is, id.Hash, id.Serial, sigMiss)
		if err != nil {
			return r.failure(ctx, err), nil
		}
		r.m.countState(e.State, false)
		return e.DER, e
	}
	// Nonce or several certificates: signed now, with fresh statuses.
	singles := make([]single, 0, len(req.CertIDs))
	now := r.now()
	for _, id := range req.CertIDs {
		st, err := r.status(ctx, is, id.Serial)
		if err != nil {
			return r.failure(ctx, err), nil
		}
		singles = append(singles, r.single(is, id.Raw, st, now))
	}
	der, _, err = r.sign(ctx, is, singles, req.Nonce, now, sigNonce)
	if err != nil {
		return r.failure(ctx, err), nil
	}
	for _, s := range singles {
		r.m.countState(s.status.State, false)
	}
	return der, nil
}

func (r *Responder) failure(ctx context.Context, err error) []byte {
	if errors.Is(err, errBusy) || outage.Is(err) || errors.Is(err, ErrResponderRevoked) {
		// Overloaded, or the status store or the responder key's token
		// cannot be used for now: RFC 6960's "try again later".
		if outage.Is(err) {
			r.log.WarnContext(ctx, "OCSP response unavailable for now", "err", err)
		}
		r.m.count(outTryLater)
		return respTryLater
	}
	r.log.ErrorContext(ctx, "OCSP response failed", "err", err)
	r.m.count(outInternal)
	return respInternal
}

func (r *Responder) status(ctx context.Context, is *issuer, serial *big.Int) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, r.set.StoreTimeout)
	defer cancel()
	st, err := r.src.Status(ctx, is.name, serial)
	if err != nil {
		return Status{}, fmt.Errorf("status of %s serial %x: %w", is.name, serial, err)
	}
	if st.State != Good && st.State != Revoked {
		st.State = Unknown // anything else is never "good"
	}
	if st.State == Revoked && st.RevokedAt.IsZero() {
		return Status{}, fmt.Errorf("status of %s serial %x: revoked without a time", is.name, serial)
	}
	return st, nil
}

// single builds one SingleResponse; nextUpdate never outlives the
// responder certificate.
func (r *Responder) single(is *issuer, certID []byte, st Status, now time.Time) single {
	next := now.Add(r.set.Validity)
	if na := is.signing.Load().at(now).cert.NotAfter; next.After(na) {
		next = na
	}
	return single{certID: certID, status: st, thisUpdate: now, nextUpdate: next}
}

// sign signs a response with is's responder at now and returns it with
// that responder.
func (r *Responder) sign(ctx context.Context, is *issuer, singles []single, nonce []byte, now time.Time, why sigReason) ([]byte, *signing, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	default:
		if why != sigPresign && why != sigRevoked {
			return nil, nil, errBusy
		}
		select { // background and revocation signing waits for a slot
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	defer func() { <-r.sem }()
	sg := is.signing.Load().at(now)
	if sg.revoked.Load() {
		return nil, nil, fmt.Errorf("%s: %w", is.name, ErrResponderRevoked)
	}
	if now.Before(sg.cert.NotBefore) || !now.Before(sg.cert.NotAfter) {
		return nil, nil, fmt.Errorf("%s: responder certificate not valid at %s (renewal overdue)", is.name, now.Format(time.RFC3339))
	}
	der, err := sg.sign(singles, nonce, now)
	sg.health.record(err) // what Ready says of the key
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", is.name, err)
	}
	if sg.revoked.Load() {
		// Revoked while it signed: the response is not handed out.
		return nil, nil, fmt.Errorf("%s: %w", is.name, ErrResponderRevoked)
	}
	r.m.signed(why)
	return der, sg, nil
}

// signOne looks up a serial's status, signs a cacheable response for it and
// caches it unless the status is unknown (the serial may be issued soon).
func (r *Responder) signOne(ctx context.Context, is *issuer, h crypto.Hash, serial *big.Int, why sigReason) (*Entry, error) {
	st, err := r.status(ctx, is, serial)
	if err != nil {
		return nil, err
	}
	return r.signStatus(ctx, is, h, serial, st, why)
}

func (r *Responder) signStatus(ctx context.Context, is *issuer, h crypto.Hash, serial *big.Int, st Status, why sigReason) (*Entry, error) {
	hs := is.hashes[h]
	now := r.now().UTC().Truncate(time.Second)
	sr := r.single(is, buildCertID(h, hs[0], hs[1], serial), st, now)
	der, sg, err := r.sign(ctx, is, []single{sr}, nil, now, why)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	e := &Entry{DER: der, State: st.State, ThisUpdate: sr.thisUpdate, NextUpdate: sr.nextUpdate, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`, by: sg}
	if st.State != Unknown {
		r.cache.Put(is.name, h, serial, e)
	}
	return e, nil
}

// Revoked replaces the cached responses of a just-revoked certificate, for
// every CertID hash algorithm, before the revocation API returns. The store
// must already report the revocation.
func (r *Responder) Revoked(ctx context.Context, issuerName string, serial *big.Int) error {
	is, ok := r.issuers[issuerName]
	if !ok {
		return fmt.Errorf("OCSP responder is not authoritative for %q", issuerName)
	}
	if r.responderRevoked(ctx, is, serial) {
		// Its own responder: nothing to sign with until the new one is
		// in, which pre-signs this CA's responses (this one's too).
		return nil
	}
	st, err := r.status(ctx, is, serial)
	if err != nil {
		return err
	}
	if st.State != Revoked {
		return fmt.Errorf("store reports %s serial %x as %s, not revoked", issuerName, serial, st.State)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if _, err := r.signStatus(ctx, is, h, serial, st, sigRevoked); err != nil {
			return fmt.Errorf("re-signing revoked response: %w", err)
		}
	}
	return nil
}

// responderRevoked marks is's responder (or the one it replaced) revoked
// when serial is its certificate's: it signs nothing more, its cached
// responses are not served, and the Presigner renews it at once. It
// reports whether serial is the certificate of the responder in use.
func (r *Responder) responderRevoked(ctx context.Context, is *issuer, serial *big.Int) bool {
	cur := is.signing.Load()
	if p := cur.previous; p != nil && p.cert.SerialNumber.Cmp(serial) == 0 && !p.revoked.Swap(true) {
		r.log.WarnContext(ctx, "the OCSP responder replaced last was revoked: it never signs again", "ca", is.name, "serial", hex.EncodeToString(serial.Bytes()))
	}
	if cur.cert.SerialNumber.Cmp(serial) != 0 {
		return false
	}
	if !cur.revoked.Swap(true) {
		r.log.ErrorContext(ctx, "the OCSP responder certificate was revoked: no responses signed with it (tryLater); renewing it with a new key now",
			"ca", is.name, "serial", hex.EncodeToString(serial.Bytes()))
		select {
		case r.renewNow <- struct{}{}:
		default: // a check is asked for already
		}
	}
	return true
}

// revokedInUse reports whether some CA's responder in use is revoked (not
// replaced yet).
func (r *Responder) revokedInUse() bool {
	for _, is := range r.issuers {
		if is.signing.Load().revoked.Load() {
			return true
		}
	}
	return false
}
