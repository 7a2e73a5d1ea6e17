package timestamp

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// A unit whose issuing CA the root has revoked. After a key compromise of
// the TSA's issuing CA the operators revoke its certificate on the root
// CRL (docs/operations.md, Key compromise of an issuing CA); every token
// the unit signs from then on chains to a revoked CA and is worthless to
// relying parties. From the moment the root CRL this node has read lists
// it (ServiceOptions.Issuers), the unit stops as a revoked unit does: each
// request is answered systemFailure (HTTP 503), /readyz fails "tsa", the
// log says so once, thiqa_tsa_unit_issuer_revoked is 1, and each refusal
// has its audit record (ActionRefuse). A new unit needs a CA that is not
// revoked: once the CA is rolled over (a new generation), the renewal that
// RenewIfDue tries at each check (and at start) certifies a new unit from
// it, and the TSA serves again.

// ErrUnitIssuerRevoked: the root CRL lists the issuing CA generation that
// certified the unit as revoked; the unit signs nothing until it is
// replaced by one certified by a CA that is not revoked.
var ErrUnitIssuerRevoked = errors.New("timestamp: the issuing CA of the TSA unit certificate is revoked by the root")

// IssuerStatus says whether the root revoked the issuing CA generation
// that certified a unit certificate (*ca.RevokedIssuers in cmd/thiqa).
type IssuerStatus interface {
	// RevokedIssuerOf returns why cert's issuing CA is revoked (non-nil)
	// or nil. It is asked on every request: it must be cheap.
	RevokedIssuerOf(cert *x509.Certificate) error
}

// ActionRefuse is the audit action of refused time-stamp requests:
// collective records (actor thiqa-tsa, object the unit certificate's
// serial; outcome refused for a request the TSA will not serve, failure
// when it could not), one item per refusal recorded (refusal.go); while
// the unit's issuing CA is revoked (outcome failure):
//
//	{"address":"192.0.2.7","error":"…","failInfo":"systemFailure","hashAlgorithm":"SHA-256",
//	 "reason":"issuing-ca-revoked","requester":"addr:192.0.2.7","text":"…"}
const ActionRefuse = "timestamp.refuse"

// RefuseReasonIssuerRevoked is the reason of an ActionRefuse item, and of
// a renewal's audit record (ActionRenewUnit, detail "reason") when the
// unit it replaced was certified by a revoked issuing CA.
const RefuseReasonIssuerRevoked = "issuing-ca-revoked"

// issuerRevoked returns a non-nil error wrapping ErrUnitIssuerRevoked when
// the unit's issuing CA is revoked (Options.Issuers), and logs the change
// once each way.
func (a *Authority) issuerRevoked() error {
	if a.issuers == nil {
		return nil
	}
	cause := a.issuers.RevokedIssuerOf(a.cert)
	if cause == nil {
		// Load first: no write to the shared flag on every request.
		if a.issuerRevokedSeen.Load() && a.issuerRevokedSeen.Swap(false) {
			a.log.Warn("the issuing CA of the TSA unit is no longer revoked by the root CRL: the unit time-stamps again",
				"serial", hex.EncodeToString(a.cert.SerialNumber.Bytes()))
		}
		return nil
	}
	err := fmt.Errorf("%w (unit serial %x): %w", ErrUnitIssuerRevoked, a.cert.SerialNumber.Bytes(), cause)
	if !a.issuerRevokedSeen.Load() && !a.issuerRevokedSeen.Swap(true) {
		a.log.Error("the issuing CA of the TSA unit was revoked by the root CRL: no time-stamps with this unit; roll the CA over, then the unit is renewed from the new generation (docs/operations.md, Key compromise of an issuing CA)",
			"serial", hex.EncodeToString(a.cert.SerialNumber.Bytes()), "issuer", a.cert.Issuer.String(), "err", cause)
	}
	return err
}

// issuerRevokedRejection is the answer while the unit's issuing CA is
// revoked: systemFailure, HTTP 503, as for a revoked unit, but without
// Retry-After (waiting does not help: the CA must be rolled over). The
// refusal is recorded in the audit log (ActionRefuse, reason
// RefuseReasonIssuerRevoked, within the budget of refusal.go) before it is
// answered; a failure to record it is logged and does not change the
// answer.
func issuerRevokedRejection(err error) *rejection {
	return &rejection{fail: tsp.SystemFailure,
		text:  "the issuing CA of the TSA unit certificate is revoked; no time-stamps until the TSA has a unit from a CA that is not revoked",
		cause: outage.Mark(err), noRetry: true, reason: RefuseReasonIssuerRevoked}
}

// newRefusals opens the collective records of the refusals of the unit
// whose certificate serial is unit (hex): of outcome failure (the TSA
// could not serve the request: Options.Refusals) and refused (it will not:
// Options.ClientRefusals).
func newRefusals(log Grouper, unit string) (failed, refused *audit.Group, err error) {
	if failed, err = log.Group(AuditActor, ActionRefuse, unit, audit.OutcomeFailure); err != nil {
		return nil, nil, err
	}
	if refused, err = log.Group(AuditActor, ActionRefuse, unit, audit.OutcomeRefused); err != nil {
		return nil, nil, err
	}
	return failed, refused, nil
}
