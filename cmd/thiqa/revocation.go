package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
)

// ---- delegated OCSP responders -------------------------------------------

// responderPaths are where a CA's current responder certificate (PEM) and
// the label of its key on the token are kept.
func responderPaths(cfg *config.Config, caName string) (certPath, labelPath string) {
	dir := cfg.Resolve(cfg.CA.CertDir)
	return filepath.Join(dir, "ocsp-"+caName+".pem"), filepath.Join(dir, "ocsp-"+caName+".label")
}

// responders issues and loads the delegated OCSP responder of each issuing
// CA: a key generated on the token and an ocsp-responder certificate issued
// by the CA's HSM key. It is the responder's ocsp.ResponderRenewer.
type responders struct {
	cfg       *config.Config
	token     *hsm.Token
	audit     *audit.Log
	authority *ca.Authority
	keyType   hsm.KeyType
	actor     string
	mu        sync.Mutex // one renewal at a time writes the files
}

// load returns the responder recorded in the data folder, or an error
// wrapping os.ErrNotExist when there is none.
func (rp *responders) load(ctx context.Context, caName string, caCert *x509.Certificate) (ocsp.ResponderCert, error) {
	certPath, labelPath := responderPaths(rp.cfg, caName)
	raw, err := os.ReadFile(certPath)
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	cert, err := parseCertPEM(raw)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("%s: %w", certPath, err)
	}
	label, err := os.ReadFile(labelPath)
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	key, err := rp.token.FindKey(ctx, strings.TrimSpace(string(label)))
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return ocsp.ResponderCert{}, fmt.Errorf("responder key %q of %s: %w", strings.TrimSpace(string(label)), caName, os.ErrNotExist)
	}
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("responder key of %s: %w", caName, err)
	}
	if pub, ok := publicOf(key); !ok || !pub.Equal(cert.PublicKey) {
		return ocsp.ResponderCert{}, fmt.Errorf("responder key %s does not match %s", key.URI(), certPath)
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("%s is not issued by CA %s: %w", certPath, caName, err)
	}
	key.UseSessionCopies() // signs every OCSP response
	return ocsp.ResponderCert{Cert: cert, Signer: key}, nil
}

// RenewResponder generates a new responder key on the token, has the CA
// issue its ocsp-responder certificate and records both in the data folder
// (ocsp.ResponderRenewer). The previous key stays on the token.
func (rp *responders) RenewResponder(ctx context.Context, caName string) (ocsp.ResponderCert, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	caCert, ok := rp.authority.CACertificate(caName)
	if !ok || caName == "root" {
		return ocsp.ResponderCert{}, fmt.Errorf("no issuing CA %q", caName)
	}
	var conf config.CAKeyConfig
	for _, c := range rp.cfg.CA.Issuers {
		if c.Name == caName {
			conf = c
		}
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ocsp.ResponderCert{}, err
	}
	label := "ocsp-" + caName + "-" + hex.EncodeToString(b[:])
	key, err := rp.token.GenerateKey(ctx, label, rp.keyType)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("generating responder key %s: %w", label, err)
	}
	if err := auditKeyGenerated(ctx, rp.audit, key); err != nil {
		return ocsp.ResponderCert{}, err
	}
	org := conf.Organization
	if org == "" {
		org = "Thiqa"
	}
	country := conf.Country
	if country == "" {
		country = "OM"
	}
	subject := map[string]string{
		policies.FieldCommonName:       "OCSP Responder " + caName,
		policies.FieldOrganizationName: org,
		policies.FieldCountry:          country,
	}
	issued, err := rp.authority.Issue(ctx, ca.Request{
		Profile: policies.ProfileOCSPResponder, CA: caName, Subject: subject,
		PublicKey: key.Public(), KeyGeneratedByService: true, RequestedBy: rp.actor,
	})
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("issuing the responder certificate of %s: %w", caName, err)
	}
	if err := issued.Certificate.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("responder certificate of %s: %w", caName, err)
	}
	certPath, labelPath := responderPaths(rp.cfg, caName)
	if err := replaceFile(labelPath, []byte(label+"\n"), 0o644); err != nil {
		return ocsp.ResponderCert{}, err
	}
	if err := replaceFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issued.Certificate.Raw}), 0o644); err != nil {
		return ocsp.ResponderCert{}, err
	}
	key.UseSessionCopies()
	return ocsp.ResponderCert{Cert: issued.Certificate, Signer: key}, nil
}

