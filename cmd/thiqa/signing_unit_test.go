package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/store"
)

func certWith(t *testing.T, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: subject, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The owner of a credential comes from its certificate alone.
func TestOwnerOf(t *testing.T) {
	org := certWith(t, pkix.Name{CommonName: "Seal", ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "NTROM-1234567"}}})
	citizen := certWith(t, pkix.Name{CommonName: "Aisha", SerialNumber: "IDCOM-12345678"})
	plain := certWith(t, pkix.Name{CommonName: "Nobody", SerialNumber: "PASOM-1"})
	for _, c := range []struct {
		profile     string
		cert        *x509.Certificate
		kind, owner string
	}{
		{"organisation-seal", org, store.OwnerAgency, "NTROM-1234567"},
		{"citizen-signing", citizen, store.OwnerCitizen, "12345678"},
		{"organisation-seal", citizen, "", ""},
		{"citizen-signing", org, "", ""},
		{"citizen-signing", plain, "", ""},
		{"citizen-auth", citizen, "", ""},
		{"tsa-unit", org, "", ""},
	} {
		kind, owner, err := ownerOf(c.profile, c.cert)
		if kind != c.kind || owner != c.owner || (c.kind == "") != (err != nil) {
			t.Errorf("%s / %s: %q %q %v", c.profile, c.cert.Subject, kind, owner, err)
		}
	}
}

func TestSADCovers(t *testing.T) {
	h := func(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }
	sad := &store.SAD{HashAlg: "2.16.840.1.101.3.4.2.1", Hashes: [][]byte{h("a"), h("b")}, NumSignatures: 2}
	for _, c := range []struct {
		alg    string
		hashes [][]byte
		ok     bool
	}{
		{"2.16.840.1.101.3.4.2.1", [][]byte{h("a")}, true},
		{"2.16.840.1.101.3.4.2.1", [][]byte{h("b"), h("a")}, true},
		{"2.16.840.1.101.3.4.2.1", [][]byte{h("a"), h("a")}, false}, // one authorisation, one use
		{"2.16.840.1.101.3.4.2.1", [][]byte{h("c")}, false},
		{"2.16.840.1.101.3.4.2.1", [][]byte{h("a"), h("b"), h("a")}, false},
		{"2.16.840.1.101.3.4.2.3", [][]byte{h("a")}, false},
	} {
		if err := sadCovers(sad, c.alg, c.hashes); (err == nil) != c.ok {
			t.Errorf("%s %d hashes: %v", c.alg, len(c.hashes), err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err     error
		status  int
		outcome string
	}{
		{errCredentialRefused, http.StatusForbidden, "refused"},
		{fmt.Errorf("x: %w", signer.ErrNotPDF), http.StatusBadRequest, "refused"},
		{fmt.Errorf("x: %w", signer.ErrEncrypted), http.StatusBadRequest, "refused"},
		{fmt.Errorf("%w: signature time-stamp: context deadline exceeded", signer.ErrTimestamp), http.StatusGatewayTimeout, "failure"},
		{fmt.Errorf("%w: connection refused", signer.ErrTimestamp), http.StatusBadGateway, "failure"},
		{fmt.Errorf("%w: x", signer.ErrRevocation), http.StatusBadGateway, "failure"},
		{pin.ErrLocked, http.StatusLocked, "refused"},
		{&pin.WrongError{Remaining: 3}, http.StatusForbidden, "refused"},
		{&pin.WrongError{Remaining: 0}, http.StatusLocked, "refused"},
		{pin.ErrNotSet, http.StatusForbidden, "refused"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "failure"},
	} {
		status, msg, outcome := classify(c.err)
		if status != c.status || outcome != c.outcome || msg == "" {
			t.Errorf("%v: %d %q %s", c.err, status, msg, outcome)
		}
	}
}

// TestOwnTSAFor: the signature time-stamps go to the TSA in process only
// when signing.tsaURL is this server's own /tsa and the TSA service is
// wired; anything else keeps the HTTP client.
func TestOwnTSAFor(t *testing.T) {
	ts := &tsaService{}
	sv := &serving{tsa: ts}
	const base = "http://127.0.0.1:8093"
	if got := ownTSAFor(sv, base, base+"/tsa"); got == nil || got.tsa != ts {
		t.Fatal("the server's own /tsa is not called in process")
	}
	for _, u := range []string{"http://127.0.0.1:9999/tsa", "https://127.0.0.1:8093/tsa", base + "/tsa?x=1", base + "/other", base + "/tsa/", "http://tsa.example/tsa", "::"} {
		if got := ownTSAFor(sv, base, u); got != nil {
			t.Fatalf("%s is called in process", u)
		}
	}
	if got := ownTSAFor(&serving{}, base, base+"/tsa"); got != nil {
		t.Fatal("in process without a TSA service")
	}
	if got := ownTSAFor(nil, base, base+"/tsa"); got != nil {
		t.Fatal("in process without a server")
	}
	if got := ownTSAFor(sv, "::", base+"/tsa"); got != nil {
		t.Fatal("in process with a bad publicBaseURL")
	}
	// A unit not installed yet: an error, never a panic.
	if _, err := (&ownTSA{tsa: ts}).Timestamp(context.Background(), make([]byte, 32), crypto.SHA256); err == nil {
		t.Fatal("a time-stamp without a unit")
	}
	if _, err := (&ownTSA{tsa: ts}).Timestamp(context.Background(), make([]byte, 20), crypto.SHA256); err == nil {
		t.Fatal("a digest of the wrong size")
	}
}

// TestSignDetailsJSON: the details struct encodes as the map it replaced.
func TestSignDetailsJSON(t *testing.T) {
	for _, d := range []signDetails{
		{Credential: "cred-1", Level: "B-T"},
		{Credential: "", Level: "unknown", Reason: "the body must be a PDF"},
		{Credential: "cred-2", Level: "B-LT", DocumentDigest: "00ff", Hash: "SHA-256", Size: 4096, Name: "a.pdf"},
	} {
		m := map[string]any{"credential": d.Credential, "level": d.Level}
		if d.DocumentDigest != "" {
			m["documentDigest"], m["hash"] = d.DocumentDigest, d.Hash
		}
		if d.Size > 0 {
			m["size"] = d.Size
		}
		if d.Name != "" {
			m["name"] = d.Name
		}
		if d.Reason != "" {
			m["reason"] = d.Reason
		}
		got, _ := json.Marshal(d)
		want, _ := json.Marshal(m)
		if string(got) != string(want) {
			t.Fatalf("struct %s, map %s", got, want)
		}
	}
}
