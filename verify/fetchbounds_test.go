package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/report"
)

// reissueLeaf gives p's leaf other revocation locations.
func reissueLeaf(t *testing.T, p *testPKI, ocspURLs, crlURLs []string) {
	t.Helper()
	tmpl := *p.leaf
	tmpl.OCSPServer, tmpl.CRLDistributionPoints = ocspURLs, crlURLs
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.root, &p.leafKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(der)
}

func failing(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "no", http.StatusInternalServerError)
}

// An uploaded certificate that does not chain to a trust anchor (the
// uploader's own CA) makes the verifier fetch nothing, whatever URLs it
// names: revocation is asked only of a certificate whose signature a
// trusted path has verified.
func TestNoFetchForUntrustedCertificates(t *testing.T) {
	srv, hits := countingServer(t, failing)
	attacker := newTestPKIWith(t, srv.URL+"/ocsp")
	reissueLeaf(t, attacker, []string{srv.URL + "/ocsp"}, []string{srv.URL + "/crl"})
	pdf := attacker.signPDF(t, signOpts{timestamp: true})
	other := newTestPKI(t)
	for name, anchors := range map[string][]*x509.Certificate{"another root": {other.root}, "no anchor": nil} {
		r := verifyBytes(t, Options{TrustAnchors: anchors, Fetcher: &HTTPFetcher{}, AllowOnline: true}, pdf)
		if r.Signatures[0].SubIndication != report.NoCertificateChainFound {
			t.Errorf("%s: %s", name, summary(r))
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("untrusted certificates caused %d fetches", n)
	}
	// The same document under its own root does fetch (the test's control).
	verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{attacker.root}, Fetcher: &HTTPFetcher{}, AllowOnline: true}, pdf)
	if hits.Load() == 0 {
		t.Fatal("no fetch even for a trusted path")
	}
}

// A public verifier connects to no internal address, and its report says
// only that the fetch could not be done: no URL, port or network error an
// anonymous caller could map an internal network with.
func TestPublicVerifierFetches(t *testing.T) {
	var p *testPKI
	srv, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		now := time.Now()
		der, _ := ocsp.CreateResponse(p.root, p.root, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, p.rootKey)
		_, _ = w.Write(der)
	})
	p = newTestPKIWith(t, srv.URL+"/ocsp")
	pdf := p.signPDF(t, signOpts{})
	var logs bytes.Buffer
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, AllowOnline: true, FetchTimeout: 5 * time.Second, Public: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	rep, err := NewOnline(opts).VerifyPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)))
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Signatures[0]
	if s.Indication != report.Indeterminate || s.SubIndication != report.TryLater {
		t.Errorf("internal responder refused: %s", summary(rep))
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("a public verifier sent %d requests to a loopback responder", n)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	text := strings.Join(append(append(s.Warnings, s.Errors...), rep.Warnings...), "\n")
	for _, leak := range []string{"127.0.0.1", port, "/ocsp", "not allowed", "refused", "dial"} {
		if strings.Contains(text, leak) {
			t.Errorf("the public report tells %q:\n%s", leak, text)
		}
	}
	if !strings.Contains(text, "could not be fetched online") {
		t.Errorf("the report does not say the check could not be done:\n%s", text)
	}
	if !strings.Contains(logs.String(), "127.0.0.1") {
		t.Errorf("the operator's log lacks the detail:\n%s", logs.String())
	}
	// This deployment's own host stays reachable.
	opts.FetchAllowHosts = []string{hostOf(t, srv.URL)}
	rep, err = NewOnline(opts).VerifyPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)))
	if err != nil || rep.Indication != report.TotalPassed {
		t.Fatalf("allowed host: %v %s", err, summary(rep))
	}
}

