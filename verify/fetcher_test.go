package verify

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

func TestOnlineOCSP(t *testing.T) {
	var p *testPKI
	var status atomic.Int32
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		now := time.Now()
		tmpl := ocsp.Response{Status: int(status.Load()), SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute),
			NextUpdate: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute)}
		der, err := ocsp.CreateResponse(p.root, p.root, tmpl, p.rootKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der) //nolint:errcheck
	}))
	defer srv.Close()
	p = newTestPKIWith(t, srv.URL)
	pdf := p.signPDF(t, signOpts{})
	fetcher := &HTTPFetcher{}
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Fetcher: fetcher, AllowOnline: true, FetchTimeout: 5 * time.Second}

	status.Store(ocsp.Good)
	r := verifyBytes(t, opts, pdf)
	if r.Indication != report.TotalPassed {
		t.Fatalf("good OCSP: %s", summary(r))
	}
	r = verifyBytes(t, opts, pdf)
	if r.Indication != report.TotalPassed || hits.Load() != 1 {
		t.Fatalf("cached OCSP: %s, %d requests", summary(r), hits.Load())
	}

	status.Store(ocsp.Revoked)
	r = verifyBytes(t, Options{TrustAnchors: opts.TrustAnchors, Fetcher: &HTTPFetcher{}, AllowOnline: true}, pdf)
	if s := r.Signatures[0]; s.Indication != report.Indeterminate || s.SubIndication != report.RevokedNoPOE {
		t.Fatalf("revoked after the claimed signing time: %s", summary(r))
	}

	offline := Options{TrustAnchors: opts.TrustAnchors, Fetcher: &HTTPFetcher{}}
	if r := verifyBytes(t, offline, pdf); r.Signatures[0].SubIndication != report.TryLater {
		t.Fatalf("online fetching off: %s", summary(r))
	}
}
