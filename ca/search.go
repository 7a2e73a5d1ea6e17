package ca

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// Searching certificates (GET /api/v1/certificates?civilNumber=…): a
// registration officer finds a person's or an agency's certificates by
// civil number, organisation identifier or name, optionally only those of
// one status. Every search names people: it is recorded with its query.

// Searcher narrows the issued certificates to those whose subject
// contains every string (case-insensitive), newest first (package store
// implements it); Search checks each candidate exactly.
type Searcher interface {
	SearchCertificates(ctx context.Context, contains []string, limit int) ([]CertificateRecord, error)
}

// FoundCertificate is one entry of a search's answer.
type FoundCertificate struct {
	Serial       string    `json:"serial"`
	CA           string    `json:"ca"`
	Profile      string    `json:"profile"`
	Subject      string    `json:"subject"`
	CommonName   string    `json:"commonName,omitempty"`
	Status       string    `json:"status"`
	NotAfter     time.Time `json:"notAfter"`
	CredentialID string    `json:"credentialID,omitempty"`
}

// SearchResponse is the answer of a search.
type SearchResponse struct {
	Certificates []FoundCertificate `json:"certificates"`
	// Truncated says that more certificates match than limit.
	Truncated bool `json:"truncated,omitempty"`
}

// Bounds of a search.
const (
	searchDefaultLimit = 50
	searchMaxLimit     = 500
	searchMaxTerm      = 128
)

// SearchQuery is a validated search.
type SearchQuery struct {
	CivilNumber, OrganizationIdentifier, Name, Status string
	Limit                                             int
}

// ParseSearch validates the query parameters of a search: at least one of
// civilNumber, organizationIdentifier and name; status valid, revoked or
// expired; limit 1 to 500.
func ParseSearch(q url.Values) (SearchQuery, string) {
	s := SearchQuery{CivilNumber: strings.TrimSpace(q.Get("civilNumber")), OrganizationIdentifier: strings.TrimSpace(q.Get("organizationIdentifier")),
		Name: strings.TrimSpace(q.Get("name")), Status: q.Get("status"), Limit: searchDefaultLimit}
	if s.CivilNumber == "" && s.OrganizationIdentifier == "" && s.Name == "" {
		return s, "give civilNumber, organizationIdentifier or name (and optionally status), or expiringWithin"
	}
	for _, v := range []string{s.CivilNumber, s.OrganizationIdentifier, s.Name} {
		if len(v) > searchMaxTerm || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }) {
			return s, "search terms are at most 128 printable characters"
		}
	}
	if s.Name != "" && utf8.RuneCountInString(s.Name) < 2 {
		return s, "a name to search for has at least 2 characters"
	}
	switch s.Status {
	case "", "valid", "revoked", "expired":
	default:
		return s, "status is valid, revoked or expired"
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > searchMaxLimit {
			return s, "limit is 1 to 500"
		}
		s.Limit = n
	}
	return s, ""
}

// OIDs of the subject attributes a search reads.
var (
	oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidOrgID        = asn1.ObjectIdentifier{2, 5, 4, 97}
)

// attribute returns the string value of the subject attribute oid.
func attribute(c *x509.Certificate, oid asn1.ObjectIdentifier) string {
	for _, a := range c.Subject.Names {
		if a.Type.Equal(oid) {
			if s, ok := a.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

// matches reports whether the certificate answers the query exactly.
func (s SearchQuery) matches(c *x509.Certificate, status string) bool {
	if s.Status != "" && s.Status != status {
		return false
	}
	if s.CivilNumber != "" {
		sn := attribute(c, oidSerialNumber)
		if i := strings.LastIndexByte(sn, '-'); i < 0 || !strings.HasPrefix(sn, "IDC") || sn[i+1:] != s.CivilNumber {
			return false
		}
	}
	if s.OrganizationIdentifier != "" && !strings.EqualFold(attribute(c, oidOrgID), s.OrganizationIdentifier) {
		return false
	}
	if s.Name != "" {
		want := strings.ToLower(s.Name)
		hit := false
		for _, v := range []string{c.Subject.CommonName, strings.Join(c.Subject.Organization, " ")} {
			if strings.Contains(strings.ToLower(v), want) {
				hit = true
			}
		}
		for _, a := range c.Subject.Names {
			if a.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 42}) || a.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 4}) {
				if v, ok := a.Value.(string); ok && strings.Contains(strings.ToLower(v), want) {
					hit = true
				}
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// contains is what the store narrows by: text as it appears in the
// subject's RFC 4514 string (attributes Go does not name appear as the
// hex of their DER value, so an organisation identifier is searched as
// the hex of its bytes).
func (s SearchQuery) contains() []string {
	var out []string
	if s.CivilNumber != "" {
		out = append(out, "-"+s.CivilNumber)
	}
	if s.OrganizationIdentifier != "" {
		out = append(out, hex.EncodeToString([]byte(s.OrganizationIdentifier)))
	}
	if s.Name != "" && !strings.ContainsAny(s.Name, `,+"\<>;=#`) {
		out = append(out, s.Name)
	}
	return out
}

// Search handles GET /api/v1/certificates?civilNumber=|organizationIdentifier=|name=[&status=][&limit=]
// (mounted with the expiry listing, behind policies.ActionListCertificates:
// see Renewer.Register).
func (api *API) Search(w http.ResponseWriter, r *http.Request) {
	q, bad := ParseSearch(r.URL.Query())
	object := "search?" + r.URL.RawQuery
	if len(object) > 300 {
		object = object[:300]
	}
	if bad != "" {
		if api.record(w, r, policies.ActionListCertificates, object, "refused", bad) {
			problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Bad request", Detail: bad, Instance: r.URL.Path})
		}
		return
	}
	if api.opts.Search == nil {
		problem.Write(w, problem.Details{Status: http.StatusNotImplemented, Title: "Not available", Detail: "this server cannot search certificates", Instance: r.URL.Path})
		return
	}
	// Candidates: a generous page, checked exactly here.
	recs, err := api.opts.Search.SearchCertificates(r.Context(), q.contains(), min(q.Limit*4+1, 2001))
	if err != nil {
		api.opts.Logger.ErrorContext(r.Context(), "searching certificates", "err", err)
		problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: "Unavailable", Detail: "the certificates cannot be searched now", Instance: r.URL.Path})
		return
	}
	if !api.record(w, r, policies.ActionListCertificates, object, "success", "") {
		return
	}
	now := api.a.now()
	out := SearchResponse{Certificates: []FoundCertificate{}}
	for _, rec := range recs {
		c, err := x509.ParseCertificate(rec.DER)
		if err != nil {
			continue
		}
		status := "valid"
		switch {
		case rec.Revoked:
			status = "revoked"
		case now.After(rec.NotAfter):
			status = "expired"
		}
		if !q.matches(c, status) {
			continue
		}
		if len(out.Certificates) == q.Limit {
			out.Truncated = true
			break
		}
		out.Certificates = append(out.Certificates, FoundCertificate{Serial: rec.Serial, CA: rec.CA, Profile: rec.Profile, Subject: c.Subject.String(),
			CommonName: c.Subject.CommonName, Status: status, NotAfter: rec.NotAfter, CredentialID: rec.CredentialID})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