// replaceFile writes path atomically (temporary file, then rename).
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

// ensure returns a CA's responder, issuing a new one when there is none,
// it no longer loads, or it expires within renewBefore.
func (rp *responders) ensure(ctx context.Context, caName string, caCert *x509.Certificate, renewBefore time.Duration) (ocsp.ResponderCert, bool, error) {
	rc, err := rp.load(ctx, caName, caCert)
	if err == nil && time.Now().Add(renewBefore).Before(rc.Cert.NotAfter) {
		return rc, false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ocsp.ResponderCert{}, false, err
	}
	rc, err = rp.RenewResponder(ctx, caName)
	return rc, err == nil, err
}

func newResponders(ctx context.Context, p *platform, set config.RevocationSettings, actor string) (*responders, *ca.Authority, error) {
	a, err := openAuthority(ctx, p, nil)
	if err != nil {
		return nil, nil, err
	}
	kt, err := hsm.ParseKeyType(set.ResponderKeyType)
	if err != nil {
		return nil, nil, err
	}
	return &responders{cfg: p.cfg, token: p.token, audit: p.audit, authority: a, keyType: kt, actor: actor}, a, nil
}

// initResponders makes sure every issuing CA has a delegated OCSP responder
// key on the token and a valid certificate for it.
func initResponders(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	set, err := p.cfg.Revocation.Settings(p.cfg.PublicBaseURL)
	if err != nil {
		return err
	}
	rp, a, err := newResponders(ctx, p, set, "thiqa-init")
	if err != nil {
		return err
	}
	for _, c := range p.cfg.CA.Issuers {
		caCert, _ := a.CACertificate(c.Name)
		if _, _, err := rp.ensure(ctx, c.Name, caCert, set.OCSP.RenewBefore); err != nil {
			return fmt.Errorf("OCSP responder of %s: %w", c.Name, err)
		}
		certPath, _ := responderPaths(p.cfg, c.Name)
		fmt.Fprintf(out, "  OCSP responder %-13s %s\n", c.Name, certPath)
	}
	return nil
}

// ---- revoking --------------------------------------------------------------

// revoker records revocations and tells the responder and the publisher
// (both nil outside `thiqa serve`).
type revoker struct {
	rs        *store.Revocations
	certs     *store.Certificates
	audit     *audit.Log
	log       *slog.Logger
	responder *ocsp.Responder
	publisher *crl.Publisher
	seen      *seenRevocations
	// status is the process's certificate status checker: it forgets each
	// revoked certificate so that logins refuse it at once.
	status *revocation.Checker
}

// revokeError is a refusal with its HTTP status.
type revokeError struct {
	status int
	msg    string
}

func (e *revokeError) Error() string { return e.msg }

// revoke checks and records one revocation: the certificate must exist, allow
// says whether the caller may revoke it; then the store commits, the audit
// record is written, the responder re-signs and the CRLs are triggered. Every
// refusal is audited too. It returns a *revokeError for refusals.
func (rv *revoker) revoke(ctx context.Context, actor, serial, reasonText string, allow func(*x509.Certificate) bool) (*store.Revocation, error) {
	refuse := func(status int, format string, args ...any) error {
		e := &revokeError{status: status, msg: fmt.Sprintf(format, args...)}
		details := map[string]any{"reason": reasonText, "status": status, "error": e.msg}
		if c := auth.CallerOf(ctx); c != nil {
			details["caller"] = c
		}
		if _, err := rv.audit.Append(ctx, audit.Entry{
			Actor: actor, Action: string(policies.ActionRevokeCertificate), Object: serial, Outcome: audit.OutcomeRefused,
			Details: details,
		}); err != nil {
			return fmt.Errorf("writing the audit record: %w", err)
		}
		return e
	}
	reason, err := revocation.ParseReason(reasonText)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	key, err := store.NormalizeSerial(serial)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	rec, err := rv.certs.GetCertificate(ctx, key)
	if errors.Is(err, ca.ErrNotFound) {
		return nil, refuse(http.StatusNotFound, "no certificate with serial %s", key)
	}
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("stored certificate %s: %w", key, err)
	}
	if allow != nil && !allow(cert) {
		return nil, refuse(http.StatusForbidden, "the caller may not revoke certificate %s", key)
	}
	r, err := rv.rs.Revoke(ctx, key, int(reason), actor, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, refuse(http.StatusNotFound, "no certificate with serial %s", key)
	case errors.Is(err, store.ErrConflict):
		return nil, refuse(http.StatusConflict, "certificate %s is already revoked", key)
	case err != nil:
		return nil, err
	}
	if _, err := rv.audit.Append(ctx, audit.Entry{
		Actor: actor, Action: string(policies.ActionRevokeCertificate), Object: key, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"ca": r.CA, "reason": reason.String(), "revokedAt": r.RevokedAt, "subject": cert.Subject.String()},
	}); err != nil {
		// The revocation stands (it is final); the missing record is an error.
		rv.log.ErrorContext(ctx, "audit append failed after a revocation", "serial", key, "err", err)
		rv.notify(ctx, r)
		return nil, fmt.Errorf("certificate %s revoked, but writing the audit record failed: %w", key, err)
	}
	rv.notify(ctx, r)
	rv.log.InfoContext(ctx, "certificate revoked", "serial", key, "ca", r.CA, "reason", reason.String(), "by", actor)
	return r, nil
}

