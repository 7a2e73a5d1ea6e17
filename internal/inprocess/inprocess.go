// Package inprocess is an http.RoundTripper that answers a deployment's own
// URLs with the server's own handler. The signing service reaches this
// deployment's TSA, OCSP responder and CRLs through it: the time-stamps and
// revocation data of B-T…B-LTA come from this server even when it listens
// on another address than publicBaseURL names.
package inprocess

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Transport answers requests for one host with a handler, without a
// network round trip; any other host goes to Next.
type Transport struct {
	// Host is the host (and port, if any) answered in process.
	Host string
	// Handler answers; its requests come from RemoteAddr "in-process".
	Handler http.Handler
	// Next carries every other request (http.DefaultTransport).
	Next http.RoundTripper
}

// MaxResponse bounds an in-process reply (CRLs included): a larger one
// fails the request.
const MaxResponse = 64 << 20

// RoundTrip answers req with Handler when it is for Host: the request is
// cloned, its reply buffered (at most MaxResponse bytes); the caller's
// context cancels the wait, and a handler that panics fails the request.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.Host {
		return t.Next.RoundTrip(req)
	}
	rec := &responseBuffer{header: http.Header{}}
	r := req.Clone(req.Context())
	r.RemoteAddr = "in-process"
	r.RequestURI = req.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	done := make(chan struct{})
	var panicked any
	go func() {
		defer close(done)
		defer func() { panicked = recover() }()
		t.Handler.ServeHTTP(rec, r)
	}()
	select {
	case <-done:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	if panicked != nil {
		return nil, fmt.Errorf("in-process handler for %s failed", req.URL.Path)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.overflow {
		return nil, fmt.Errorf("in-process reply for %s exceeds %d bytes", req.URL.Path, MaxResponse)
	}
	return &http.Response{
		Status: strconv.Itoa(rec.status) + " " + http.StatusText(rec.status), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

// responseBuffer is the http.ResponseWriter of an in-process request.
type responseBuffer struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func (b *responseBuffer) Header() http.Header { return b.header }
func (b *responseBuffer) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > MaxResponse {
		b.overflow = true
		return 0, errors.New("reply too large")
	}
	return b.body.Write(p)
}
