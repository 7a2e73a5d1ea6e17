package cmp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/policies"
)

// MaxMessage bounds a request's size: a certificate request with a few
// certificates in extraCerts fits many times over.
const MaxMessage = 64 << 10

// RAChecker says whether a certificate that signed a request belongs to a
// registration authority (an RA may enrol for any subject of a profile it
// names and revoke any certificate), returning the RA's name for the audit
// log, or an error when it does not.
type RAChecker func(ctx context.Context, cert *x509.Certificate, intermediates []*x509.Certificate) (string, error)

// Config wires a Server.
type Config struct {
	Enrol        *enrol.Service
	Transactions enrol.TransactionStore
	// Revoker revokes for rr and for a rejected certConf.
	Revoker enrol.Revoker
	// Issuer issues an RA's requests.
	Issuer enrol.Issuer
	// Key and Certificate sign the responses that no MAC protects.
	Key         crypto.Signer
	Certificate *x509.Certificate
	// CACertificates are the current issuing CAs, Root the root: genm's
	// caCerts and rootCaKeyUpdate.
	CACertificates []*x509.Certificate
	Root           *x509.Certificate
	// RA recognises RA certificates; nil: no RA may sign requests.
	RA     RAChecker
	Logger *slog.Logger
	// Metrics registers thiqa_cmp_requests_total; nil means none.
	Metrics prometheus.Registerer
}

// Server is the CMP server. It is safe for concurrent use.
type Server struct {
	c        Config
	sig      *signer
	log      *slog.Logger
	requests *prometheus.CounterVec
	// followUpFailed counts the follow-ups given up (giveUp).
	followUpFailed *prometheus.CounterVec
	// unrecordedWait bounds unrecorded (unrecordedTimeout; shorter in
	// tests).
	unrecordedWait time.Duration
	// refusals bounds the recorded refusals of one unauthenticated client
	// address, and of all addresses together (recordBounded).
	refusals *ratelimit.RefusalBudget
}