// notify re-signs the revoked certificate's OCSP responses at once and asks
// for new CRLs.
// It reports whether the OCSP responses were re-signed (true when there
// is no responder); the poller retries those that were not.
func (rv *revoker) notify(ctx context.Context, r *store.Revocation) bool {
	if rv.status != nil {
		rv.status.Forget(r.Serial)
	}
	ok := true
	if rv.responder != nil {
		serial, _ := new(big.Int).SetString(r.Serial, 16)
		if err := rv.responder.Revoked(ctx, r.CA, serial); err != nil {
			ok = false
			rv.log.ErrorContext(ctx, "re-signing the OCSP responses of a revoked certificate failed (the poller retries)", "serial", r.Serial, "err", err)
		} else if rv.seen != nil {
			rv.seen.add(r.Serial, r.Recorded)
		}
	}
	if rv.publisher != nil {
		rv.publisher.Trigger(r.CA)
	}
	return ok
}

// seenRevocations remembers revocations whose responses were re-signed.
type seenRevocations struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (s *seenRevocations) add(serial string, at time.Time) {
	s.mu.Lock()
	s.m[serial] = at
	s.mu.Unlock()
}

func (s *seenRevocations) has(serial string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[serial]
	return ok
}

func (s *seenRevocations) prune(before time.Time) {
	s.mu.Lock()
	for k, t := range s.m {
		if t.Before(before) {
			delete(s.m, k)
		}
	}
	s.mu.Unlock()
}

// pollWindow is how far back each poll looks: rows committed by other
// processes may carry slightly older recorded_at times than rows seen.
const pollWindow = 30 * time.Second

// pollRevocations re-signs the responses of revocations recorded by other
// processes (`thiqa revoke`, other instances) and triggers their CRLs.
func (rv *revoker) pollRevocations(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	p := revocationPoll{lookback: max(pollWindow, 2*every), seen: rv.seen,
		fetch:  func(from time.Time) ([]store.Revocation, error) { return rv.rs.RecordedSince(ctx, from, pollBatch) },
		notify: func(r *store.Revocation) bool { return rv.notify(ctx, r) },
		logErr: func(err error) {
			if ctx.Err() == nil {
				rv.log.ErrorContext(ctx, "polling revocations failed", "err", err)
			}
		}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.poll(time.Now())
	}
}

// pollBatch is how many revocations one query of a poll reads.
const pollBatch = 1000

// revocationPoll is the state of the revocation poller between polls.
// Each poll looks back at least lookback (two intervals: no revocation
// falls between two polls however long pollEvery is), and as far back as
// the oldest revocation whose responses could not be re-signed yet, so a
// failure is retried until it succeeds, not only within the window.
type revocationPoll struct {
	lookback  time.Duration
	retryFrom time.Time // zero: nothing to retry
	seen      *seenRevocations
	fetch     func(from time.Time) ([]store.Revocation, error)
	notify    func(*store.Revocation) bool
	logErr    func(error)
}

