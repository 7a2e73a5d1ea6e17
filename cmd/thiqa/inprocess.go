package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// inProcessTransport answers requests for this deployment's own URLs (host
// = publicBaseURL's host) with the server's own handler, without a network
// round trip; any other URL goes to next. The time-stamps and the OCSP
// responses and CRLs of B-T…B-LTA thus come from this server's TSA and
// revocation services even when it listens on another address.
type inProcessTransport struct {
	host    string
	handler http.Handler
	next    http.RoundTripper
}

// maxInProcessResponse bounds an in-process reply (CRLs included).
const maxInProcessResponse = 64 << 20

func (t *inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.next.RoundTrip(req)
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
		t.handler.ServeHTTP(rec, r)
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
		return nil, fmt.Errorf("in-process reply for %s exceeds %d bytes", req.URL.Path, maxInProcessResponse)
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
	if b.body.Len()+len(p) > maxInProcessResponse {
		b.overflow = true
		return 0, errors.New("reply too large")
	}
	return b.body.Write(p)
}
