package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// vfyFetchJWS returns a compact JAdES signature by a new leaf of a new
// root whose OCSP responder is ocspURL, and the root's PEM.
func vfyFetchJWS(t *testing.T, ocspURL string) (jws, rootPEM string) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fetch Test Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Fetch Test Signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(12 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		OCSPServer: []string{ocspURL}}, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leafDER)
	hdr, _ := json.Marshal(map[string]any{"alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(leafDER)},
		"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:]), "sigT": now.UTC().Format(time.RFC3339), "crit": []string{"sigT"}})
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"a":1}`))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}))
}

// TestVerifyServerFetches: the public verifier of `thiqa serve` sends no
// request to an internal responder (here on loopback) named by a trusted
// certificate, and its report does not say where or why the fetch failed;
// a responder listed in verify.fetchAllowHosts is asked.
func TestVerifyServerFetches(t *testing.T) {
	var blockedHits, allowedHits atomic.Int32
	blocked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		blockedHits.Add(1)
		http.Error(w, "internal", http.StatusTeapot)
	}))
	defer blocked.Close()
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		allowedHits.Add(1)
		http.Error(w, "internal", http.StatusTeapot)
	}))
	defer allowed.Close()
	work := t.TempDir()
	blockedJWS, blockedRoot := vfyFetchJWS(t, blocked.URL+"/ocsp")
	allowedJWS, allowedRoot := vfyFetchJWS(t, allowed.URL+"/ocsp")
	anchors := filepath.Join(work, "anchors.pem")
	writeFile(t, anchors, blockedRoot+allowedRoot)

	port := vfyFreePort(t)
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		y = strings.ReplaceAll(y, "127.0.0.1:8080", "127.0.0.1:"+port)
		return strings.Replace(y, "verify:\n", "verify:\n  trustAnchorFiles: ["+anchors+"]\n  fetchAllowHosts: ["+strings.TrimPrefix(allowed.URL, "http://")+"]\n", 1)
	})
	mustThiqa(t, nil, "init", "--data", dir, "--config", conf)
	srv := vfyServe(t, dir, port)

	code, _, body := vfySend(t, srv, "/api/v1/verify", "", "application/jose", []byte(blockedJWS))
	var rep report.Report
	if code != http.StatusOK || json.Unmarshal(body, &rep) != nil || len(rep.Signatures) != 1 {
		t.Fatalf("blocked responder: %d %.400s", code, body)
	}
	if s := rep.Signatures[0]; s.Indication != report.Indeterminate || s.SubIndication != report.TryLater {
		t.Fatalf("blocked responder: %s %s %q", s.Indication, s.SubIndication, s.Errors)
	}
	if n := blockedHits.Load(); n != 0 {
		t.Fatalf("the server sent %d requests to a loopback responder", n)
	}
	_, blockedPort, _ := strings.Cut(strings.TrimPrefix(blocked.URL, "http://"), ":")
	for _, leak := range []string{"127.0.0.1", blockedPort, "/ocsp", "dial", "refused", "not allowed"} {
		if strings.Contains(string(body), leak) {
			t.Fatalf("the public report tells %q: %s", leak, body)
		}
	}
	if !strings.Contains(string(body), "could not be fetched online") {
		t.Fatalf("the report does not say the check could not be done: %s", body)
	}

	code, _, body = vfySend(t, srv, "/api/v1/verify", "", "application/jose", []byte(allowedJWS))
	if code != http.StatusOK || allowedHits.Load() == 0 {
		t.Fatalf("allowed responder: %d, %d requests: %.400s", code, allowedHits.Load(), body)
	}
	if strings.Contains(string(body), "418") {
		t.Fatalf("the public report tells the responder's answer: %s", body)
	}
}
