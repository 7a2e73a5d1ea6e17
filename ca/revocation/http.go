package revocation

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// Guard wraps a handler so that it serves only callers allowed action,
// answering (and auditing) every other request itself; cmd/thiqa passes
// (*auth.Authenticator).Require.
type Guard func(action policies.Action) func(http.Handler) http.Handler

// Mux is where the service mounts its routes: an *http.ServeMux, or
// cmd/thiqa's mux that also records its route table.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// PathRevoke is the route of the revocation API.
const PathRevoke = "POST /api/v1/certificates/{serial}/revoke"

// Register mounts the service's routes on mux: GET /crl/{file} (the
// Publisher), POST /ocsp (the Responder) and POST
// /api/v1/certificates/{serial}/revoke behind guard. GET /ocsp/{base64} is
// handed to raw, which must route the prefix "/ocsp/" before mux sees the
// request: the mux would clean a "//" in the base64. Routes of a nil
// Responder or Publisher are not mounted.
func (s *Service) Register(mux Mux, raw func(prefix string, h http.Handler), guard Guard) {
	if s.o.Publisher != nil {
		mux.Handle("GET /crl/{file}", s.o.Publisher)
	}
	if s.o.Responder != nil {
		mux.Handle("POST /ocsp", s.o.Responder)
		raw("/ocsp/", s.o.Responder)
	}
	mux.Handle(PathRevoke, guard(policies.ActionRevokeCertificate)(http.HandlerFunc(s.serveRevoke)))
}

// maxRevokeBody bounds a revocation request body.
const maxRevokeBody = 4 << 10

// RevokeRequest is the JSON body of POST /api/v1/certificates/{serial}/revoke.
type RevokeRequest struct {
	Reason string `json:"reason"`
}

// RevokeResponse is the JSON answer to a revocation. Reason and RevokedAt
// are the certificate's revocation: for a keyCompromise request on a
// certificate revoked before, the earlier one (revocation is final).
type RevokeResponse struct {
	Serial    string    `json:"serial"`
	CA        string    `json:"ca"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revokedAt"`
	// KeyBlocked: the key is blocked for good (keyCompromise).
	KeyBlocked bool `json:"keyBlocked,omitempty"`
	// AlsoRevoked lists the serials of the other certificates with the same
	// key, revoked for keyCompromise as a consequence.
	AlsoRevoked []string `json:"alsoRevoked,omitempty"`
}

// serveRevoke serves POST /api/v1/certificates/{serial}/revoke: a
// registration officer may revoke any certificate, a citizen or an agency
// only its own (civil number or organizationIdentifier in the subject).
// Authentication and role refusals are audited by the guard; every refusal
// further in is audited here or by Revoke, before the answer leaves.
func (s *Service) serveRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	serial := r.PathValue("serial")
	pr, _ := auth.FromContext(ctx)
	var in RevokeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRevokeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		if _, aerr := s.o.Audit.Append(ctx, audit.Entry{Actor: pr.Subject, Action: string(policies.ActionRevokeCertificate), Object: serial,
			Outcome: audit.OutcomeRefused, Details: map[string]any{"status": http.StatusBadRequest, "error": "malformed JSON body", "caller": pr.Caller()}}); aerr != nil {
			if outage.Is(aerr) {
				problem.Unavailable(w, r.URL.Path)
				return
			}
			problem.Error(w, http.StatusInternalServerError, "audit log unavailable")
			return
		}
		problem.Error(w, http.StatusBadRequest, `the body must be one JSON object {"reason": "..."}`)
		return
	}
	res, err := s.Revoke(ctx, pr.Subject, serial, in.Reason, func(c *x509.Certificate) bool { return mayRevoke(pr, c) })
	var refusal *Refusal
	switch {
	case errors.As(err, &refusal):
		problem.Write(w, problem.Details{Status: httpStatus(refusal.Reason), Detail: refusal.Detail, Instance: r.URL.Path})
	case outage.Is(err):
		s.log.ErrorContext(ctx, "revocation failed", "serial", serial, "err", err)
		problem.Unavailable(w, r.URL.Path)
	case err != nil:
		s.log.ErrorContext(ctx, "revocation failed", "serial", serial, "err", err)
		problem.Error(w, http.StatusInternalServerError, "revocation failed")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		out := RevokeResponse{Serial: res.Serial, CA: res.CA, Status: "revoked", Reason: Reason(res.Reason).String(), RevokedAt: res.RevokedAt,
			KeyBlocked: res.KeyBlocked}
		for _, a := range res.AlsoRevoked {
			out.AlsoRevoked = append(out.AlsoRevoked, a.Serial)
		}
		_ = json.NewEncoder(w).Encode(out)
	}
}

// mayRevoke says whether pr may revoke c: registration officers any
// subscriber's certificate; a citizen or an agency its own
// (auth.Principal.OwnsCertificate). The service's own certificates (a CA,
// the TSA unit, an OCSP responder, the CMP server) are no subscriber's:
// revoking one takes a service down until it is renewed with a new key,
// so it is an operator's act on the host (`thiqa revoke`, which passes no
// check), not a registration officer's (separation of trusted roles, ETSI
// EN 319 401 §7.2), and one officer's token cannot keep the TSA down by
// revoking each new unit.
func mayRevoke(pr *auth.Principal, c *x509.Certificate) bool {
	if serviceCertificate(c) {
		return false
	}
	return pr.Has(policies.RoleRegistrationOfficer) || pr.OwnsCertificate(c)
}

// oidKPCMCRA is id-kp-cmcRA (RFC 6402), the CMP server's extended key usage.
var oidKPCMCRA = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 28}

// serviceCertificate reports whether c is one of the service's own
// certificates: a CA, or one certified for time-stamping, OCSP signing or
// as a CMP registration authority.
func serviceCertificate(c *x509.Certificate) bool {
	if c.IsCA {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageTimeStamping || u == x509.ExtKeyUsageOCSPSigning {
			return true
		}
	}
	for _, u := range c.UnknownExtKeyUsage {
		if u.Equal(oidKPCMCRA) {
			return true
		}
	}
	return false
}
