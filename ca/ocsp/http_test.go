package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/internal/outage"
)

type fixture struct {
	p   *pki
	src *memStatus
	r   *Responder
	srv *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	src.set("citizen", 8, Status{State: Revoked, RevokedAt: time.Now().Add(-time.Hour), Reason: 5})
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 7*24*time.Hour)}}, src, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PresignAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &fixture{p: p, src: src, r: r, srv: srv}
}

func (f *fixture) get(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestGETWithCachingHeaders(t *testing.T) {
	f := newFixture(t)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		der, err := NewRequest(f.p.ca, big.NewInt(8), h, nil)
		if err != nil {
			t.Fatal(err)
		}
		b64 := base64.StdEncoding.EncodeToString(der)
		for _, path := range []string{"/ocsp/" + b64, "/ocsp/" + url.PathEscape(b64), "/ocsp/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(b64),
			"/ocsp/" + strings.TrimRight(b64, "=")} {
			resp, body := f.get(t, path, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ocsp-response" {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			parsed, err := xocsp.ParseResponse(body, f.p.ca)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if parsed.Status != xocsp.Revoked || parsed.RevocationReason != 5 || parsed.SerialNumber.Int64() != 8 || parsed.IssuerHash != h {
				t.Fatalf("%s: %+v", path, parsed)
			}
			for name, res := range zlint.LintOcspResponse(parsed).Results {
				if res.Status == lint.Error || res.Status == lint.Fatal || res.Status == lint.Warn {
					t.Fatalf("zlint %s: %s", name, res.Details)
				}
			}
			cc := resp.Header.Get("Cache-Control")
			age, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(cc, "public, max-age="), ", no-transform, must-revalidate"))
			if err != nil || age <= 0 || age > 300 || time.Duration(age)*time.Second > time.Until(parsed.NextUpdate) {
				t.Fatalf("Cache-Control %q", cc)
			}
			etag := resp.Header.Get("ETag")
			if etag == "" || resp.Header.Get("Last-Modified") == "" || resp.Header.Get("Expires") == "" {
				t.Fatalf("headers %v", resp.Header)
			}
			if resp, _ := f.get(t, path, map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
				t.Fatalf("conditional GET %d", resp.StatusCode)
			}
		}
	}
}

func ocspStatus(t *testing.T, body []byte) int {
	t.Helper()
	if len(body) != 5 || body[0] != 0x30 {
		t.Fatalf("not an error OCSPResponse: %x", body)
	}
	return int(body[4])
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	good, _ := NewRequest(f.p.ca, big.NewInt(7), crypto.SHA1, nil)
	foreign, _ := NewRequest(newPKI(t, "Other").ca, big.NewInt(7), crypto.SHA1, nil)
	post := func(body []byte, ct string) (*http.Response, []byte) {
		resp, err := http.Post(f.srv.URL+"/ocsp", ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	unknownHash := bytes.Replace(good, []byte{0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a}, []byte{0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1b}, 1)
	big := make([]byte, MaxRequestSize+10)
	rand.Read(big)
	for name, c := range map[string]struct {
		body []byte
		want int
	}{
		"garbage": {[]byte("hello, world"), 1}, "empty": {nil, 1}, "truncated": {good[:len(good)-3], 1},
		"trailing": {append(append([]byte{}, good...), 0), 1}, "oversized": {big, 1}, "unknown hash": {unknownHash, 1},
		"foreign CA": {foreign, 6},
	} {
		resp, body := post(c.body, "application/ocsp-request")
		if resp.StatusCode != 200 || ocspStatus(t, body) != c.want {
			t.Errorf("%s: HTTP %d, OCSP status %x, want %d", name, resp.StatusCode, body, c.want)
		}
	}
	if resp, _ := post(good, "text/plain"); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("wrong content type: %d", resp.StatusCode)
	}
	for _, path := range []string{"/ocsp/", "/ocsp/!!!", "/ocsp/" + strings.Repeat("A", maxBase64+4), "/other"} {
		if _, body := f.get(t, path, nil); ocspStatus(t, body) != 1 {
			t.Errorf("GET %s: %x", path, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/ocsp", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v", resp.StatusCode, err)
	}
}

func TestMultipleCertIDsAndNonce(t *testing.T) {
	f := newFixture(t)
	one, _ := NewRequest(f.p.ca, big.NewInt(7), crypto.SHA1, []byte("0123456789abcdef"))
	two, _ := NewRequest(f.p.ca, big.NewInt(8), crypto.SHA256, nil)
	parsed1, _ := ParseRequest(one)
	parsed2, _ := ParseRequest(two)
	if parsed1.Nonce == nil || parsed2.Nonce != nil {
		t.Fatal("nonce parsing")
	}
	// Hand-build a request with both CertIDs and the nonce.
	multi := buildMulti(t, [][]byte{parsed1.CertIDs[0].Raw, parsed2.CertIDs[0].Raw}, parsed1.Nonce)
	resp, e := f.r.Respond(context.Background(), multi)
	if e != nil {
		t.Fatal("multi response offered for HTTP caching")
	}
	// x/crypto/ocsp reads the first response only; check all with ParseResponseForCert.
	for serial, want := range map[int64]int{7: xocsp.Good, 8: xocsp.Revoked} {
		leaf := f.p.leaf(t, serial)
		r, err := xocsp.ParseResponseForCert(resp, leaf, f.p.ca)
		if err != nil || r.Status != want {
			t.Fatalf("serial %d: %v %+v", serial, err, r)
		}
		if n := responseNonce(t, resp); !bytes.Equal(n, parsed1.Nonce) {
			t.Fatalf("nonce %x echoed, want %x", n, parsed1.Nonce)
		}
	}
	// Certificates of two different CAs in one request are refused.
	other := newPKI(t, "Second")
	src := f.src
	r2, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: f.p.ca, Responder: f.p.responder(t, 48*time.Hour)},
		{Name: "organisation", Cert: other.ca, Responder: other.responder(t, 48*time.Hour)}}, src, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := NewRequest(other.ca, big.NewInt(7), crypto.SHA1, nil)
	po, _ := ParseRequest(o)
	if resp, _ := r2.Respond(context.Background(), buildMulti(t, [][]byte{parsed1.CertIDs[0].Raw, po.CertIDs[0].Raw}, nil)); ocspStatus(t, resp) != 1 {
		t.Fatalf("mixed CAs: %x", resp)
	}
}

