// Package accesslog is the access log of `thiqa serve`: one line per HTTP
// request with its outcome and duration, and the draining of the unread
// body of a refused request so that the client sees the refusal.
package accesslog

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/thiqa/thiqa/internal/clientip"
)

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Handler logs every request to next with its outcome and duration (debug;
// a 5xx at warn). Query strings are left out: they may carry credentials.
// "remote" is the client (clientip.Resolver.Middleware, outside, has
// resolved it); behind a trusted proxy, "peer" is the proxy that connected.
// The unread body of a refused request (4xx, 5xx) is drained first
// (drainRefused).
func Handler(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if rec.status >= 400 {
			drainRefused(r)
		}
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		if !logger.Enabled(r.Context(), level) {
			return // spare the attribute allocations on every request
		}
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"bytes", rec.bytes, "duration", time.Since(start), "remote", r.RemoteAddr}
		if c := clientip.FromRequest(r); c.Forwarded {
			attrs = append(attrs, "peer", c.Peer)
		}
		logger.Log(r.Context(), level, "http request", attrs...)
	})
}

// maxDrain bounds what is read of a refused request's unread body.
const maxDrain = 256 << 10

// drainRefused reads what the handler of a refused request left unread of
// its body (at most maxDrain bytes) before the answer leaves. A refusal
// written before the body is read (authentication, a credential that is
// not the caller's) otherwise closes the connection on a client still
// sending the document, which then sees a reset instead of the refusal:
// net/http drains such bodies itself only on connections it keeps alive.
func drainRefused(r *http.Request) {
	if r.Body != nil && r.ContentLength != 0 && r.ContentLength <= maxDrain {
		_, _ = io.CopyN(io.Discard, r.Body, maxDrain)
	}
}
