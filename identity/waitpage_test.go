package identity

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWaitPageLabelsCarryTheirColon: on the mobile-ID waiting page each
// language's label ends with its own colon. The Arabic label is a block of
// its own (right to left), so a ": " written after it began the line of
// the verification code, which then read ": 4821".
func TestWaitPageLabelsCarryTheirColon(t *testing.T) {
	w := httptest.NewRecorder()
	renderPage(w, 200, "wait", waitPage{Code: "4821", Session: "s-1", Key: "k", Action: "/oidc/mobile/wait"})
	body := w.Body.String()
	for _, want := range []string{
		`Verification code: <span lang="ar">رمز التحقق:</span> <span class="code" id="verification_code">4821</span>`,
		`Session: <span lang="ar">الجلسة:</span> <code id="session">s-1</code>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the waiting page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "</span>: ") {
		t.Errorf("a colon follows the Arabic label, starting the next line:\n%s", body)
	}
}
