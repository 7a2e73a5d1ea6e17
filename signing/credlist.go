package signing

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// The caller's own credentials (GET /api/v1/credentials?owner=self): a
// citizen's remote-signing credentials and mobile IDs, an agency's seal
// credentials, each with its certificate's expiry and its PIN's state, so
// that the holder sees what to renew (POST /api/v1/certificates/{serial}/renew)
// and which PIN to change or activate.

// ActionListOwnCredentials records a listing of the caller's credentials.
const ActionListOwnCredentials = string(policies.ActionListCredentials)

// OwnCredential is one entry of GET /api/v1/credentials?owner=self.
type OwnCredential struct {
	CredentialID string `json:"credentialID"`
	// Kind is KindSigning, KindSeal or KindMobileID.
	Kind    string `json:"kind"`
	Profile string `json:"profile"`
	// CertSerial is the current certificate's serial: the one to renew.
	CertSerial string    `json:"certSerial"`
	NotAfter   time.Time `json:"notAfter"`
	// ExpiresInDays is the whole days left (negative once expired).
	ExpiresInDays int `json:"expiresInDays"`
	// PIN is the PIN's state: "none" (a seal), "not-set",
	// "activation-pending", "set" or "locked".
	PIN string `json:"pin"`
	// CertStatus is the certificate's status now, as CSC credentials/info
	// says it: "valid", "expired" (outside its validity: after its
	// notAfter, or before its notBefore) or "revoked". Only a
	// valid one signs; the others are listed so that the holder sees
	// what to renew or replace.
	CertStatus string `json:"certStatus"`
	// notBefore is the certificate's start of validity (zero when not
	// known: a mobile ID).
	notBefore time.Time
	// issuerRevoked: the root revoked the certificate's issuing CA
	// (Options.IssuerRevocations); it is listed as revoked.
	issuerRevoked bool
}

// OwnCredentialsResponse is the answer of GET /api/v1/credentials?owner=self.
type OwnCredentialsResponse struct {
	Owner       string          `json:"owner"`
	Credentials []OwnCredential `json:"credentials"`
}

// registerCredentialList mounts GET /api/v1/credentials behind guard.
func (s *Service) registerCredentialList(mux Mux, guard Guard) {
	mux.Handle("GET /api/v1/credentials", guard(policies.ActionListCredentials)(http.HandlerFunc(s.listOwnCredentials)))
}