// New builds the server.
func New(c Config) (*Server, error) {
	if c.Enrol == nil || c.Transactions == nil || c.Revoker == nil || c.Issuer == nil || c.Key == nil || c.Certificate == nil || c.Root == nil {
		return nil, errors.New("cmp: enrol, transactions, revoker, issuer, key, certificate and root are required")
	}
	sig, err := newSigner(c.Key, c.Certificate)
	if err != nil {
		return nil, err
	}
	s := &Server{c: c, sig: sig, log: c.Logger, requests: newRequestsMetric(), followUpFailed: newFollowUpFailedMetric(), unrecordedWait: unrecordedTimeout,
		refusals: ratelimit.NewAnonymousRefusalBudget(time.Now)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if c.Metrics != nil {
		for _, m := range []prometheus.Collector{s.requests, s.followUpFailed} {
			if err := c.Metrics.Register(m); err != nil {
				return nil, fmt.Errorf("cmp: registering metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Mux is where the server mounts its routes.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// The routes of the CMP server (RFC 9483 §6.1).
const (
	PathCMP        = "POST /.well-known/cmp"
	PathCMPProfile = "POST /.well-known/cmp/p/{profile}"
)

// Register mounts the CMP routes: the messages authenticate themselves.
func (s *Server) Register(mux Mux) {
	mux.Handle(PathCMP, s)
	mux.Handle(PathCMPProfile, s)
}

// ServeHTTP answers one CMP message over HTTP (RFC 6712): every answer is
// a PKIMessage with status 200, errors included, except for requests that
// are not CMP at all.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxMessage+1))
	addr := clientip.FromRequest(r).Key()
	var resp []byte
	switch {
	case err != nil:
		http.Error(w, "reading the request", http.StatusBadRequest)
		return
	case len(body) > MaxMessage:
		e := failf(BadRequest, "message larger than %d bytes", MaxMessage)
		s.requests.WithLabelValues("unparsed", e.fail.String()).Inc()
		if err := s.recordBounded(addr, map[string]any{"failInfo": e.fail.String(), "size": ">" + fmt.Sprint(MaxMessage)}, func(d map[string]any) error {
			return s.c.Enrol.Refused(r.Context(), "", "cmp", "cmp", e, d)
		}); err != nil {
			e = errUnrecorded(err)
		}
		resp = s.errorReply(nil, e, nil)
	default:
		resp = s.handle(r.Context(), body, r.PathValue("profile"), addr)
	}
	w.Header().Set("Content-Type", "application/pkixcmp")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(resp)
}

// party is who protected a request.
type party struct {
	kind      string // "enrolment", "holder", "ra" or "" (unprotected)
	enrolment *enrol.Enrolment
	secret    []byte
	macAlg    pkix.AlgorithmIdentifier
	cert      *x509.Certificate
	rec       *ca.CertificateRecord
	actor     string
	// ra names the registration authority whose certificate signed the
	// request ("" when the signer is no RA).
	ra string
	// addr is the client address of an anonymous sender (an unprotected
	// genm): its records come out of the address's budget (recordBounded).
	addr string
}

// sender names the party in transaction records.
func (p *party) sender() string {
	switch p.kind {
	case "enrolment":
		return "ref:" + p.enrolment.Reference
	case "holder":
		return "cert:" + p.rec.Serial
	case "ra":
		return "ra:" + p.actor
	}
	return ""
}

// Handle answers one DER PKIMessage; profile is the {profile} of the path
// ("" for /.well-known/cmp). Its refusals are all recorded.
func (s *Server) Handle(ctx context.Context, der []byte, profile string) []byte {
	return s.handle(ctx, der, profile, "")
}

// handle is Handle for a message from the client address addr: the
// refusals of a message that is not authenticated are recorded within
// the address's budget (recordBounded).
func (s *Server) handle(ctx context.Context, der []byte, profile, addr string) []byte {
	m, e := parseMessage(der)
	if e != nil {
		s.requests.WithLabelValues("unparsed", e.fail.String()).Inc()
		if err := s.recordBounded(addr, map[string]any{"failInfo": e.fail.String()}, func(d map[string]any) error {
			return s.c.Enrol.Refused(ctx, "", "cmp", "cmp", e, d)
		}); err != nil {
			e = errUnrecorded(err)
		}
		return s.errorReply(nil, e, nil)
	}
	body := "other"
	if _, ok := bodyNames[m.bodyType]; ok {
		body = bodyName(m.bodyType)
	}
	p, e := s.authenticate(ctx, m)
	if e != nil {
		s.requests.WithLabelValues(body, e.fail.String()).Inc()
		return s.errorReply(m, s.refuseFrom(ctx, addr, m, p, e), nil)
	}
	if p.kind == "" {
		p.addr = addr // not authenticated: anyone may send it
	}
	out, e := s.dispatch(ctx, m, p, profile)
	if e != nil {
		s.requests.WithLabelValues(body, e.fail.String()).Inc()
		return s.errorReply(m, s.refuseFrom(ctx, p.addr, m, p, e), p)
	}
	s.requests.WithLabelValues(body, "accepted").Inc()
	return out
}

// authenticate checks the header and the protection and says who sent it.
func (s *Server) authenticate(ctx context.Context, m *message) (*party, *cmpError) {
	if m.header.PVNO != 2 && m.header.PVNO != 3 {
		return nil, failf(UnsupportedVersion, "pvno %d (want 2 or 3)", m.header.PVNO)
	}
	if len(m.header.TransactionID) < 1 || len(m.header.TransactionID) > 64 {
		return nil, failf(BadRequest, "a transactionID of 1 to 64 bytes is required")
	}
	if len(m.header.SenderNonce) < 1 || len(m.header.SenderNonce) > 64 {
		return nil, failf(BadSenderNonce, "a senderNonce of 1 to 64 bytes is required")
	}
	if !m.header.MessageTime.IsZero() {
		if d := s.c.Enrol.Now().Sub(m.header.MessageTime); d > 10*time.Minute || d < -10*time.Minute {
			return nil, failf(BadTime, "messageTime %s is more than 10 minutes off", m.header.MessageTime.UTC().Format(time.RFC3339))
		}
	}
	alg := m.header.ProtectionAlg
	switch {
	case len(m.raw.Protection.Bytes) == 0 || alg.Algorithm == nil:
		if m.bodyType == bodyGenM {
			return &party{actor: "anonymous"}, nil // the CA certificates are public
		}
		return nil, failf(BadMessageCheck, "the request is not protected")
	case isMAC(alg):
		return s.authenticateMAC(ctx, m)
	default:
		return s.authenticateSignature(ctx, m)
	}
}

func (s *Server) authenticateMAC(ctx context.Context, m *message) (*party, *cmpError) {
	ref := string(m.header.SenderKID)
	e, err := s.c.Enrol.Lookup(ctx, ref)
	if errors.Is(err, enrol.ErrNotFound) {
		return &party{actor: "enrolment:?"}, failf(BadMessageCheck, "unknown reference (senderKID)")
	}
	if err != nil {
		s.log.ErrorContext(ctx, "reading an enrolment", "err", err)
		return nil, systemError(err, "the enrolment could not be read")
	}
	secret := []byte(s.c.Enrol.Secret(ref))
	mac, ce := computeMAC(m.header.ProtectionAlg, secret, m.protectedBytes())
	p := &party{kind: "enrolment", enrolment: e, secret: secret, macAlg: m.header.ProtectionAlg, actor: "enrolment:" + ref}
	if ce != nil {
		return p, ce
	}
	if !hmacEqual(mac, m.raw.Protection.RightAlign()) {
		p.kind, p.secret = "", nil // never answer with a MAC the sender could not make
		return p, failf(BadMessageCheck, "the MAC does not verify with the enrolment's secret")
	}
	return p, nil
}

// hmacEqual compares MACs (and other values an attacker probes) in
// constant time.
func hmacEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

func (s *Server) authenticateSignature(ctx context.Context, m *message) (*party, *cmpError) {
	name, ok := m.senderName()
	if !ok {
		return nil, failf(BadMessageCheck, "a signed request must name its sender's certificate subject")
	}
	var cert *x509.Certificate
	for _, c := range m.extraCerts {
		if !sameName(name, c.RawSubject) {
			continue
		}
		if len(m.header.SenderKID) > 0 && len(c.SubjectKeyId) > 0 && !hmacEqual(c.SubjectKeyId, m.header.SenderKID) {
			continue
		}
		cert = c
		break
	}
	if cert == nil {
		return nil, failf(SignerNotTrusted, "no certificate of the sender in extraCerts")
	}
	if e := checkSignature(cert.PublicKey, m.header.ProtectionAlg, m.protectedBytes(), m.raw.Protection.RightAlign()); e != nil {
		return nil, e
	}
	ra := ""
	if s.c.RA != nil {
		if name, raErr := s.c.RA(ctx, cert, m.extraCerts); raErr == nil {
			ra = name
		}
	}
	rec, err := s.c.Enrol.Holder(ctx, cert)
	if err == nil {
		p := &party{kind: "holder", cert: cert, rec: rec, actor: "cert:" + rec.Serial, ra: ra}
		if ra != "" {
			p.actor = ra
		}
		return p, nil
	}
	if !errors.Is(err, enrol.ErrCertificateRefused) {
		s.log.ErrorContext(ctx, "checking a CMP signer certificate", "err", err)
		return nil, systemError(err, "the signer's certificate could not be checked")
	}
	if errors.Is(err, enrol.ErrRevoked) && m.bodyType == bodyCertConf {
		// A key update supersedes the certificate that asked for it; that
		// certificate still confirms the transaction it opened.
		if p := s.supersededHolder(ctx, m, cert); p != nil {
			return p, nil
		}
	}
	if errors.Is(err, enrol.ErrRevoked) {
		return &party{actor: "cert:" + hex.EncodeToString(cert.SerialNumber.Bytes())}, failf(CertRevoked, "%v", err)
	}
	if ra != "" {
		return &party{kind: "ra", cert: cert, actor: ra, ra: ra}, nil
	}
	return &party{actor: cert.Subject.String()}, failf(SignerNotTrusted, "%v", err)
}

// supersededHolder returns the holder of cert when cert opened the
// transaction of m and was revoked since (superseded by its key update).
func (s *Server) supersededHolder(ctx context.Context, m *message, cert *x509.Certificate) *party {
	serial := hex.EncodeToString(cert.SerialNumber.Bytes())
	tx, err := s.c.Transactions.GetTransaction(ctx, hex.EncodeToString(m.header.TransactionID))
	if err != nil || tx.Sender != "cert:"+serial || tx.State != "waiting" {
		return nil
	}
	rec, err := s.c.Enrol.Certificate(ctx, serial)
	if err != nil || !hmacEqual(rec.DER, cert.Raw) || rec.RevocationReason != 4 || rec.KeyBlocked {
		return nil
	}
	return &party{kind: "holder", cert: cert, rec: rec, actor: "cert:" + serial}
}

// dispatch answers an authenticated request by its body type.
func (s *Server) dispatch(ctx context.Context, m *message, p *party, profile string) ([]byte, *cmpError) {
	switch m.bodyType {
	case bodyIR, bodyCR, bodyP10CR, bodyKUR:
		// A transaction issues one certificate: a request reusing the ID of
		// one that did is refused before anything is issued.
		switch _, err := s.c.Transactions.GetTransaction(ctx, hex.EncodeToString(m.header.TransactionID)); {
		case err == nil:
			return nil, failf(TransactionIDInUse, "transaction ID already used")
		case !errors.Is(err, enrol.ErrNoTransaction):
			return nil, systemError(err, "the transaction could not be read")
		}
		if m.bodyType == bodyKUR {
			return s.keyUpdate(ctx, m, p)
		}
		return s.enrol(ctx, m, p, profile)
	case bodyRR:
		return s.revoke(ctx, m, p)
	case bodyCertConf:
		return s.confirm(ctx, m, p)
	case bodyGenM:
		return s.general(ctx, m, p)
	case bodyError:
		if err := s.c.Enrol.Audit(ctx, audit.Entry{Actor: p.actor, Action: "cmp.error", Object: hex.EncodeToString(m.header.TransactionID), Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"note": "the client reported an error and ended the transaction"}}); err != nil {
			return nil, errUnrecorded(err)
		}
		return s.reply(m, p, bodyPKIConf, asn1.NullBytes, nil, nil)
	}
	return nil, failf(BadRequest, "body type %s is not supported", bodyName(m.bodyType))
}

// enrol answers ir, cr and p10cr.
func (s *Server) enrol(ctx context.Context, m *message, p *party, profile string) ([]byte, *cmpError) {
	var key enrol.Key
	var req *certReq
	if m.bodyType == bodyP10CR {
		var csr asn1.RawValue
		if _, err := asn1.Unmarshal(m.body, &csr); err != nil {
			return nil, failf(BadDataFormat, "malformed p10cr")
		}
		c, err := x509.ParseCertificateRequest(csr.FullBytes)
		if err != nil {
			return nil, failf(BadDataFormat, "p10cr: %v", err)
		}
		if err := c.CheckSignature(); err != nil {
			return nil, failf(BadPOP, "the CSR's signature does not verify: %v", err)
		}
		key.CSR = csr.FullBytes
	} else {
		var e *cmpError
		if req, e = parseCertReqMessages(m.body); e != nil {
			return nil, e
		}
		if e := req.checkPOP(); e != nil {
			return nil, e
		}
		key.PublicKey, key.ProvedBy = req.publicKey, "crmf-signature"
	}
	var got *ca.Issued
	var err error
	switch {
	case p.kind == "enrolment":
		if profile != "" && profile != p.enrolment.Profile {
			return nil, failf(UnacceptedPolicy, "enrolment %s is for profile %s, not %s", p.enrolment.Reference, p.enrolment.Profile, profile)
		}
		got, err = s.c.Enrol.Enrol(ctx, p.enrolment, "cmp:"+hex.EncodeToString(m.header.TransactionID), key, "cmp")
	case p.ra != "":
		if profile == "" {
			return nil, failf(UnacceptedPolicy, "an RA names the profile in the path: /.well-known/cmp/p/{profile}")
		}
		r, e := s.raSubject(req, key, p.cert)
		if e != nil {
			return nil, e
		}
		r.Profile, r.CSR, r.PublicKey, r.PossessionProvedBy, r.RequestedBy = profile, key.CSR, key.PublicKey, key.ProvedBy, p.actor
		got, err = s.c.Issuer.Issue(ctx, r)
	default:
		return nil, failf(NotAuthorized, "%s needs a MAC under an enrolment's secret or an RA's signature", bodyName(m.bodyType))
	}
	if err != nil {
		if e := caFailure(err); e != nil {
			return nil, e
		}
		s.log.ErrorContext(ctx, "CMP enrolment failed", "err", err)
		return nil, systemError(err, "the certificate could not be issued")
	}
	respType := bodyIP
	if m.bodyType != bodyIR {
		respType = bodyCP
	}
	return s.certified(ctx, m, p, respType, req, got)
}

// raSubject reads the subject an RA asks for from the request: its fields,
// its serialNumber (ca.Request.SerialNumber), the attributes it repeats
// (ca.Request.SubjectRepeats) and what the certificate would not carry
// (ca.Request.SubjectUnsupported), for the CA to check. A certTemplate's
// subjectAltName is read as a CSR's is: its rfc822Name is the email.
// signer is the RA's certificate that signed the request: a template email
// that is the signer's own is refused as copied, not asked for.
func (s *Server) raSubject(req *certReq, key enrol.Key, signer *x509.Certificate) (ca.Request, *cmpError) {
	c := &x509.Certificate{}
	u := c // what SubjectUnsupported reads: c, less the names refused as copied
	var copied []*policies.SubjectError
	switch {
	case req != nil && req.subject != nil:
		c.Subject.FillFromRDNSequence(req.subject)
		exts, e := req.templateExtensions()
		if e != nil {
			return ca.Request{}, e
		}
		c.Extensions = exts
		others := exts // exts less the copied names, for SubjectUnsupported
		for i, x := range exts {
			if !x.Id.Equal(oidSubjectAltName) {
				continue
			}
			emails, _, err := ca.SubjectAltName(x.Value)
			if err != nil {
				return ca.Request{}, failf(BadCertTemplate, "template subjectAltName: %v", err)
			}
			c.EmailAddresses = append(c.EmailAddresses, emails...)
			// The certificate carries no other name (SubjectUnsupported
			// refuses them); one the signer's certificate names too was
			// copied, and is refused once, saying how to keep it out.
			names, rest := signerNames(x.Value, signer)
			for _, n := range names {
				copied = append(copied, &policies.SubjectError{Field: "subjectAltName", Reason: fmt.Sprintf(
					"the template's subjectAltName %s is the one of the RA certificate that signed the request "+
						"(openssl cmp copies its -cert's subjectAltName unless given -sans or -san_nodefault): give the holder's email, or none", n)})
			}
			if names != nil {
				others = slices.Clone(others)
				others[i].Value = rest
			}
		}
		if len(copied) > 0 {
			uc := *c
			uc.Extensions = others
			u = &uc
		}
		// openssl cmp fills the template's subjectAltName from its
		// reference certificate, the signer's own (-cert) for an ir or cr,
		// unless given -sans or -san_nodefault: the RA's email would be
		// certified as the citizen's.
		for _, e := range c.EmailAddresses {
			// Compared as a mail system does (case aside): Ra@Example.om
			// is the RA's address too.
			if signer != nil && slices.ContainsFunc(signer.EmailAddresses, func(s string) bool { return strings.EqualFold(s, e) }) {
				copied = append(copied, &policies.SubjectError{Field: policies.FieldEmail, Reason: fmt.Sprintf(
					"the template's subjectAltName email %s is the one of the RA certificate that signed the request "+
						"(openssl cmp copies it unless given -sans or -san_nodefault): give the holder's email, or none", e)})
			}
		}
	case len(key.CSR) > 0:
		csr, err := x509.ParseCertificateRequest(key.CSR)
		if err != nil {
			return ca.Request{}, failf(BadDataFormat, "%v", err)
		}
		c.Subject, c.EmailAddresses, c.Extensions = csr.Subject, csr.EmailAddresses, csr.Extensions
	default:
		return ca.Request{}, failf(BadCertTemplate, "the template names no subject")
	}
	return ca.Request{Subject: ca.SubjectFields(c), SerialNumber: c.Subject.SerialNumber, SubjectRepeats: ca.SubjectRepeats(c),
		SubjectUnsupported: append(ca.SubjectUnsupported(u), copied...), Extensions: c.Extensions}, nil
}

// keyUpdate answers kur: the holder's current certificate signed it.
func (s *Server) keyUpdate(ctx context.Context, m *message, p *party) ([]byte, *cmpError) {
	if p.kind != "holder" {
		return nil, failf(NotAuthorized, "kur must be signed with the current certificate's key")
	}
	req, e := parseCertReqMessages(m.body)
	if e != nil {
		return nil, e
	}
	if req.oldCert != nil && req.oldCert.SerialNumber.Cmp(p.cert.SerialNumber) != 0 {
		return nil, failf(BadCertID, "oldCertID names another certificate than the one that signed the request")
	}
	if e := req.checkPOP(); e != nil {
		return nil, e
	}
	// Without implicit confirmation the current certificate stays valid
	// until the holder confirms the new one (confirm supersedes it then):
	// a response lost, or a certificate rejected or never confirmed (and
	// revoked for it), leaves the holder its current certificate to try
	// again with, rather than none.
	reenrol := s.c.Enrol.ReenrolUnconfirmed
	if m.hasGeneralInfo(oidImplicitConfirm) {
		reenrol = s.c.Enrol.Reenrol
	}
	got, err := reenrol(ctx, p.cert, p.rec, enrol.Key{PublicKey: req.publicKey, ProvedBy: "crmf-signature"}, p.actor)
	if err != nil {
		if e := caFailure(err); e != nil {
			return nil, e
		}
		if got == nil {
			s.log.ErrorContext(ctx, "CMP key update failed", "err", err)
			return nil, systemError(err, "the certificate could not be issued")
		}
		s.log.WarnContext(ctx, "CMP key update issued with an error", "err", err)
	}
	return s.certified(ctx, m, p, bodyKUP, req, got)
}

// certified records the transaction and answers with the certificate.
func (s *Server) certified(ctx context.Context, m *message, p *party, respType int, req *certReq, got *ca.Issued) ([]byte, *cmpError) {
	implicit := m.hasGeneralInfo(oidImplicitConfirm)
	tx := enrol.Transaction{ID: hex.EncodeToString(m.header.TransactionID), Sender: p.sender(), Serial: got.Serial,
		CertHash: sha256.Sum256(got.Certificate.Raw), Created: s.c.Enrol.Now().UTC(), State: "waiting"}
	if implicit {
		tx.State, tx.Closed = "implicit", tx.Created
	}
	if err := s.c.Transactions.InsertTransaction(ctx, tx); err != nil {
		s.log.ErrorContext(ctx, "recording a CMP transaction", "transactionID", tx.ID, "serial", got.Serial, "implicit", implicit, "err", err)
		if !implicit {
			// Without the record no certConf could confirm the
			// certificate, nor the sweep revoke it: not sent, revoked.
			return nil, s.unrecorded(ctx, tx, err)
		}
		// Implicitly confirmed: nothing waits for the record (it only
		// refuses the transaction ID again), and the certificate is the
		// client's.
	}
	kp, err := asn1.Marshal(struct{ Cert asn1.RawValue }{asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: got.Certificate.Raw}})
	if err != nil {
		return nil, failf(SystemFailure, "encoding the answer")
	}
	// The request's certReqId; a p10cr has none, and its answer carries -1
	// (RFC 9810 §5.3.4, which corrects RFC 4210 on this).
	id := -1
	if req != nil {
		id = int(req.id.Int64())
	}
	rep := certRepMessage{Response: []certResponse{{CertReqID: id, Status: pkiStatusInfo{Status: statusAccepted}, CertifiedKeyPair: asn1.RawValue{FullBytes: kp}}}}
	if p.kind == "enrolment" && respType == bodyIP {
		rep.CAPubs = []asn1.RawValue{{FullBytes: s.c.Root.Raw}}
	}
	body, err := asn1.Marshal(rep)
	if err != nil {
		return nil, failf(SystemFailure, "encoding the answer")
	}
	var extra [][]byte
	for _, c := range got.Chain {
		extra = append(extra, c.Raw)
	}
	info, err := confirmInfo(implicit, tx.Created)
	if err != nil {
		return nil, failf(SystemFailure, "encoding the answer")
	}
	return s.reply(m, p, respType, body, extra, info)
}

// revoke answers rr: by the certificate's holder (signed with it) or an RA.
func (s *Server) revoke(ctx context.Context, m *message, p *party) ([]byte, *cmpError) {
	serial, issuer, reason, e := parseRevDetails(m.body)
	if e != nil {
		return nil, e
	}
	if p.kind != "holder" && p.ra == "" {
		return nil, failf(NotAuthorized, "rr must be signed by the certificate's holder or an RA")
	}
	if p.ra == "" {
		if serial.Cmp(p.cert.SerialNumber) != 0 || (issuer != nil && !sameName(*issuer, p.cert.RawIssuer)) {
			return nil, failf(NotAuthorized, "a holder revokes only the certificate that signed the request")
		}
	}
	reasonName := revocation.Reason(reason).String()
	if _, err := revocation.ParseReason(reasonName); err != nil {
		return nil, failf(BadRequest, "revocation reason %d is not accepted", reason)
	}
	_, err := s.c.Revoker.Revoke(ctx, p.actor, hex.EncodeToString(serial.Bytes()), reasonName, nil)
	switch {
	case errors.Is(err, revocation.ErrNotFound), errors.Is(err, revocation.ErrBadSerial):
		return nil, failf(BadCertID, "%v", err)
	case errors.Is(err, revocation.ErrAlreadyRevoked):
		return nil, failf(CertRevoked, "%v", err)
	case errors.Is(err, revocation.ErrBadReason):
		return nil, failf(BadRequest, "%v", err)
	case errors.Is(err, revocation.ErrNotPermitted):
		return nil, failf(NotAuthorized, "%v", err)
	case err != nil:
		s.log.ErrorContext(ctx, "CMP revocation failed", "err", err)
		return nil, systemError(err, "the revocation could not be recorded")
	}
	body, err := asn1.Marshal(revRepContent{Status: []pkiStatusInfo{{Status: statusAccepted}}})
	if err != nil {
		return nil, failf(SystemFailure, "encoding the answer")
	}
	return s.reply(m, p, bodyRP, body, nil, nil)
}

// general answers genm: caCerts (also for an empty genm) and the root CA
// update (none: the answer carries no value).
func (s *Server) general(ctx context.Context, m *message, p *party) ([]byte, *cmpError) {
	var asked []infoTypeAndValue
	if rest, err := asn1.Unmarshal(m.body, &asked); err != nil || len(rest) > 0 {
		return nil, failf(BadDataFormat, "malformed GenMsgContent")
	}
	if len(asked) == 0 {
		asked = []infoTypeAndValue{{Type: oidCACerts}}
	}
	var out []infoTypeAndValue
	for _, it := range asked {
		switch {
		case it.Type.Equal(oidCACerts):
			var certs []asn1.RawValue
			for _, c := range append(append([]*x509.Certificate(nil), s.c.CACertificates...), s.c.Root) {
				certs = append(certs, asn1.RawValue{FullBytes: c.Raw})
			}
			v, err := asn1.Marshal(certs)
			if err != nil {
				return nil, failf(SystemFailure, "encoding the CA certificates")
			}
			out = append(out, infoTypeAndValue{Type: oidCACerts, Value: asn1.RawValue{FullBytes: v}})
		case it.Type.Equal(oidRootCACert), it.Type.Equal(oidRootCAKeyUpdate):
			// One root, no key update under way: rootCaKeyUpdate without a value.
			out = append(out, infoTypeAndValue{Type: oidRootCAKeyUpdate})
		default:
			out = append(out, infoTypeAndValue{Type: it.Type}) // known to be unanswered
		}
	}
	body, err := asn1.Marshal(out)
	if err != nil {
		return nil, failf(SystemFailure, "encoding the answer")
	}
	if err := s.recordGenm(ctx, p); err != nil {
		return nil, errUnrecorded(err)
	}
	return s.reply(m, p, bodyGenP, body, nil, nil)
}

// reply builds and protects a response to m, with info as the header's
// generalInfo: with a MAC under the sender's secret when its MAC
// verified, else signed.
func (s *Server) reply(m *message, p *party, bodyType int, body []byte, extra [][]byte, info []infoTypeAndValue) ([]byte, *cmpError) {
	out, err := s.build(m, p, bodyType, body, extra, info)
	if err != nil {
		s.log.Error("building a CMP response", "err", err)
		return nil, systemError(err, "the answer could not be built")
	}
	return out, nil
}

func (s *Server) build(m *message, p *party, bodyType int, body []byte, extra [][]byte, info []infoTypeAndValue) ([]byte, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	h := pkiHeader{PVNO: 2, Sender: generalName(s.c.Certificate.RawSubject), MessageTime: s.c.Enrol.Now().UTC().Truncate(time.Second), SenderNonce: nonce}
	h.Recipient = generalName([]byte{0x30, 0}) // NULL-DN when the sender is unknown
	if m != nil {
		h.PVNO = m.header.PVNO
		if h.PVNO != 3 {
			h.PVNO = 2
		}
		h.Recipient = m.header.Sender
		h.TransactionID = m.header.TransactionID
		h.RecipNonce = m.header.SenderNonce
	}
	h.GeneralInfo = info
	mac := p != nil && p.kind == "enrolment" && p.secret != nil
	if mac {
		alg, err := freshMAC(p.macAlg)
		if err != nil {
			return nil, err
		}
		h.ProtectionAlg = alg
		h.SenderKID = m.header.SenderKID
	} else {
		h.ProtectionAlg = s.sig.alg
		h.SenderKID = s.c.Certificate.SubjectKeyId
	}
	hDER, err := asn1.Marshal(h)
	if err != nil {
		return nil, err
	}
	bDER, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: bodyType, IsCompound: true, Bytes: body})
	if err != nil {
		return nil, err
	}
	part, err := asn1.Marshal(protectedPart{Header: asn1.RawValue{FullBytes: hDER}, Body: asn1.RawValue{FullBytes: bDER}})
	if err != nil {
		return nil, err
	}
	var prot []byte
	var certs []asn1.RawValue
	if mac {
		var ce *cmpError
		if prot, ce = computeMAC(h.ProtectionAlg, p.secret, part); ce != nil {
			return nil, ce
		}
	} else {
		if prot, err = s.sig.sign(part); err != nil {
			return nil, err
		}
		certs = append(certs, asn1.RawValue{FullBytes: s.c.Certificate.Raw})
	}
	for _, c := range extra {
		certs = append(certs, asn1.RawValue{FullBytes: c})
	}
	return asn1.Marshal(rawMessage{Header: asn1.RawValue{FullBytes: hDER}, Body: asn1.RawValue{FullBytes: bDER},
		Protection: asn1.BitString{Bytes: prot, BitLength: 8 * len(prot)}, ExtraCerts: certs})
}

// errorReply answers with an error message (RFC 4210 §5.3.21): failInfo
// and the reason. It is MAC-protected when the request's MAC verified,
// signed otherwise.
func (s *Server) errorReply(m *message, e *cmpError, p *party) []byte {
	body, err := asn1.Marshal(errorMsgContent{Status: pkiStatusInfo{Status: statusRejection, StatusString: freeText(e.detail), FailInfo: e.fail.bits()},
		ErrorDetails: freeText(e.fail.String())})
	if err == nil {
		var out []byte
		if out, err = s.build(m, p, bodyError, body, nil, nil); err == nil {
			return out
		}
	}
	s.log.Error("building a CMP error message", "err", err)
	return nil
}
