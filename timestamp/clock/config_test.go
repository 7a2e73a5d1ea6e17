package clock

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/timestamp"
)

// TestFromConfig: the static sources answer as declared and warn; an
// unknown source is refused.
func TestFromConfig(t *testing.T) {
	for _, tc := range []struct {
		source, warning string
		inSync          bool
	}{
		{timestamp.ClockStatic, "CLOCK DISCIPLINE IS DISABLED", true},
		{timestamp.ClockStaticOutOfSync, "OUT OF SYNC", false},
	} {
		var logs bytes.Buffer
		c := timestamp.DefaultServiceConfig().Timestamp
		c.Clock.Source = tc.source
		chk, err := FromConfig(c, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("%s: %v", tc.source, err)
		}
		st, err := chk.Check(context.Background())
		if err != nil || st.InSync != tc.inSync {
			t.Fatalf("%s: Check() = %+v, %v; want in sync %v", tc.source, st, err, tc.inSync)
		}
		if !strings.Contains(logs.String(), tc.warning) {
			t.Fatalf("%s: no warning %q in %q", tc.source, tc.warning, logs.String())
		}
	}
	c := timestamp.DefaultServiceConfig().Timestamp
	c.Clock.Source = "sundial"
	if _, err := FromConfig(c, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("an unknown clock source was accepted")
	}
}
