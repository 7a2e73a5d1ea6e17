package revocation

import (
	"strings"
	"testing"
	"time"
)

func TestResultWriteText(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		r    Result
		want string
	}{
		{Result{Revocation: Revocation{Serial: "0a", CA: "citizen", Reason: 4, RevokedAt: at}},
			"revoked 0a (CA citizen, superseded) at 2026-01-02T03:04:05Z\n"},
		{Result{Revocation: Revocation{Serial: "0a", CA: "citizen", Reason: 4, RevokedAt: at}, AlreadyRevoked: true, KeyBlocked: true,
			AlsoRevoked: []Revocation{{Serial: "0b", CA: "agency"}}},
			"0a was already revoked (CA citizen, superseded) at 2026-01-02T03:04:05Z; its revocation stands\n" +
				"key blocked: it can never be certified again\nalso revoked 0b (CA agency, same key, keyCompromise)\n"},
	} {
		var b strings.Builder
		if err := c.r.WriteText(&b); err != nil || b.String() != c.want {
			t.Errorf("got %q (%v), want %q", b.String(), err, c.want)
		}
	}
}
