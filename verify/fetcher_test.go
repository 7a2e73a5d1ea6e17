package verify

import (
	"crypto/rand"
	"crypto/x509"
	"io"
	"math/big"
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

func TestOnlineCRL(t *testing.T) {
	var crlDER []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(crlDER) //nolint:errcheck
	}))
	defer srv.Close()
	p := newTestPKI(t)
	// Re-issue the leaf with a distribution point on the test server.
	leafTmpl := *p.leaf
	leafTmpl.CRLDistributionPoints = []string{srv.URL + "/root.crl"}
	leafTmpl.OCSPServer = nil
	der, err := x509.CreateCertificate(rand.Reader, &leafTmpl, p.root, &p.leafKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(der)
	now := time.Now()
	crlDER, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(99), RevocationTime: now}}},
		p.root, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Fetcher: &HTTPFetcher{}, AllowOnline: true}
	if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Indication != report.TotalPassed {
		t.Fatalf("CRL without the leaf: %s", summary(r))
	}
	crlDER, _ = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-time.Minute)}}},
		p.root, p.rootKey)
	opts.Fetcher = &HTTPFetcher{}
	if r := verifyBytes(t, opts, p.signPDF(t, signOpts{})); r.Signatures[0].SubIndication != report.RevokedNoPOE {
		t.Fatalf("CRL revoking the leaf: %s", summary(r))
	}
}
