package signing

import (
	"context"
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
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signer"
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
		{"organisation-seal", org, OwnerAgency, "NTROM-1234567"},
		{"citizen-signing", citizen, OwnerCitizen, "12345678"},
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

func TestCheckSAD(t *testing.T) {
	h := func(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }
	sad := &SAD{HashAlg: "2.16.840.1.101.3.4.2.1", Hashes: [][]byte{h("a"), h("b")}, NumSignatures: 2}
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
		if err := CheckSAD(sad, c.alg, c.hashes); (err == nil) != c.ok {
			t.Errorf("%s %d hashes: %v", c.alg, len(c.hashes), err)
		}
	}
}

// TestClassify: the one mapping of the service's errors to statuses,
// details and audit outcomes. Time-outs are recognised by their type, never
// by their text.
func TestClassify(t *testing.T) {
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	for _, c := range []struct {
		err     error
		status  int
		outcome string
		detail  string
	}{
		{ErrCredentialRefused, http.StatusForbidden, "refused", "credential not found or not yours"},
		{fmt.Errorf("x: %w", signer.ErrNotPDF), http.StatusBadRequest, "refused", ""},
		{fmt.Errorf("x: %w", signer.ErrEncrypted), http.StatusBadRequest, "refused", ""},
		{fmt.Errorf("x: %w", signer.ErrCertificationForbids), http.StatusConflict, "refused", "DocMDP P=1"},
		{signer.ErrAlreadySigned, http.StatusConflict, "refused", "must be its first signature"},
		{fmt.Errorf("%w: signature time-stamp: %w", signer.ErrTimestamp, context.DeadlineExceeded), http.StatusGatewayTimeout, "failure", "did not answer in time"},
		{fmt.Errorf("%w: signature time-stamp: %w", signer.ErrTimestamp, timeout), http.StatusGatewayTimeout, "failure", "did not answer in time"},
		{fmt.Errorf("%w: the TSA says: timeout", signer.ErrTimestamp), http.StatusBadGateway, "failure", "the TSA says: timeout"},
		{fmt.Errorf("%w: connection refused", signer.ErrTimestamp), http.StatusBadGateway, "failure", "connection refused"},
		{fmt.Errorf("%w: x", signer.ErrRevocation), http.StatusBadGateway, "failure", "revocation data unavailable"},
		{fmt.Errorf("storing: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, "failure", "timed out"},
		{pin.ErrLocked, http.StatusLocked, "refused", "locked"},
		{&pin.WrongError{Remaining: 3}, http.StatusForbidden, "refused", "wrong PIN (3 tries left)"},
		{&pin.WrongError{Remaining: 0}, http.StatusLocked, "refused", "locked"},
		{pin.ErrNotSet, http.StatusForbidden, "refused", "no signing PIN is set"},
		{pin.ErrAlreadySet, http.StatusConflict, "refused", "already set"},
		{ErrSADInvalid, http.StatusForbidden, "refused", "already used"},
		{&SADError{Reason: "hashes[0] was not authorised by the SAD"}, http.StatusForbidden, "refused", "does not authorise this document"},
		{fmt.Errorf("signing: %w", Refuse(ErrBadRequest, "level must be B-B")), http.StatusBadRequest, "refused", "level must be B-B"},
		{Refuse(ErrUnsupportedMediaType, "the body must be a PDF"), http.StatusUnsupportedMediaType, "refused", "the body must be a PDF"},
		{Refuse(ErrTooLarge, "the document exceeds 1 bytes"), http.StatusRequestEntityTooLarge, "refused", "exceeds"},
		{Refuse(ErrActivationRequired, "the signing PIN is required"), http.StatusUnauthorized, "refused", "PIN is required"},
		{Refuse(ErrNoIdentity, "the caller has no agency identity"), http.StatusForbidden, "refused", "no agency identity"},
		{Refuse(ErrCertificateRevoked, "the certificate of credential x is revoked"), http.StatusForbidden, "refused", "revoked"},
		{Refuse(ErrCertificateNotValid, "the certificate of credential x is not valid now"), http.StatusForbidden, "refused", "not valid now"},
		{auditFailed(errors.New("disk full")), http.StatusInternalServerError, "failure", "signing failed"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "failure", "signing failed"},
		// The database cannot be reached: for the credential lookup, for
		// the record of the signature or of a refusal.
		{fmt.Errorf("finding credential: %w", outage.Mark(errors.New("connection refused"))), http.StatusServiceUnavailable, "failure", "temporarily unavailable"},
		{auditFailed(outage.Mark(errors.New("connection refused"))), http.StatusServiceUnavailable, "failure", "temporarily unavailable"},
		{refusalUnrecorded(ErrCredentialRefused, outage.Mark(errors.New("unexpected EOF"))), http.StatusServiceUnavailable, "failure", "temporarily unavailable"},
		{refusalUnrecorded(ErrCredentialRefused, errors.New("disk full")), http.StatusInternalServerError, "failure", "signing failed"},
	} {
		status, msg, outcome := Classify(c.err)
		if status != c.status || outcome != c.outcome || msg == "" || !strings.Contains(msg, c.detail) {
			t.Errorf("%v: %d %q %s; want %d %s naming %q", c.err, status, msg, outcome, c.status, c.outcome, c.detail)
		}
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

// TestDocumentOptions: the query of a seal or sign request, read once;
// nothing asked is nil; bad values are refused with the reason.
func TestDocumentOptions(t *testing.T) {
	q := func(s string) url.Values { v, _ := url.ParseQuery(s); return v }
	if o, err := documentOptions(q("level=B-B&credential=x")); o != nil || err != nil {
		t.Fatalf("no options: %+v %v", o, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = documentOptions(q("level=B-B")) }); n > 4 {
		t.Fatalf("documentOptions allocates when nothing is asked (%v, counting the test's own query)", n)
	}
	o, err := documentOptions(q("reason=Approved&location=Muscat&contactInfo=a%40b.om&certify=2&visible=1&page=2&rect=10,20,210,90&locale=ar"))
	if err != nil || o.Reason != "Approved" || o.Location != "Muscat" || o.ContactInfo != "a@b.om" || o.Certify != 2 ||
		o.Appearance == nil || o.Appearance.Page != 2 || o.Appearance.Rect != [4]float64{10, 20, 210, 90} || o.Appearance.Locale != "ar" {
		t.Fatalf("options: %+v %v", o, err)
	}
	for _, bad := range []string{"certify=4", "certify=x", "visible=2", "visible=1", "visible=1&rect=1,2,3", "visible=1&rect=5,5,4,9",
		"visible=1&rect=a,b,c,d", "visible=1&rect=0,0,100,100&page=0", "page=2", "rect=0,0,10,10", "reason=a%00b",
		"reason=" + strings.Repeat("x", 300), "visible=1&rect=0,0,100,100&locale=fr", "location=%ff"} {
		if o, err := documentOptions(q(bad)); err == nil {
			t.Errorf("%s: accepted as %+v", bad, o)
		} else if status, _, _ := Classify(err); status != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, status)
		}
	}
}
