package timestamp

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
)

// Media types of RFC 3161 §3.4.
const (
	QueryContentType = "application/timestamp-query"
	ReplyContentType = "application/timestamp-reply"
)

// maxRecycledResponse is the largest response buffer the handler keeps for
// reuse (a token with the whole chain is about 4 KiB).
const maxRecycledResponse = 64 << 10

// Header values of every reply, shared (never modified: len == cap).
var (
	replyContentType = []string{ReplyContentType}
	replyNoStore     = []string{"no-store"}
)

// Handler serves RFC 3161 over HTTP (POST /tsa): a timestamp-query body in,
// a timestamp-reply out. A body that is not a valid request gets an RFC 3161
// rejection (HTTP 200); only when no request can be read at all (wrong
// method or media type, body over the limit) does it answer 4xx with a
// problem JSON body. identify names the requester for the token record; it
// may be nil. The reply is written with one Write and a Content-Length.
// Every refusal is recorded before it is answered, within the budget of
// refusal.go.
func (a *Authority) Handler(identify func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			a.refuseHTTP(w, r, identify, http.StatusMethodNotAllowed, "time-stamp requests are POSTed")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != QueryContentType {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != QueryContentType {
				a.refuseHTTP(w, r, identify, http.StatusUnsupportedMediaType, "the body must be "+QueryContentType)
				return
			}
		}
		limit := a.set.maxRequestBytes
		if r.ContentLength > limit {
			a.refuseHTTP(w, r, identify, http.StatusRequestEntityTooLarge, "time-stamp requests are at most "+strconv.FormatInt(limit, 10)+" bytes")
			return
		}
		bp := a.bodies.Get().(*[]byte)
		defer a.bodies.Put(bp)
		body, err := readBody(w, r, limit, (*bp)[:0])
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				a.refuseHTTP(w, r, identify, http.StatusRequestEntityTooLarge, "time-stamp requests are at most "+strconv.FormatInt(limit, 10)+" bytes")
				return
			}
			a.refuseHTTP(w, r, identify, http.StatusBadRequest, "reading the request body failed")
			return
		}
		*bp = body // keep a grown buffer
		requester := ""
		if identify != nil {
			requester = identify(r)
		}
		// Nothing keeps a reference into body once Respond returns. The
		// response is encoded in a recycled buffer, given back once Write
		// has copied or sent it.
		rp := a.responses.Get().(*[]byte)
		resp, used, _, unavailable := a.respondInto(r.Context(), r, body, requester, *rp)
		h := w.Header()
		h["Content-Type"] = replyContentType
		h["Content-Length"] = []string{strconv.Itoa(len(resp))}
		h["Cache-Control"] = replyNoStore
		if unavailable != nil {
			// RFC 3161 has no "try later": the body is a systemFailure,
			// and the HTTP status tells clients and load balancers that
			// the database or the unit key's token is down for now. While
			// the issuing CA is revoked waiting does not help: no
			// Retry-After.
			if !unavailable.noRetry {
				problem.RetryLater(h, http.StatusServiceUnavailable)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(resp)
		if cap(used) <= maxRecycledResponse {
			*rp = used
			a.responses.Put(rp)
		}
	})
}

// readBody reads the request body into buf, at most limit bytes. A body of
// known length is read with one ReadFull; any other through
// http.MaxBytesReader.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, buf []byte) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= limit {
		if int64(cap(buf)) < n {
			buf = make([]byte, 0, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// refuseHTTP records the HTTP refusal of r (status, detail: a request the
// TSA cannot read), within the budget of refusal.go, and answers it with a
// problem body; counted in thiqa_tsa_rejections_total{fail_info="http"}.
// When the record cannot be written the answer is 503 (the audit log is
// down for now) or 500, as a token whose record cannot be written.
func (a *Authority) refuseHTTP(w http.ResponseWriter, r *http.Request, identify func(*http.Request) string, status int, detail string) {
	a.metrics.rejectedHTTP.Inc()
	// identify runs only for a refusal that is recorded (refusal.identify).
	if err := a.recordRefusal(r.Context(), r, "", refusal{httpStatus: status, text: detail, identify: identify}); err != nil {
		w.Header().Del("Allow")
		if outage.Is(err) {
			problem.Unavailable(w, r.URL.Path)
			return
		}
		problem.Error(w, http.StatusInternalServerError, "the audit log is unavailable")
		return
	}
	problem.Error(w, status, detail)
}
