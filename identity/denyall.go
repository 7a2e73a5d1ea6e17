package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/problem"
)

// DenyAllResponse is the JSON answer to POST /oidc/mobile/deny-all.
type DenyAllResponse struct {
	Status string `json:"status"` // denied
	// Denied counts the logins this request denied (0 when none was
	// pending).
	Denied int `json:"denied"`
}

// ActionDenyAll is the audit action of a citizen denying all their
// pending logins from the phone (PathMobileDenyAll).
const ActionDenyAll = "oidc.login.deny-all"

// reasonDeniedByCitizen is the Reason of a login the citizen denied.
const reasonDeniedByCitizen = "denied by the citizen from the phone"

// denyAllRounds bounds the lists mobileDenyAll works through: each holds
// MaxPendingListed logins, and nodes sharing a database may let a few
// more than that in.
const denyAllRounds = 4

// mobileDenyAll lets the citizen end every login awaiting their approval
// at once, from the phone: POST /oidc/mobile/deny-all, with the
// citizen's own credentials as for the list and the approval. Whoever
// knows a citizen's civil number can start logins for it; under number
// matching the citizen cannot approve them and could not clear them
// either. Each such login is denied (the browser that started it gets
// access_denied), the citizen's own pending ones too (they start again),
// and one audit record names them all. The addresses that started them
// may start no login for the citizen for one LoginLifetime (roomForLogin
// refuses them as past the bound), so that a few addresses cannot fill
// the bound again at once; the citizen's browser elsewhere still can, and
// so can the caller's own address (a phone and a browser on one home
// network share it). The body is empty or an empty JSON object.
func (p *Provider) mobileDenyAll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	civil, ok := p.caller(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		var in struct{}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&in); err == nil && dec.More() {
			err = errors.New("trailing data")
		}
	}
	if err != nil {
		p.phoneRefusal(w, r, civil, r.URL.Path, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: "want no body or an empty JSON object"})
		return
	}
	now := p.now()
	// The address the citizen denies from is not blocked: a phone and a
	// browser at home often share one, and the caller is the citizen.
	self := clientip.FromRequest(r).Key()
	denied, blocked := []string{}, []string{}
	var failed error
rounds:
	for range denyAllRounds {
		ls, err := p.cfg.Store.PendingLogins(ctx, civil, now)
		if err != nil {
			failed = err
			break
		}
		for _, l := range ls {
			l.State, l.Reason = LoginDenied, reasonDeniedByCitizen
			switch err := p.cfg.Store.UpdateLogin(ctx, l, LoginPending); {
			case err == nil:
				denied = append(denied, l.ID)
				if l.ClientKey != "" && l.ClientKey != self && !slices.Contains(blocked, l.ClientKey) {
					blocked = append(blocked, l.ClientKey)
				}
			case errors.Is(err, ErrConflict):
				// Approved, denied or completed meanwhile: no longer pending.
			default:
				failed = err
				break rounds
			}
		}
		if len(ls) < MaxPendingListed {
			break
		}
	}
	// Whatever was denied blocks its addresses, even when a later round
	// failed.
	if err := p.cfg.Store.BlockLoginStarts(ctx, civil, blocked, now.Add(p.cfg.LoginLifetime)); err != nil && failed == nil {
		failed = err
	}
	outcome, details := "success", map[string]any{"sessions": denied, "denied": len(denied), "blockedAddresses": blocked, "remote": r.RemoteAddr}
	if failed != nil {
		p.log.ErrorContext(ctx, "denying pending logins", "err", failed)
		outcome, details["reason"] = "failure", failed.Error()
	}
	aerr := p.audit(ctx, "citizen:"+civil, ActionDenyAll, "citizen:"+civil, outcome, details)
	p.m.logins.WithLabelValues(MethodMobile, "refused").Add(float64(len(denied)))
	switch {
	case failed != nil:
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to deny the pending logins; try again")
		return
	case aerr != nil:
		// The logins stay denied (the safe side); the citizen is told the
		// record is missing, as for a denied approval.
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to record the denial")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, DenyAllResponse{Status: string(LoginDenied), Denied: len(denied)})
}
