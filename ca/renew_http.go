package ca

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// RenewBody is the JSON body of POST /api/v1/certificates/{serial}/renew:
// {} renews with the same key, {"csr": "<PEM>"} re-keys with the CSR's
// key, {"rekey": true} re-keys a credential on the token.
type RenewBody struct {
	CSR       string `json:"csr,omitempty"`
	Rekey     bool   `json:"rekey,omitempty"`
	RequestID string `json:"requestID,omitempty"`
}

// RenewResponse is the 201 answer of a renewal: the issuance's answer and
// the serial it replaces.
type RenewResponse struct {
	IssueResponse
	Replaces string `json:"replaces"`
}

// ExpiringCertificate is one entry of GET /api/v1/certificates?expiringWithin=.
type ExpiringCertificate struct {
	Serial       string    `json:"serial"`
	CA           string    `json:"ca"`
	Profile      string    `json:"profile"`
	Subject      string    `json:"subject"`
	NotAfter     time.Time `json:"notAfter"`
	CredentialID string    `json:"credentialID,omitempty"`
}

// ExpiringResponse is the answer of GET /api/v1/certificates?expiringWithin=.
type ExpiringResponse struct {
	ExpiringWithin string                `json:"expiringWithin"`
	Until          time.Time             `json:"until"`
	Certificates   []ExpiringCertificate `json:"certificates"`
	// Truncated says that more certificates expire in the window than limit.
	Truncated bool `json:"truncated,omitempty"`
}

// Register mounts POST /api/v1/certificates/{serial}/renew
// (policies.ActionRenewCertificate) and GET /api/v1/certificates
// (policies.ActionListCertificates) behind guard; api answers with the
// CA's chains and maps the CA's errors.
func (rn *Renewer) Register(mux Mux, guard Guard, api *API) {
	mux.Handle("POST /api/v1/certificates/{serial}/renew", guard(policies.ActionRenewCertificate)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rn.serveRenew(w, r, api)
	})))
	mux.Handle("GET /api/v1/certificates", guard(policies.ActionListCertificates)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); !q.Has("expiringWithin") && (q.Has("civilNumber") || q.Has("organizationIdentifier") || q.Has("name")) {
			api.Search(w, r) // a search by the holder
			return
		}
		rn.serveExpiring(w, r, api)
	})))
}

// serveRenew handles POST /api/v1/certificates/{serial}/renew.
func (rn *Renewer) serveRenew(w http.ResponseWriter, r *http.Request, api *API) {
	serial := r.PathValue("serial")
	pr, _ := auth.FromContext(r.Context())
	var in RenewBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		if api.record(w, r, policies.ActionRenewCertificate, serial, "refused", "malformed JSON body") {
			problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request",
				Detail: `the body must be one JSON object: {} to renew with the same key, {"csr": "<PEM>"} or {"rekey": true} to re-key`, Instance: r.URL.Path})
		}
		return
	}
	if in.RequestID == "" {
		in.RequestID = r.Header.Get("Idempotency-Key")
	}
	if len(in.RequestID) > 128 {
		if api.record(w, r, policies.ActionRenewCertificate, serial, "refused", "requestID longer than 128 characters") {
			problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: "requestID longer than 128 characters", Instance: r.URL.Path})
		}
		return
	}
	got, err := rn.Renew(r.Context(), RenewRequest{Serial: serial, CSR: []byte(in.CSR), Rekey: in.Rekey, RequestID: in.RequestID, Caller: pr})
	if err != nil {
		api.fail(w, r, err)
		return
	}
	out := RenewResponse{IssueResponse: api.issueResponse(got.Issued), Replaces: got.Replaces}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/api/v1/certificates/"+got.Serial)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

// Bounds of GET /api/v1/certificates?expiringWithin=.
const (
	maxExpiringWindow = 3660 * 24 * time.Hour
	defaultListLimit  = 100
	maxListLimit      = 1000
)

// serveExpiring handles GET /api/v1/certificates?expiringWithin=30d[&limit=N]
// for registration officers: the valid certificates (issued, unrevoked, not
// renewed yet) that expire within the window, soonest first. The listing
// names people: it is audited.
func (rn *Renewer) serveExpiring(w http.ResponseWriter, r *http.Request, api *API) {
	q := r.URL.Query()
	within, err := policies.ParseValidity(q.Get("expiringWithin"))
	limit := defaultListLimit
	if err == nil && q.Has("limit") {
		if limit, err = strconv.Atoi(q.Get("limit")); err != nil || limit < 1 || limit > maxListLimit {
			err = errors.New("limit must be 1 to 1000")
		}
	}
	if err == nil && within > maxExpiringWindow {
		err = errors.New("expiringWithin is at most 3660d")
	}
	if err != nil {
		detail := "expiringWithin (a number of days such as 30d, or a duration such as 72h) is required: " + err.Error()
		if api.record(w, r, policies.ActionListCertificates, "", "refused", detail) {
			problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Bad request", Detail: detail, Instance: r.URL.Path})
		}
		return
	}
	now := rn.a.now()
	recs, err := rn.store.Expiring(r.Context(), now, now.Add(within), limit+1)
	if err != nil {
		rn.log.ErrorContext(r.Context(), "listing expiring certificates", "err", err)
		if outage.Is(err) {
			problem.Unavailable(w, r.URL.Path)
			return
		}
		problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the certificates could not be listed", Instance: r.URL.Path})
		return
	}
	if !api.record(w, r, policies.ActionListCertificates, "expiringWithin:"+q.Get("expiringWithin"), "success", "") {
		return
	}
	out := ExpiringResponse{ExpiringWithin: q.Get("expiringWithin"), Until: now.Add(within).UTC(), Certificates: []ExpiringCertificate{}}
	if len(recs) > limit {
		recs, out.Truncated = recs[:limit], true
	}
	for _, c := range recs {
		e := ExpiringCertificate{Serial: c.Serial, CA: c.CA, Profile: c.Profile, NotAfter: c.NotAfter, CredentialID: c.CredentialID}
		if cert, err := x509.ParseCertificate(c.DER); err == nil {
			e.Subject = cert.Subject.String()
		}
		out.Certificates = append(out.Certificates, e)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// expiryWindows are the windows of thiqa_certificates_expiring: a fixed,
// small set of label values.
var expiryWindows = []struct {
	label string
	d     time.Duration
}{{"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour}}

// RefreshExpiring sets thiqa_certificates_expiring{profile,within}: the
// valid certificates of each configured profile that expire within 7, 30
// and 90 days (profiles are the configured ones: the label set is bounded).
func (rn *Renewer) RefreshExpiring(ctx context.Context) error {
	now := rn.a.now()
	for _, win := range expiryWindows {
		counts, err := rn.store.CountExpiring(ctx, now, now.Add(win.d))
		if err != nil {
			return err
		}
		for _, p := range rn.a.profiles.Names() {
			rn.expiring.WithLabelValues(p, win.label).Set(float64(counts[p]))
		}
	}
	return nil
}
