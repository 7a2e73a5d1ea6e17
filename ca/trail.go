package ca

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// A certificate's audit trail (GET /api/v1/certificates/{serial}/audit):
// the audit records about it and about its credential (the key on the
// token it certifies), newest first, for the registration officer who
// looks a certificate up. Reading the trail is itself recorded.

// TrailEntry is one audit record about a certificate or its credential.
type TrailEntry struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Object  string          `json:"object"`
	Outcome string          `json:"outcome"`
	Details json.RawMessage `json:"details,omitempty"`
}

// TrailReader reads the audit records whose object is one of objects,
// newest first, at most limit (package store implements it).
type TrailReader interface {
	Trail(ctx context.Context, objects []string, limit int) ([]TrailEntry, error)
}

// TrailResponse is the answer of GET /api/v1/certificates/{serial}/audit.
type TrailResponse struct {
	Serial       string       `json:"serial"`
	CredentialID string       `json:"credentialID,omitempty"`
	Records      []TrailEntry `json:"records"`
	// Truncated says that older records exist beyond the limit.
	Truncated bool `json:"truncated,omitempty"`
}

// trailLimit bounds one answer.
const trailLimit = 200

// Trail handles GET /api/v1/certificates/{serial}/audit.
func (api *API) Trail(w http.ResponseWriter, r *http.Request) {
	serial, ok := api.pathSerial(w, r)
	if !ok {
		return
	}
	if api.opts.Trail == nil {
		problem.Write(w, problem.Details{Status: http.StatusNotImplemented, Title: "Not available", Detail: "this server keeps no audit trail reader", Instance: r.URL.Path})
		return
	}
	rec, ok := api.certificateAt(w, r, serial)
	if !ok {
		return
	}
	objects := []string{rec.Serial}
	if rec.CredentialID != "" {
		objects = append(objects, rec.CredentialID)
	}
	// Recorded before the read, so the trail shows this reading too.
	if !api.record(w, r, policies.ActionReadCertificate, serial, "success", "") {
		return
	}
	entries, err := api.opts.Trail.Trail(r.Context(), objects, trailLimit+1)
	if err != nil {
		api.opts.Logger.ErrorContext(r.Context(), "reading the audit trail", "serial", serial, "err", err)
		problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: "Unavailable", Detail: "the audit trail cannot be read now", Instance: r.URL.Path})
		return
	}
	out := TrailResponse{Serial: rec.Serial, CredentialID: rec.CredentialID, Records: entries}
	if len(out.Records) > trailLimit {
		out.Records, out.Truncated = out.Records[:trailLimit], true
	}
	if out.Records == nil {
		out.Records = []TrailEntry{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