func buildMulti(t *testing.T, ids [][]byte, nonce []byte) []byte {
	t.Helper()
	var list []byte
	for _, id := range ids {
		list = append(list, derTLV(0x30, id)...)
	}
	tbs := derTLV(0x30, list)
	if nonce != nil {
		ext := derTLV(0x30, append([]byte{0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02}, derTLV(0x04, nonce)...))
		tbs = append(tbs, derTLV(0xa2, derTLV(0x30, ext))...)
	}
	return derTLV(0x30, derTLV(0x30, tbs))
}

func derTLV(tag byte, body []byte) []byte {
	n := len(body)
	var hdr []byte
	switch {
	case n < 0x80:
		hdr = []byte{tag, byte(n)}
	case n < 0x100:
		hdr = []byte{tag, 0x81, byte(n)}
	default:
		hdr = []byte{tag, 0x82, byte(n >> 8), byte(n)}
	}
	return append(hdr, body...)
}

// TestRevocationIsFinalInCache: a presign run that read "good" before the
// revocation cannot overwrite the revoked answer.
func TestRevocationIsFinalInCache(t *testing.T) {
	f := newFixture(t)
	f.src.set("citizen", 7, Status{State: Revoked, RevokedAt: time.Now(), Reason: 1})
	if err := f.r.Revoked(context.Background(), "citizen", big.NewInt(7)); err != nil {
		t.Fatal(err)
	}
	is := f.r.issuers["citizen"]
	if _, err := f.r.signStatus(context.Background(), is, crypto.SHA1, big.NewInt(7), Status{State: Good}, sigPresign); err != nil {
		t.Fatal(err)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		req, _ := NewRequest(f.p.ca, big.NewInt(7), h, nil)
		resp, _ := f.r.Respond(context.Background(), req)
		r, err := xocsp.ParseResponse(resp, f.p.ca)
		if err != nil || r.Status != xocsp.Revoked {
			t.Fatalf("%s: %v %+v", h, err, r)
		}
	}
	// Revoked refuses when the store does not say revoked.
	if err := f.r.Revoked(context.Background(), "citizen", big.NewInt(99)); err == nil {
		t.Fatal("Revoked accepted a serial the store does not report revoked")
	}
}

type renewer struct {
	t *testing.T
	p *pki
}

func (r renewer) RenewResponder(context.Context, string, *x509.Certificate) (ResponderRenewal, error) {
	return ResponderRenewal{Responder: r.p.responder(r.t, 10*24*time.Hour)}, nil
}