// One document causes a bounded number of requests, however many
// locations its certificates name, and a failed fetch is not repeated for
// the same certificate (here: at the proven signing time).
func TestFetchesPerDocumentBounded(t *testing.T) {
	srv, hits := countingServer(t, failing)
	p := newTestPKI(t)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("%s/%d", srv.URL, i))
	}
	reissueLeaf(t, p, many, many)
	pdf := p.signPDF(t, signOpts{timestamp: true})

	r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, Fetcher: &HTTPFetcher{}, AllowOnline: true}, pdf)
	if s := r.Signatures[0]; s.SubIndication != report.TryLater {
		t.Fatalf("all fetches failing: %s", summary(r))
	}
	if n := hits.Load(); n != 6 {
		t.Errorf("80 locations: %d requests, want 3 OCSP + 3 CRL", n)
	}

	hits.Store(0)
	r = verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, Fetcher: &HTTPFetcher{}, AllowOnline: true, MaxFetchesPerDocument: 2}, pdf)
	if n := hits.Load(); n != 2 {
		t.Errorf("limit 2: %d requests", n)
	}
	s := r.Signatures[0]
	if s.Indication != report.Indeterminate || s.SubIndication != report.TryLater ||
		!strings.Contains(strings.Join(s.Warnings, "\n"), "limit of online fetches") {
		t.Errorf("limit reached: %s %q", summary(r), s.Warnings)
	}

	// One location: one request, not one more at the proven signing time
	// (the timestamp passes: the TSA's OCSP response is in the DSS).
	reissueLeaf(t, p, []string{srv.URL + "/ocsp"}, nil)
	hits.Store(0)
	pdf = addDSS(p.signPDF(t, signOpts{timestamp: true}), [][]byte{p.ocspFor(t, p.tsa)}, nil)
	r = verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, Fetcher: &HTTPFetcher{}, AllowOnline: true}, pdf)
	if s := r.Signatures[0]; s.ProvenSigningTime == nil {
		t.Fatalf("no proven signing time: %s", summary(r))
	}
	if n := hits.Load(); n != 1 || r.Signatures[0].SubIndication != report.TryLater {
		t.Errorf("one failing responder: %d requests, %s", n, summary(r))
	}
}

// The fetcher's cache stays within its bounds in entries and bytes.
func TestFetcherCacheBounded(t *testing.T) {
	h := &HTTPFetcher{MaxCacheEntries: 3, MaxCacheBytes: 1000}
	for i := range 50 {
		h.put([32]byte{byte(i)}, make([]byte, 300), time.Now().Add(time.Hour+time.Duration(i)*time.Second))
		if len(h.cache) > 3 || h.cacheBytes > 1000 {
			t.Fatalf("after %d values: %d entries, %d bytes", i+1, len(h.cache), h.cacheBytes)
		}
	}
	if _, ok := h.get([32]byte{49}); !ok {
		t.Error("the newest value was dropped")
	}
	h.put([32]byte{99}, make([]byte, 2000), time.Now().Add(time.Hour))
	if _, ok := h.get([32]byte{99}); ok || h.cacheBytes > 1000 {
		t.Error("a value larger than the cache was kept")
	}
	// Defaults: at most 4096 values.
	d := &HTTPFetcher{}
	for i := range 5000 {
		d.put([32]byte{byte(i), byte(i >> 8)}, []byte{1}, time.Now().Add(time.Hour))
	}
	if len(d.cache) > 4096 {
		t.Errorf("default cache: %d values", len(d.cache))
	}
}

// The fetcher sends at most MaxConcurrent requests at once, over all
// callers.
func TestFetcherConcurrencyBounded(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	srv, _ := countingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		http.Error(w, "no", http.StatusServiceUnavailable)
	})
	h := &HTTPFetcher{MaxConcurrent: 2}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var wg sync.WaitGroup
	for i := range 6 {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "c"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), CRLDistributionPoints: []string{fmt.Sprintf("%s/%d.crl", srv.URL, i)}}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		c, _ := x509.ParseCertificate(der)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = h.FetchCRL(context.Background(), c)
		}()
	}
	time.Sleep(300 * time.Millisecond)
	close(release)
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("peak of %d requests in flight, want 2", p)
	}
}
