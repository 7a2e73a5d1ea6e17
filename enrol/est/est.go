// Package est is Thiqa's EST server (RFC 7030, Enrollment over Secure
// Transport) under /.well-known/est/: cacerts, simpleenroll,
// simplereenroll and csrattrs. Server-side key generation (serverkeygen)
// is not offered: no profile lets a subject key leave the place it was
// made (a key the service makes lives on its token and never leaves it).
//
// EST runs over TLS only. A client enrols with HTTP Basic (user: an
// enrolment's reference, password: its secret; package enrol: the
// subject and profile are the enrolment's, the secret is single use) or
// with a TLS client certificate of a registration officer (an RA: the
// profile is the path label, /.well-known/est/{profile}/simpleenroll, the
// subject is the CSR's, checked by the profile), and re-enrols with its
// current certificate as the TLS client certificate: the new certificate
// has the current one's subject and profile, and supersedes it.
//
// Answers are base64 certs-only CMS SignedData (application/pkcs7-mime),
// built here with encoding/asn1.
package est

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/policies"
)

// The routes of the EST server.
const (
	PathCACerts             = "GET /.well-known/est/cacerts"
	PathCSRAttrs            = "GET /.well-known/est/csrattrs"
	PathSimpleEnroll        = "POST /.well-known/est/simpleenroll"
	PathSimpleEnrollLabel   = "POST /.well-known/est/{label}/simpleenroll"
	PathSimpleReenroll      = "POST /.well-known/est/simplereenroll"
	PathSimpleReenrollLabel = "POST /.well-known/est/{label}/simplereenroll"
)

// maxCSR bounds an enrolment request (a base64 CSR).
const maxCSR = 32 << 10

// Config wires a Server.
type Config struct {
	Enrol  *enrol.Service
	Issuer enrol.Issuer
	// CACertificates are the current issuing CAs' certificates and Root
	// the root: what cacerts answers.
	CACertificates []*x509.Certificate
	Root           *x509.Certificate
	// Authenticate identifies a TLS client as an API caller
	// ((*auth.Authenticator).Authenticate): an RA is a registration
	// officer. Nil: no RA enrolment.
	Authenticate func(*http.Request) (*auth.Principal, error)
	Logger       *slog.Logger
	// Metrics registers thiqa_est_requests_total; nil means none.
	Metrics prometheus.Registerer
}

// Server is the EST server.
type Server struct {
	c        Config
	cacerts  []byte
	log      *slog.Logger
	requests *prometheus.CounterVec
	// refusals bounds the recorded refusals of one client address that
	// did not authenticate: plain HTTP (requireEnrolTLS) and unknown or
	// wrong credentials over TLS (fail, 401); and the same refusals of all
	// addresses together (recordRefusal).
	refusals *ratelimit.RefusalBudget
}

// New builds the server.
func New(c Config) (*Server, error) {
	if c.Enrol == nil || c.Issuer == nil || c.Root == nil {
		return nil, errors.New("est: enrol, issuer and root are required")
	}
	var certs [][]byte
	for _, x := range c.CACertificates {
		certs = append(certs, x.Raw)
	}
	certs = append(certs, c.Root.Raw)
	p7, err := CertsOnly(certs...)
	if err != nil {
		return nil, err
	}
	s := &Server{c: c, cacerts: p7, log: c.Logger,
		refusals: ratelimit.NewAnonymousRefusalBudget(time.Now),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_est_requests_total", Help: "EST enrolment requests by operation and HTTP status.",
		}, []string{"operation", "status"})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if c.Metrics != nil {
		if err := c.Metrics.Register(s.requests); err != nil {
			return nil, fmt.Errorf("est: registering metrics: %w", err)
		}
	}
	return s, nil
}

// Mux is where the server mounts its routes.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Register mounts the EST routes; they authenticate their callers
// themselves.
func (s *Server) Register(mux Mux) {
	mux.Handle(PathCACerts, http.HandlerFunc(s.serveCACerts))
	mux.Handle(PathCSRAttrs, http.HandlerFunc(s.serveCSRAttrs))
	mux.Handle(PathSimpleEnroll, http.HandlerFunc(s.serveEnroll))
	mux.Handle(PathSimpleEnrollLabel, http.HandlerFunc(s.serveEnroll))
	mux.Handle(PathSimpleReenroll, http.HandlerFunc(s.serveReenroll))
	mux.Handle(PathSimpleReenrollLabel, http.HandlerFunc(s.serveReenroll))
}

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
)

