package outage

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxQuietKeys bounds the messages a QuietHandler remembers; past it, it
// forgets them all (and logs each once more).
const maxQuietKeys = 1024

// QuietHandler keeps an outage from flooding the log: of the warnings and
// errors that carry an outage (an attribute whose value is an error that
// Is reports), it passes the first of each message, then at most one per
// window while they go on, with "suppressed" the number it held back since
// the last. Every other record passes untouched. A full disk or a database
// down fails every request, each of which would log its own line.
type QuietHandler struct {
	next slog.Handler
	st   *quietState
}

// quietState is shared by a QuietHandler and those derived from it.
type quietState struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*quietEntry
}

// quietEntry is one message's last line passed and what was held back since.
type quietEntry struct {
	last       time.Time
	suppressed int
}

// NewQuietHandler wraps next, passing at most one outage line per message
// and window.
func NewQuietHandler(next slog.Handler, window time.Duration) *QuietHandler {
	return &QuietHandler{next: next, st: &quietState{window: window, seen: map[string]*quietEntry{}}}
}

// Enabled is next's.
func (h *QuietHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs derives a handler sharing h's memory of lines passed.
func (h *QuietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &QuietHandler{next: h.next.WithAttrs(attrs), st: h.st}
}

// WithGroup derives a handler sharing h's memory of lines passed.
func (h *QuietHandler) WithGroup(name string) slog.Handler {
	return &QuietHandler{next: h.next.WithGroup(name), st: h.st}
}

// Handle passes r unless it is an outage line of a message passed less
// than a window ago.
func (h *QuietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || !carriesOutage(r) {
		return h.next.Handle(ctx, r)
	}
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	h.st.mu.Lock()
	e := h.st.seen[r.Message]
	if e != nil && now.Sub(e.last) < h.st.window {
		e.suppressed++
		h.st.mu.Unlock()
		return nil
	}
	held := 0
	if e != nil {
		held = e.suppressed
	} else if len(h.st.seen) >= maxQuietKeys {
		clear(h.st.seen)
	}
	h.st.seen[r.Message] = &quietEntry{last: now}
	h.st.mu.Unlock()
	r = r.Clone()
	r.AddAttrs(slog.String("quieted", "a dependency is unavailable: this line is logged at most once per "+h.st.window.String()+" while it lasts"))
	if held > 0 {
		r.AddAttrs(slog.Int("suppressed", held))
	}
	return h.next.Handle(ctx, r)
}

// carriesOutage reports whether one of r's attributes is an outage error.
func carriesOutage(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && Is(err) {
			found = true
			return false
		}
		return true
	})
	return found
}
