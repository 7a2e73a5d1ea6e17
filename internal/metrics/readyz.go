package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// ReadinessHandler answers GET /readyz: 200 with "ok" for each check when
// every dependency answers within readinessTimeout, else 503 with the
// failing checks' errors (on one line). A warning shows in place of its
// check's "ok" without failing it; a warning with no check of the same
// name is an entry of its own, "ok" while it says nothing.
func ReadinessHandler(checks map[string]func(context.Context) error, warnings map[string]func() string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		status := http.StatusOK
		result := map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status = http.StatusServiceUnavailable
				result[name] = strings.Join(strings.Fields(err.Error()), " ")
				continue
			}
			result[name] = "ok"
		}
		for name, warn := range warnings {
			msg := warn()
			switch {
			case msg != "" && (result[name] == "ok" || result[name] == ""):
				result[name] = "warning: " + msg
			case result[name] == "":
				result[name] = "ok" // a warning with no check of its own
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(result)
	}
}

// WarningOf makes check a warning (ReadinessHandler, RegisterReadiness):
// its error, on one line, when it fails within readinessTimeout; "" when
// it passes. For what the operator must hear of without the load balancer
// taking the instance out.
func WarningOf(check func(context.Context) error) func() string {
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
		defer cancel()
		if err := check(ctx); err != nil {
			return strings.Join(strings.Fields(err.Error()), " ")
		}
		return ""
	}
}