// CertsOnly returns a degenerate certs-only CMS SignedData (RFC 5652,
// RFC 7030 §4.1.3) holding the DER certificates: no content, no signers.
func CertsOnly(certs ...[]byte) ([]byte, error) {
	sorted := append([][]byte(nil), certs...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 }) // DER SET OF order
	var set []byte
	for _, c := range sorted {
		set = append(set, c...)
	}
	type encap struct{ ContentType asn1.ObjectIdentifier }
	sd := struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo encap
		Certificates     asn1.RawValue
		SignerInfos      asn1.RawValue
	}{
		Version:          1,
		DigestAlgorithms: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: []byte{}},
		EncapContentInfo: encap{ContentType: oidData},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: set},
		SignerInfos:      asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: []byte{}},
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}{oidSignedData, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}})
}

// writePKCS7 answers base64 certs-only CMS.
func writePKCS7(w http.ResponseWriter, der []byte) {
	w.Header().Set("Content-Type", "application/pkcs7-mime; smime-type=certs-only")
	w.Header().Set("Content-Transfer-Encoding", "base64")
	writeBase64(w, der)
}

func writeBase64(w io.Writer, der []byte) {
	b := base64.StdEncoding.EncodeToString(der)
	var out strings.Builder
	for len(b) > 64 {
		out.WriteString(b[:64] + "\n")
		b = b[64:]
	}
	out.WriteString(b + "\n")
	_, _ = io.WriteString(w, out.String())
}

func (s *Server) serveCACerts(w http.ResponseWriter, r *http.Request) {
	if !s.requireTLS(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writePKCS7(w, s.cacerts)
}

// csrAttrs asks for a P-256 key signed with ECDSA with SHA-256 (RFC 7030
// §4.5.2): what every profile accepts.
var csrAttrs = func() []byte {
	type attr struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.ObjectIdentifier `asn1:"set"`
	}
	ecdsaWithSHA256 := asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	ecPublicKey, p256 := asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	a, _ := asn1.Marshal(attr{Type: ecPublicKey, Values: []asn1.ObjectIdentifier{p256}})
	o, _ := asn1.Marshal(ecdsaWithSHA256)
	der, _ := asn1.Marshal([]asn1.RawValue{{FullBytes: o}, {FullBytes: a}})
	return der
}()