// listOwnCredentials serves GET /api/v1/credentials?owner=self[&expiringWithin=30d]:
// the caller's own credentials, soonest expiry first; with expiringWithin
// (days such as 30d, at most 3660d) only those that expire within it.
func (s *Service) listOwnCredentials(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pr, _ := auth.FromContext(ctx)
	actor := "unknown"
	if pr != nil && pr.Subject != "" {
		actor = pr.Subject
	}
	refuse := func(err error) {
		code, reason, outcome := Classify(err)
		if _, aerr := s.audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionListOwnCredentials, Object: r.URL.Path, Outcome: outcome,
			Details: map[string]any{"reason": reason, "caller": auth.CallerOf(ctx)}}); aerr != nil {
			s.logger.ErrorContext(ctx, "audit append failed", "action", ActionListOwnCredentials, "err", aerr)
			// No refusal leaves without its record: a failure instead.
			code, reason, _ = Classify(refusalUnrecorded(err, aerr))
		}
		problem.Write(w, problem.Details{Status: code, Detail: reason, Instance: r.URL.Path})
	}
	q := r.URL.Query()
	if q.Get("owner") != "self" {
		refuse(Refuse(ErrBadRequest, "owner=self is required: a caller lists only their own credentials"))
		return
	}
	var within time.Duration
	if v := q.Get("expiringWithin"); v != "" {
		days, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
		if err != nil || !strings.HasSuffix(v, "d") || days < 1 || days > 3660 {
			refuse(Refuse(ErrBadRequest, "expiringWithin is a number of days from 1d to 3660d, such as 30d"))
			return
		}
		within = time.Duration(days) * 24 * time.Hour
	}
	var kind, owner string
	switch {
	case pr.Has(policies.RoleCitizen) && pr.CivilNumber != "":
		kind, owner = OwnerCitizen, pr.CivilNumber
	case pr.Has(policies.RoleAgency) && pr.OrganizationIdentifier != "":
		kind, owner = OwnerAgency, pr.OrganizationIdentifier
	default:
		refuse(Refuse(ErrNoIdentity, "the caller has no citizen or agency identity"))
		return
	}
	now := s.now()
	out := OwnCredentialsResponse{Owner: owner, Credentials: []OwnCredential{}}
	recs, err := s.CredentialsOf(ctx, kind, owner)
	if err != nil {
		refuse(err)
		return
	}
	maxFailures := s.pins.Params().MaxFailures
	for _, c := range recs {
		e := OwnCredential{CredentialID: c.ID, Kind: KindSigning, Profile: c.Profile, CertSerial: c.CertSerial, NotAfter: c.NotAfter, PIN: "not-set"}
		if chain, err := x509.ParseCertificates(c.ChainDER); err == nil && len(chain) > 0 {
			e.notBefore = chain[0].NotBefore
			e.issuerRevoked = s.issuerRevoked(c.ID, chain[0]) != nil
		}
		switch {
		case kind == OwnerAgency:
			e.Kind, e.PIN = KindSeal, "none"
		case c.PINFailures >= maxFailures:
			e.PIN = "locked"
		case c.PINSet:
			e.PIN = "set"
		case c.ActivationPending:
			e.PIN = "activation-pending"
		}
		out.Credentials = append(out.Credentials, e)
	}
	if kind == OwnerCitizen && s.mobile != nil && s.mobilePINs != nil {
		ms, err := s.mobile.MobileIDsOf(ctx, owner)
		if err != nil {
			refuse(err)
			return
		}
		for _, m := range ms {
			if s.foreignMobileID(&m) {
				continue // another country's holder of the number
			}
			e := OwnCredential{CredentialID: m.CredentialID, Kind: KindMobileID, Profile: policies.ProfileCitizenAuth, CertSerial: m.CertSerial,
				NotAfter: m.NotAfter, PIN: "not-set"}
			switch {
			case m.PINFailures >= s.mobilePINs.Params().MaxFailures:
				e.PIN = "locked"
			case m.PINSet:
				e.PIN = "set"
			case m.ActivationPending:
				e.PIN = "activation-pending"
			}
			out.Credentials = append(out.Credentials, e)
		}
	}
	kept := out.Credentials[:0]
	for _, e := range out.Credentials {
		e.ExpiresInDays = int(e.NotAfter.Sub(now).Hours() / 24)
		if within == 0 || !e.NotAfter.After(now.Add(within)) {
			kept = append(kept, e)
		}
	}
	for i := range kept {
		st, err := s.certStatus(ctx, kept[i], now)
		if err != nil {
			refuse(err)
			return
		}
		kept[i].CertStatus = st
	}
	out.Credentials = kept
	slices.SortFunc(out.Credentials, func(a, b OwnCredential) int {
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), cmp.Compare(a.CredentialID, b.CredentialID))
	})
	if _, err := s.audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionListOwnCredentials, Object: owner, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"count": len(out.Credentials)}}); err != nil {
		s.logger.ErrorContext(ctx, "audit append failed", "action", ActionListOwnCredentials, "err", err)
		code, reason, _ := Classify(auditFailed(err))
		problem.Write(w, problem.Details{Status: code, Detail: reason, Instance: r.URL.Path})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, out)
}

// certStatus is e's certificate's status at now: "expired" after its
// notAfter or before its notBefore (as CSC credentials/info says a
// certificate that is not valid now), else "revoked" when the store
// records its revocation or the root revoked its issuing CA, else "valid"
// (the checks Credential makes before a signature).
func (s *Service) certStatus(ctx context.Context, e OwnCredential, now time.Time) (string, error) {
	if now.After(e.NotAfter) || now.Before(e.notBefore) {
		return "expired", nil
	}
	if e.issuerRevoked {
		return "revoked", nil
	}
	revoked, err := s.store.CertificateRevoked(ctx, e.CertSerial)
	if err != nil {
		return "", fmt.Errorf("checking the revocation of credential %s: %w", e.CredentialID, err)
	}
	if revoked {
		return "revoked", nil
	}
	return "valid", nil
}
