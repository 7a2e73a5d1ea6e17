package auth

import (
	"encoding/json"
	"net/http"

	"github.com/thiqa/thiqa/internal/problem"
)

// WhoAmI answers GET /api/v1/whoami behind Require: the authenticated
// caller as JSON (subject, roles, method, issuer, organizationIdentifier,
// civilNumber), so that a client can check its credentials; 401 with a
// problem body when no caller was authenticated.
func WhoAmI(w http.ResponseWriter, r *http.Request) {
	p, ok := FromContext(r.Context())
	if !ok {
		problem.Error(w, http.StatusUnauthorized, "no authenticated caller")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"subject":                p.Subject,
		"roles":                  p.Roles,
		"method":                 p.Method,
		"issuer":                 p.Issuer,
		"organizationIdentifier": p.OrganizationIdentifier,
		"civilNumber":            p.CivilNumber,
	})
}
