package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/outage"
)

// TestLoggerQuietsOutages: while the disk is full (or the database down)
// every request fails with the same error; the log says it once, not once
// per request, in both formats.
func TestLoggerQuietsOutages(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log := newLogger(&buf, config.LogConfig{Format: format}).With("service", "tsa")
		full := outage.Mark(errors.New("committing: database or disk is full (13)"))
		for range 500 {
			log.Error("allocating a time-stamp serial", "err", full)
		}
		log.Error("allocating a time-stamp serial", "err", errors.New("a bug"))
		if n := strings.Count(buf.String(), "allocating a time-stamp serial"); n != 2 {
			t.Errorf("%s: %d lines for 500 failures of an outage and one other, want 2:\n%s", format, n, buf.String())
		}
	}
}