// poll reads the revocations recorded since the start of its window and
// notifies those not yet seen.
func (p *revocationPoll) poll(now time.Time) {
	from := now.Add(-p.lookback)
	if !p.retryFrom.IsZero() && p.retryFrom.Before(from) {
		from = p.retryFrom
	}
	var failedFrom time.Time
	complete := true
	for {
		rows, err := p.fetch(from)
		if err != nil {
			p.logErr(err)
			complete = false
			break
		}
		for i := range rows {
			if !p.seen.has(rows[i].Serial) && !p.notify(&rows[i]) && failedFrom.IsZero() {
				failedFrom = rows[i].Recorded
			}
		}
		if len(rows) < pollBatch {
			break
		}
		from = rows[len(rows)-1].Recorded
	}
	switch {
	case !failedFrom.IsZero():
		p.retryFrom = failedFrom.Add(-pollWindow)
	case complete:
		p.retryFrom = time.Time{}
	}
	keep := now.Add(-2 * p.lookback)
	if !p.retryFrom.IsZero() && p.retryFrom.Before(keep) {
		keep = p.retryFrom.Add(-pollWindow)
	}
	p.seen.prune(keep)
}

// ---- thiqa serve -----------------------------------------------------------

// wireRevocation serves CRLs (GET /crl/{ca}.crl), OCSP (POST /ocsp, GET
// /ocsp/{base64}) and revocation (POST /api/v1/certificates/{serial}/revoke),
// and runs the CRL publisher, the OCSP pre-signer (with responder renewal)
// and the revocation poller in the background.
func wireRevocation(ctx context.Context, p *platform, s *serving) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	set, err := p.cfg.Revocation.Settings(p.cfg.PublicBaseURL)
	if err != nil {
		return err
	}
	logger := p.logger.With("service", "revocation")
	parts, err := findHierarchy(ctx, p.cfg, p.token)
	if err != nil {
		return err
	}
	rp, _, err := newResponders(ctx, p, set, "thiqa-serve")
	if err != nil {
		return err
	}
	rs := p.db.Revocations()
	var issuers []ocsp.Issuer
	var gens []*crl.Generator
	for i, c := range parts {
		if c.key == nil || c.cert == nil {
			if i == 0 {
				continue // the root key is kept offline: no root CRL from here
			}
			return fmt.Errorf("CA %s is not initialised: run `thiqa init --data %s`", c.conf.Name, p.cfg.Dir())
		}
		g, err := crl.NewGenerator(set.CRL, crl.Issuer{Name: c.conf.Name, Cert: c.cert, Signer: c.key, CACerts: i == 0}, rs, rs)
		if err != nil {
			return err
		}
		gens = append(gens, g)
		if i == 0 {
			continue
		}
		rc, _, err := rp.ensure(ctx, c.conf.Name, c.cert, 0)
		if err != nil {
			return fmt.Errorf("OCSP responder of %s: %w", c.conf.Name, err)
		}
		issuers = append(issuers, ocsp.Issuer{Name: c.conf.Name, Cert: c.cert, Responder: rc})
	}
	responder, err := ocsp.New(set.OCSP, issuers, rs, ocsp.NewCache(set.OCSP.CacheEntries), logger, p.reg)
	if err != nil {
		return err
	}
	publisher, err := crl.NewPublisher(set.CRL, logger, p.reg, gens...)
	if err != nil {
		return err
	}
	rv := &revoker{rs: rs, certs: p.db.Certificates(nil), audit: p.audit, log: logger, responder: responder, publisher: publisher, status: p.certStatus,
		seen: &seenRevocations{m: map[string]time.Time{}}}

	s.mux.Handle("GET /crl/{file}", publisher)
	s.mux.Handle("POST /ocsp", responder)
	// GET /ocsp/{base64} bypasses the mux: it would clean a "//" in the base64.
	s.raw["/ocsp/"] = responder
	s.mux.Handle("POST /api/v1/certificates/{serial}/revoke", revokeHandler(p.authn, rv))
	s.background = append(s.background,
		func(ctx context.Context) { _ = publisher.Run(ctx) },
		func(ctx context.Context) { _ = ocsp.NewPresigner(responder, rp).Run(ctx) },
		func(ctx context.Context) { rv.pollRevocations(ctx, set.PollEvery) },
	)
	return nil
}

// maxRevokeBody bounds a revocation request body.
const maxRevokeBody = 4 << 10

// RevokeRequest is the JSON body of POST /api/v1/certificates/{serial}/revoke.
type RevokeRequest struct {
	Reason string `json:"reason"`
}

// RevokeResponse is the JSON answer to a revocation.
type RevokeResponse struct {
	Serial    string    `json:"serial"`
	CA        string    `json:"ca"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revokedAt"`
}

