package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestPrometheusRules checks the alert rules with promtool (Debian's
// prometheus package) and runs their unit tests: the TSA clock, HSM,
// readiness, audit, CRL and signing-error alerts fire when they must and
// stay quiet otherwise.
func TestPrometheusRules(t *testing.T) {
	promtool := testenv.Tool(t, "promtool")
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	out := run(t, nil, promtool, "check", "rules", filepath.Join(dir, "thiqa-rules.yml"))
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
	out = run(t, nil, promtool, "test", "rules", filepath.Join(dir, "thiqa-rules.test.yml"))
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
	// The unit tests cover at least the clock, HSM, outage and busy alerts.
	tests := mustRead(t, filepath.Join(dir, "thiqa-rules.test.yml"))
	for _, alert := range []string{"ThiqaTSAClockOutOfSync", "ThiqaTSAClockUnknown", "ThiqaHSMSignatureFailed", "ThiqaHSMVerifyAfterSignFailed",
		"ThiqaHSMCallsHung", "ThiqaHSMCallTimeouts", "ThiqaHSMTokenFull", "ThiqaOCSPTryLater", "ThiqaOCSPResponderUnusable", "ThiqaHTTPErrorRatioHigh", "ThiqaVerifyBusy", "ThiqaCMPUnavailable",
		"ThiqaCMPFollowUpFailed", "ThiqaTSAUnitIssuerRevoked"} {
		if !strings.Contains(tests, "alertname: "+alert+"\n        exp_alerts:\n          - exp_labels") {
			t.Errorf("no unit test shows %s firing", alert)
		}
	}
}
