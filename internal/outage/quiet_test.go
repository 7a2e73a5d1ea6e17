package outage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestQuietHandler(t *testing.T) {
	var buf bytes.Buffer
	h := NewQuietHandler(slog.NewTextHandler(&buf, nil), time.Hour)
	log := slog.New(h).With("service", "tsa")
	down := Mark(fmt.Errorf("committing: %w", errors.New("database or disk is full")))
	for i := range 100 {
		log.Error("allocating a time-stamp serial", "serial", i, "err", down)
	}
	log.Error("recording a time-stamp token", "err", fmt.Errorf("writing: %w", down))
	log.Error("a bug", "err", errors.New("not an outage"))
	log.Error("a bug", "err", errors.New("not an outage"))
	log.Info("allocating a time-stamp serial", "err", down) // below Warn: passes
	out := buf.String()
	for line, want := range map[string]int{
		"allocating a time-stamp serial": 2, "recording a time-stamp token": 1, "a bug": 2, "quieted=": 2,
	} {
		if n := strings.Count(out, line); n != want {
			t.Errorf("%q: %d lines, want %d:\n%s", line, n, want, out)
		}
	}

	// After the window, the next line passes with the count held back.
	buf.Reset()
	h.st.mu.Lock()
	h.st.seen["allocating a time-stamp serial"].last = time.Now().Add(-2 * time.Hour)
	h.st.mu.Unlock()
	log.Error("allocating a time-stamp serial", "err", down)
	if !strings.Contains(buf.String(), "suppressed=99") || !strings.Contains(buf.String(), "service=tsa") {
		t.Errorf("after the window: %s", buf.String())
	}
}