// revokeHandler serves POST /api/v1/certificates/{serial}/revoke: a
// registration officer may revoke any certificate, a citizen or an agency
// only its own (civil number or organizationIdentifier in the subject).
// Authentication and role refusals are audited by Require; every refusal
// further in is audited by revoke, before the answer leaves.
func revokeHandler(authn *auth.Authenticator, rv *revoker) http.Handler {
	action := policies.ActionRevokeCertificate
	return authn.Require(action)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		serial := r.PathValue("serial")
		pr, _ := auth.FromContext(ctx)
		var in RevokeRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRevokeBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil || dec.More() {
			if _, aerr := rv.audit.Append(ctx, audit.Entry{Actor: pr.Subject, Action: string(action), Object: serial,
				Outcome: audit.OutcomeRefused, Details: map[string]any{"status": http.StatusBadRequest, "error": "malformed JSON body", "caller": pr.Caller()}}); aerr != nil {
				problem.Error(w, http.StatusInternalServerError, "audit log unavailable")
				return
			}
			problem.Error(w, http.StatusBadRequest, `the body must be one JSON object {"reason": "..."}`)
			return
		}
		res, err := rv.revoke(ctx, pr.Subject, serial, in.Reason, func(c *x509.Certificate) bool { return mayRevoke(pr, c) })
		var re *revokeError
		switch {
		case errors.As(err, &re):
			problem.Write(w, problem.Details{Status: re.status, Detail: re.msg, Instance: r.URL.Path})
		case err != nil:
			rv.log.ErrorContext(ctx, "revocation failed", "serial", serial, "err", err)
			problem.Error(w, http.StatusInternalServerError, "revocation failed")
		default:
			writeJSON(w, http.StatusOK, RevokeResponse{Serial: res.Serial, CA: res.CA, Status: "revoked", Reason: revocation.Reason(res.Reason).String(), RevokedAt: res.RevokedAt})
		}
	}))
}

// oidOrganizationIdentifier is the organizationIdentifier attribute (2.5.4.97).
var oidOrganizationIdentifier = []int{2, 5, 4, 97}

// mayRevoke says whether pr may revoke c: registration officers any
// certificate; a citizen one whose subject serialNumber is its civil number
// (IDC<country>-<civil number>); an agency one whose organizationIdentifier
// is its own.
func mayRevoke(pr *auth.Principal, c *x509.Certificate) bool {
	if pr.Has(policies.RoleRegistrationOfficer) {
		return true
	}
	if pr.Has(policies.RoleCitizen) && pr.CivilNumber != "" {
		sn := c.Subject.SerialNumber
		if strings.HasPrefix(sn, "IDC") && len(sn) == 6+len(pr.CivilNumber) && sn[5] == '-' && sn[6:] == pr.CivilNumber {
			return true
		}
	}
	if pr.Has(policies.RoleAgency) && pr.OrganizationIdentifier != "" {
		for _, n := range c.Subject.Names {
			if n.Type.Equal(oidOrganizationIdentifier) {
				if v, ok := n.Value.(string); ok && v == pr.OrganizationIdentifier {
					return true
				}
			}
		}
	}
	return false
}

// ---- thiqa revoke ----------------------------------------------------------

// runRevoke revokes one certificate in-process: the store commits, the
// audit record is written; a server on the same data learns of it within
// revocation.pollEvery, re-signs its OCSP responses and regenerates CRLs.
func runRevoke(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("revoke", env)
	dir := fs.String("data", "", "data folder (required)")
	serial := fs.String("serial", "", "serial number of the certificate, hex (required)")
	reason := fs.String("reason", "unspecified", "keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn or unspecified")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *serial == "" {
		return withExit(2, errors.New("--serial is required"))
	}
	if _, err := revocation.ParseReason(*reason); err != nil {
		return withExit(2, err)
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	logger := newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	log := newAuditLog(db, logger, nil)
	defer log.Close()
	rv := &revoker{rs: db.Revocations(), certs: db.Certificates(nil), audit: log, log: logger}
	r, err := rv.revoke(ctx, operatorName(), *serial, *reason, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "revoked %s (CA %s, %s) at %s\n", r.Serial, r.CA, revocation.Reason(r.Reason), r.RevokedAt.Format(time.RFC3339))
	return nil
}