func (s *Server) serveCSRAttrs(w http.ResponseWriter, r *http.Request) {
	if !s.requireTLS(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/csrattrs")
	w.Header().Set("Content-Transfer-Encoding", "base64")
	writeBase64(w, csrAttrs)
}

// requireTLS refuses a request that did not come over TLS.
func (s *Server) requireTLS(w http.ResponseWriter, r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	problem.Write(w, problem.Details{Status: http.StatusForbidden, Title: "TLS required", Detail: "EST is served over TLS only (RFC 7030 §3.2.3)", Instance: r.URL.Path})
	return false
}

// errTLSRequired is the refusal of an enrolment request that did not come
// over TLS.
var errTLSRequired = errors.New("EST is served over TLS only (RFC 7030 §3.2.3)")

// requireEnrolTLS is requireTLS for simpleenroll and simplereenroll: the
// refusal is recorded before it is answered (enrolment.refused), naming the
// enrolment whose reference came in HTTP Basic, whose secret then crossed
// the network in clear (secretInClear: treat it as disclosed), never the
// secret; a user name that is no reference is not named. When it cannot
// be recorded the answer is 500. Past the address's budget (ratelimit.NewAnonymousRefusalBudget) only the first refusal of each run is recorded, and none
// past the overall budget (recordRefusal).
func (s *Server) requireEnrolTLS(w http.ResponseWriter, r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	p := problem.Details{Status: http.StatusForbidden, Title: "TLS required", Detail: errTLSRequired.Error(), Instance: r.URL.Path}
	details := map[string]any{"status": http.StatusForbidden, "remote": r.RemoteAddr}
	record, undo := s.recordRefusal(r, details, "further plain-HTTP refusals of this address in a row are counted in thiqa_est_requests_total, not recorded")
	if !record {
		s.requests.WithLabelValues(operation(r), fmt.Sprint(p.Status)).Inc()
		problem.Write(w, p)
		return false
	}
	actor := ""
	if ref, _, ok := r.BasicAuth(); ok {
		actor, details["secretInClear"] = referenceActor(ref), true
	}
	if err := s.c.Enrol.Refused(context.WithoutCancel(r.Context()), actor, "est:"+r.URL.Path, "est", errTLSRequired, details); err != nil {
		undo() // the run's next refusal is recorded instead
		p = problem.Details{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the audit log is unavailable", Instance: r.URL.Path}
		if outage.Is(err) {
			p = problem.UnavailableDetails(r.URL.Path)
		}
	}
	s.requests.WithLabelValues(operation(r), fmt.Sprint(p.Status)).Inc()
	problem.Write(w, p)
	return false
}

// recordRefusal says whether to record a refusal of r that did not
// authenticate: within its address's budget (ratelimit.NewAnonymousRefusalBudget;
// past it the first of each run, noted with note) and the
// service's overall budget (ratelimit.OverallBurst, OverallRate) of such
// records. Past either it is answered as always, counted in
// thiqa_est_requests_total, not recorded; the next recorded one carries
// how many the overall budget left unrecorded (unrecordedOverall). undo,
// when record is true, is for a record that cannot be written: the run's
// next refusal is recorded instead.
func (s *Server) recordRefusal(r *http.Request, details map[string]any, note string) (record bool, undo func()) {
	v := s.refusals.Take(clientip.FromRequest(r).Key())
	if !v.Record {
		return false, nil
	}
	if v.Unrecorded > 0 {
		details["unrecordedOverall"] = v.Unrecorded
	}
	if v.Past {
		details["note"] = note
	}
	return true, v.Undo
}

// referenceActor is the actor of a refusal of a request whose HTTP Basic
// user name was ref: the enrolment when ref has a reference's form, else
// "" (unknown). A user name of any other form is the caller's text: named,
// a long one made the record too large to write, and a 401 a 500.
func referenceActor(ref string) string {
	if !enrol.ValidReference(ref) {
		return ""
	}
	return "enrolment:" + ref
}

// readCSR reads the base64 DER PKCS #10 of an enrolment request and
// checks its signature.
func readCSR(w http.ResponseWriter, r *http.Request) ([]byte, *x509.CertificateRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCSR))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: request body: %v", errBadRequest, err)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the body is not base64 (RFC 7030 §4.2.1 wants a base64 DER PKCS #10)", errBadRequest)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: not a PKCS #10 request: %v", errBadRequest, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("%w: the CSR's signature does not verify: %v", errBadRequest, err)
	}
	return der, csr, nil
}

var (
	errBadRequest   = errors.New("bad request")
	errUnauthorized = errors.New("unauthorized")
	errForbidden    = errors.New("forbidden")
)

