package timestamp

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/thiqa/thiqa/internal/problem"
)

// Media types of RFC 3161 §3.4.
const (
	QueryContentType = "application/timestamp-query"
	ReplyContentType = "application/timestamp-reply"
)

// Handler serves RFC 3161 over HTTP (POST /tsa): a timestamp-query body in,
// a timestamp-reply out. A body that is not a valid request gets an RFC 3161
// rejection (HTTP 200); only when no request can be read at all (wrong
// method or media type, body over the limit) does it answer 4xx with a
// problem JSON body. identify names the requester for the token record; it
// may be nil.
func (a *Authority) Handler(identify func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			problem.Error(w, http.StatusMethodNotAllowed, "time-stamp requests are POSTed")
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != QueryContentType {
			problem.Error(w, http.StatusUnsupportedMediaType, "the body must be "+QueryContentType)
			return
		}
		limit := a.set.maxRequestBytes
		if r.ContentLength > limit {
			problem.Error(w, http.StatusRequestEntityTooLarge, "time-stamp requests are at most "+strconv.FormatInt(limit, 10)+" bytes")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				problem.Error(w, http.StatusRequestEntityTooLarge, "time-stamp requests are at most "+strconv.FormatInt(limit, 10)+" bytes")
				return
			}
			problem.Error(w, http.StatusBadRequest, "reading the request body failed")
			return
		}
		requester := ""
		if identify != nil {
			requester = identify(r)
		}
		resp, _ := a.Respond(r.Context(), body, requester)
		w.Header().Set("Content-Type", ReplyContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(resp)
	})
}
