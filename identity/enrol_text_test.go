package identity

import (
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
)

// WriteEnrolled names the credential and the civil number, and with an
// activation code the code, its expiry and where it is redeemed.
func TestWriteEnrolled(t *testing.T) {
	var b strings.Builder
	if err := WriteEnrolled(&b, "cred-1", "12345678", nil); err != nil || b.String() != "mobile ID enrolled: credential cred-1, civil number 12345678\n" {
		t.Fatalf("without a code: %q, %v", b.String(), err)
	}
	b.Reset()
	a := &pin.Activation{Code: "K7QM-2XWD-9HPA", Expires: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	if err := WriteEnrolled(&b, "cred-1", "12345678", a); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"activation code: K7QM-2XWD-9HPA (valid until 2026-11-22T10:00:00Z)", "POST /api/v1/credentials/cred-1/pin/activate\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("with a code: %q lacks %q", b.String(), want)
		}
	}
}
