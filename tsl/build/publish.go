package build

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/verify/tsl"
)

// Published serves the list a build wrote to a file (GET /tsl.xml), read
// again when the file's modification time changes; 404 with a problem body
// until there is one.
type Published struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	mtime time.Time
	body  []byte
}

// NewPublished serves the list in the file path, logging read failures.
func NewPublished(path string, log *slog.Logger) *Published {
	return &Published{path: path, log: log}
}

// ServeHTTP answers with the list (conditional requests and ranges as
// http.ServeContent does).
func (f *Published) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st, err := os.Stat(f.path)
	if err != nil {
		problem.Error(w, http.StatusNotFound, "no trusted list has been published yet")
		return
	}
	f.mu.Lock()
	if !st.ModTime().Equal(f.mtime) || f.body == nil {
		body, err := os.ReadFile(f.path)
		if err != nil {
			f.mu.Unlock()
			f.log.Error("reading the trusted list", "file", f.path, "error", err)
			problem.Error(w, http.StatusInternalServerError, "the trusted list cannot be read")
			return
		}
		f.body, f.mtime = body, st.ModTime()
	}
	body, mtime := f.body, f.mtime
	f.mu.Unlock()
	w.Header().Set("Content-Type", tsl.MimeTypeTSL)
	http.ServeContent(w, r, "tsl.xml", mtime, bytes.NewReader(body))
}