// responseNonce returns the nonce extension value of a response's
// responseExtensions (x/crypto/ocsp does not expose them).
func responseNonce(t *testing.T, der []byte) []byte {
	t.Helper()
	var outer struct {
		Status asn1.Enumerated
		Bytes  struct {
			Type     asn1.ObjectIdentifier
			Response []byte
		} `asn1:"explicit,tag:0"`
	}
	var basic struct {
		TBS struct {
			ResponderID asn1.RawValue
			ProducedAt  time.Time `asn1:"generalized"`
			Responses   []asn1.RawValue
			Exts        []pkix.Extension `asn1:"explicit,tag:1,optional"`
		}
		Alg   pkix.AlgorithmIdentifier
		Sig   asn1.BitString
		Certs []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(outer.Bytes.Response, &basic); err != nil {
		t.Fatal(err)
	}
	for _, e := range basic.TBS.Exts {
		if e.Id.Equal(oidNonce) {
			return e.Value
		}
	}
	return nil
}

func TestResponderRenewal(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	old := p.responder(t, 30*time.Hour) // inside RenewBefore (48h)
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: old}}, src, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA1, nil)
	resp, _ := r.Respond(context.Background(), req)
	parsed, _ := xocsp.ParseResponse(resp, p.ca)
	if !parsed.NextUpdate.Equal(old.Cert.NotAfter.Truncate(time.Second)) && parsed.NextUpdate.After(old.Cert.NotAfter) {
		t.Fatalf("nextUpdate %v after responder expiry %v", parsed.NextUpdate, old.Cert.NotAfter)
	}
	renewed, err := r.RenewDue(context.Background(), renewer{t, p})
	if err != nil || len(renewed) != 1 {
		t.Fatalf("%v %v", renewed, err)
	}
	resp, _ = r.Respond(context.Background(), req)
	parsed, err = xocsp.ParseResponse(resp, p.ca)
	if err != nil || parsed.Certificate == nil || parsed.Certificate.Equal(old.Cert) {
		t.Fatalf("response still signed by the old responder: %v", err)
	}
	if again, _ := r.RenewDue(context.Background(), renewer{t, p}); len(again) != 0 {
		t.Fatal("renewed a fresh responder")
	}
}

func TestExpiredResponderRefuses(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, time.Hour)}}, src, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	req, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA1, nil)
	if resp, _ := r.Respond(context.Background(), req); !bytes.Equal(resp, respInternal) {
		t.Fatalf("expired responder answered %x", resp)
	}
}

func TestResponderCertChecks(t *testing.T) {
	p, other := newPKI(t, "Thiqa"), newPKI(t, "Other")
	good := p.responder(t, 48*time.Hour)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb := time.Now().Add(-time.Minute)
	noNoCheck := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "r"}, NotBefore: nb, NotAfter: nb.Add(48 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, p.ca, k.Public(), p.caKey)
	noEKU := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(78), Subject: pkix.Name{CommonName: "r"}, NotBefore: nb, NotAfter: nb.Add(48 * time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{5, 0}}}}, p.ca, k.Public(), p.caKey)
	for name, rc := range map[string]ResponderCert{
		"other CA's responder": other.responder(t, 48*time.Hour),
		"wrong key":            {Cert: good.Cert, Signer: k},
		"no nocheck":           {Cert: noNoCheck, Signer: k},
		"no EKU":               {Cert: noEKU, Signer: k},
	} {
		if _, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: rc}}, &memStatus{}, NewCache(0), nil, nil); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// elsewhere is a renewer in a cluster: another instance renews (pending),
// then has renewed (the responder is adopted).
type elsewhere struct {
	next *ResponderCert
}

func (e elsewhere) RenewResponder(context.Context, string, *x509.Certificate) (ResponderRenewal, error) {
	if e.next == nil {
		return ResponderRenewal{}, nil
	}
	return ResponderRenewal{Responder: *e.next, Adopted: true}, nil
}

// TestResponderRenewalElsewhere: while another instance renews a due
// responder, RenewDue keeps the current one and reports nothing; once it
// has, RenewDue swaps in the adopted one.
func TestResponderRenewalElsewhere(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	old := p.responder(t, 30*time.Hour) // inside RenewBefore (48h)
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: old}}, src, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA1, []byte("nonce-elsewhere1"))
	signer := func() *x509.Certificate {
		resp, _ := r.Respond(context.Background(), req)
		parsed, err := xocsp.ParseResponse(resp, p.ca)
		if err != nil || parsed.Certificate == nil {
			t.Fatalf("response: %v", err)
		}
		return parsed.Certificate
	}
	if got, err := r.RenewDue(context.Background(), elsewhere{}); err != nil || len(got) != 0 || !signer().Equal(old.Cert) {
		t.Fatalf("while renewed elsewhere: %v %v", got, err)
	}
	next := p.responder(t, 10*24*time.Hour)
	if got, err := r.RenewDue(context.Background(), elsewhere{&next}); err != nil || len(got) != 1 || !signer().Equal(next.Cert) {
		t.Fatalf("adopting: %v %v", got, err)
	}
}

// downStatus is a status store that cannot be reached.
type downStatus struct{ memStatus }

func (*downStatus) Status(context.Context, string, *big.Int) (Status, error) {
	return Status{}, fmt.Errorf("reading status: %w", outage.Mark(errors.New("connection refused")))
}

// TestStoreOutageIsTryLater: when the status store cannot be reached the
// answer is RFC 6960's tryLater, not internalError.
func TestStoreOutageIsTryLater(t *testing.T) {
	p := newPKI(t, "Thiqa")
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}}, &downStatus{}, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA1, nil)
	if resp, _ := r.Respond(context.Background(), req); !bytes.Equal(resp, respTryLater) {
		t.Fatalf("store outage answered %x, want tryLater", resp)
	}
}