// serveEnroll serves simpleenroll.
func (s *Server) serveEnroll(w http.ResponseWriter, r *http.Request) {
	if !s.requireEnrolTLS(w, r) {
		return
	}
	ctx := r.Context()
	label := r.PathValue("label")
	der, csr, err := readCSR(w, r)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	if ref, secret, ok := r.BasicAuth(); ok {
		e, err := s.c.Enrol.CheckSecret(ctx, ref, secret)
		if err != nil {
			s.fail(w, r, referenceActor(ref), err)
			return
		}
		if label != "" && label != e.Profile {
			s.fail(w, r, "enrolment:"+ref, fmt.Errorf("%w: enrolment %s is for profile %s, not %s", errForbidden, ref, e.Profile, label))
			return
		}
		claim := make([]byte, 16)
		_, _ = rand.Read(claim)
		got, err := s.c.Enrol.Enrol(ctx, e, "est:"+hex.EncodeToString(claim), enrol.Key{CSR: der}, "est")
		if err != nil {
			s.fail(w, r, "enrolment:"+ref, err)
			return
		}
		s.issued(w, r, got)
		return
	}
	if s.c.Authenticate != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		pr, err := s.c.Authenticate(r)
		if err != nil || !pr.Has(policies.RoleRegistrationOfficer) {
			s.fail(w, r, "", fmt.Errorf("%w: the client certificate is not a registration officer's (RA) certificate", errForbidden))
			return
		}
		if label == "" {
			s.fail(w, r, pr.Subject, fmt.Errorf("%w: an RA names the profile in the path: /.well-known/est/{profile}/simpleenroll", errBadRequest))
			return
		}
		// The CSR's requested extensions too: the CA refuses what it would
		// not carry (ca.SubjectUnsupported), an OU or a dNSName alike.
		c := &x509.Certificate{Subject: csr.Subject, EmailAddresses: csr.EmailAddresses, Extensions: csr.Extensions}
		c.Subject.Names = csr.Subject.Names
		got, err := s.c.Issuer.Issue(auth.WithPrincipal(ctx, pr), ca.Request{Profile: label, Subject: ca.SubjectFields(c),
			SerialNumber: c.Subject.SerialNumber, SubjectRepeats: ca.SubjectRepeats(c), SubjectUnsupported: ca.SubjectUnsupported(c), Extensions: c.Extensions,
			CSR: der, RequestedBy: pr.Subject})
		if err != nil {
			s.fail(w, r, pr.Subject, err)
			return
		}
		s.issued(w, r, got)
		return
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="thiqa-est", charset="UTF-8"`)
	s.fail(w, r, "", fmt.Errorf("%w: HTTP Basic with an enrolment's reference and secret, or an RA's client certificate, is required", errUnauthorized))
}

// serveReenroll serves simplereenroll: the TLS client certificate is the
// current one.
func (s *Server) serveReenroll(w http.ResponseWriter, r *http.Request) {
	if !s.requireEnrolTLS(w, r) {
		return
	}
	ctx := r.Context()
	if len(r.TLS.VerifiedChains) == 0 {
		s.fail(w, r, "", fmt.Errorf("%w: re-enrolment needs the current certificate as the TLS client certificate", errUnauthorized))
		return
	}
	cur := r.TLS.VerifiedChains[0][0]
	actor := "cert:" + hex.EncodeToString(cur.SerialNumber.Bytes())
	rec, err := s.c.Enrol.Holder(ctx, cur)
	if err != nil {
		s.fail(w, r, actor, err)
		return
	}
	der, _, err := readCSR(w, r)
	if err != nil {
		s.fail(w, r, actor, err)
		return
	}
	got, err := s.c.Enrol.Reenrol(ctx, cur, rec, enrol.Key{CSR: der}, actor)
	if err != nil && got == nil {
		s.fail(w, r, actor, err)
		return
	}
	if err != nil {
		s.log.WarnContext(ctx, "EST re-enrolment issued with an error", "err", err)
	}
	s.issued(w, r, got)
}

// operation names an enrolment route for the metrics.
func operation(r *http.Request) string {
	if strings.HasSuffix(r.URL.Path, "/simplereenroll") {
		return "simplereenroll"
	}
	return "simpleenroll"
}

func (s *Server) issued(w http.ResponseWriter, r *http.Request, got *ca.Issued) {
	s.requests.WithLabelValues(operation(r), "200").Inc()
	p7, err := CertsOnly(got.Certificate.Raw)
	if err != nil {
		http.Error(w, "encoding the answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writePKCS7(w, p7)
}

// fail answers a refusal with its HTTP status and a problem body, and
// audits it (the CA audits its own refusals); a refusal whose record
// cannot be written is answered 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, actor string, err error) {
	p := problem.Details{Instance: r.URL.Path, Detail: err.Error()}
	var we *ca.WeakKeyError
	var le *ca.LintError
	var re *ca.RequestError
	var se *policies.SubjectError
	caRefusal := false
	switch {
	case errors.Is(err, errBadRequest), errors.As(err, new(*enrol.RequestError)):
		p.Status, p.Title = http.StatusBadRequest, "Bad request"
	case errors.Is(err, ca.ErrNotPermitted), errors.Is(err, ca.ErrNotRenewable):
		p.Status, p.Title, caRefusal = http.StatusForbidden, "Not allowed", true
	case errors.Is(err, ca.ErrAlreadyRenewed), errors.Is(err, ca.ErrCryptoPeriod):
		p.Status, p.Title, caRefusal = http.StatusConflict, "Conflict", true
	case errors.Is(err, ca.ErrSameKey), errors.Is(err, ca.ErrKeyOtherSubject):
		p.Status, p.Title, caRefusal = http.StatusBadRequest, "Refused by the CA", true
	case errors.Is(err, errUnauthorized), errors.Is(err, enrol.ErrBadSecret), errors.Is(err, enrol.ErrNotFound):
		p.Status, p.Title = http.StatusUnauthorized, "Not authenticated"
		w.Header().Set("WWW-Authenticate", `Basic realm="thiqa-est", charset="UTF-8"`)
	case errors.Is(err, errForbidden), errors.Is(err, enrol.ErrUsed), errors.Is(err, enrol.ErrVoid), errors.Is(err, enrol.ErrExpired), errors.Is(err, enrol.ErrCertificateRefused):
		p.Status, p.Title = http.StatusForbidden, "Not allowed"
	case errors.Is(err, enrol.ErrBusy), errors.Is(err, ca.ErrDuplicateRequest):
		p.Status, p.Title, caRefusal = http.StatusConflict, "Conflict", true
	case errors.Is(err, policies.ErrUnknownProfile), errors.Is(err, ca.ErrBadCSR), errors.Is(err, ca.ErrKeyBlocked),
		errors.As(err, &we), errors.As(err, &re), errors.As(err, &se):
		p.Status, p.Title, caRefusal = http.StatusBadRequest, "Refused by the CA", true
	case errors.As(err, &le):
		p.Status, p.Title, caRefusal = http.StatusUnprocessableEntity, "Certificate failed pre-issuance lints", true
	case errors.Is(err, ca.ErrIssuerExpiring):
		// The CA's condition, not the client's, and no retry helps until its
		// operators roll it over: 500 (no Retry-After) with the reason.
		p.Status, p.Type, p.Title, caRefusal = http.StatusInternalServerError, ca.ProblemIssuerExpiring, "Issuing CA at the end of its validity", true
	case errors.Is(err, ca.ErrIssuerRevoked):
		// As the CA API answers it (ca.ProblemIssuerRevoked): the CA's
		// state, no retry helps until its operators roll it over.
		p.Status, p.Type, p.Title, caRefusal = http.StatusConflict, ca.ProblemIssuerRevoked, "Issuing CA revoked by the root", true
	case outage.Is(err):
		s.log.ErrorContext(r.Context(), "EST request failed", "path", r.URL.Path, "err", err)
		p = problem.UnavailableDetails(r.URL.Path)
	default:
		s.log.ErrorContext(r.Context(), "EST request failed", "path", r.URL.Path, "err", err)
		p.Status, p.Title, p.Detail = http.StatusInternalServerError, "Internal error", "the request could not be served; see the server log"
	}
	record, details, undo := !caRefusal || errors.Is(err, enrol.ErrBusy), map[string]any{"status": p.Status}, func() {}
	if record && p.Status == http.StatusUnauthorized {
		// Unknown or wrong credentials: anyone may send them. Past the
		// address's budget only the first refusal of each run is
		// recorded, as over plain HTTP (requireEnrolTLS), and none past
		// the overall budget.
		record, undo = s.recordRefusal(r, details, "further refusals of this address in a row are counted in thiqa_est_requests_total, not recorded")
	}
	if record {
		if aerr := s.c.Enrol.Refused(context.WithoutCancel(r.Context()), actor, "est:"+r.URL.Path, "est", err, details); aerr != nil {
			undo() // the run's next refusal is recorded instead
			// No refusal leaves without its record: a failure instead.
			w.Header().Del("WWW-Authenticate")
			p = problem.Details{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the audit log is unavailable", Instance: r.URL.Path}
			if outage.Is(aerr) {
				p = problem.UnavailableDetails(r.URL.Path)
			}
		}
	}
	s.requests.WithLabelValues(operation(r), fmt.Sprint(p.Status)).Inc()
	problem.Write(w, p)
}
