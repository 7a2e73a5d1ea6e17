package tsl_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/tsl/build"
	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

var t0 = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

// testCert makes a certificate for key, self-signed or issued by parent.
func testCert(t testing.TB, cn string, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, ca bool, mod func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Country: []string{"OM"}},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(3, 0, 0), BasicConstraintsValid: true, IsCA: ca,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if mod != nil {
		mod(tmpl)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixture is a signed list and what it was made from.
type fixture struct {
	raw    []byte
	signer *x509.Certificate
	ca     *x509.Certificate
	caKey  crypto.Signer
	opts   build.Options
}

func newList(t testing.TB, key crypto.Signer, mod func(*build.Options)) fixture {
	t.Helper()
	signer := testCert(t, "Test TSL signer", key, nil, nil, false, nil)
	caKey := ecKey(t)
	ca := testCert(t, "Test Issuing CA", caKey, nil, nil, true, nil)
	o := build.Options{Version: 5, Sequence: 3, Territory: "OM", Operator: "Thiqa", Provider: "Thiqa",
		InformationURI: "https://thiqa.example/", Street: "PLACEHOLDER", Locality: "Muscat",
		IssueDate: t0, NextUpdate: t0.AddDate(0, 6, 0), DistributionPoint: "https://thiqa.example/tsl.xml",
		Signer: key, Certificate: signer,
		Services: []build.Service{{Type: tsl.SvcTypeCAQC, Name: "Test CA/QC", Certificates: []*x509.Certificate{ca},
			Status: tsl.StatusGranted, Since: t0.AddDate(-1, 0, 0), AdditionalInfo: []string{tsl.ASiForeSignatures}}},
	}
	if mod != nil {
		mod(&o)
	}
	raw, err := build.Build(o)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{raw: raw, signer: signer, ca: ca, caKey: caKey, opts: o}
}

func (f fixture) check(raw []byte) *tsl.Result {
	return tsl.Check(raw, tsl.CheckOptions{Signers: []*x509.Certificate{f.signer}, At: t0.Add(time.Hour)})
}

func want(t *testing.T, what string, r *tsl.Result, ind report.Indication, sub report.SubIndication, msg string) {
	t.Helper()
	if r.Indication != ind || r.SubIndication != sub || !strings.Contains(strings.Join(r.Errors, "; "), msg) {
		t.Fatalf("%s: %s %s %v; want %s %s naming %q", what, r.Indication, r.SubIndication, r.Errors, ind, sub, msg)
	}
}

// TestBuildRoundTrip: lists built with RSA and ECDSA keys, as version 5 and
// 6, verify and read back as built; an expired nextUpdate only warns.
func TestBuildRoundTrip(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		key     crypto.Signer
		version int
		c14n    string
	}{"rsa-v5": {rk, 5, ""}, "ecdsa-v6": {ecKey(t), 6, ""},
		"inclusive-c14n-1.0": {ecKey(t), 6, "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"},
		"inclusive-c14n-1.1": {rk, 5, "http://www.w3.org/2006/12/xml-c14n11"}} {
		f := newList(t, c.key, func(o *build.Options) { o.Version, o.C14N = c.version, c.c14n })
		r := f.check(f.raw)
		l := r.List
		if !r.Passed() || len(r.Warnings) != 0 || l.Version != c.version || l.SequenceNumber != 3 || l.Territory != "OM" || len(l.Providers) != 1 ||
			l.ServiceCount() != 1 || l.Providers[0].Services[0].Current.Identity.Certificates[0].Equal(f.ca) == false ||
			!r.SigningTime.Equal(t0) || l.DistributionPoints[0] != "https://thiqa.example/tsl.xml" {
			t.Fatalf("%s: %s %s %v %v %+v", name, r.Indication, r.SubIndication, r.Errors, r.Warnings, l)
		}
		late := tsl.Check(f.raw, tsl.CheckOptions{Signers: []*x509.Certificate{f.signer}, At: t0.AddDate(0, 7, 0)})
		if !late.Passed() || !strings.Contains(strings.Join(late.Warnings, ";"), "nextUpdate") {
			t.Fatalf("%s after nextUpdate: %s %v %v", name, late.Indication, late.Errors, late.Warnings)
		}
	}
}

// TestCheckRefusesTamperingAndWrapping: bytes changed after signing, a
// signature moved or doubled, references to part of the list, duplicate
// Ids, weak algorithms and the wrong signer each get their verdict.
func TestCheckRefusesTamperingAndWrapping(t *testing.T) {
	f := newList(t, ecKey(t), nil)
	s := string(f.raw)
	sigStart, sigEnd := strings.Index(s, "<ds:Signature "), strings.Index(s, "</ds:Signature>")+len("</ds:Signature>")
	sig := s[sigStart:sigEnd]
	cases := []struct {
		name, doc string
		ind       report.Indication
		sub       report.SubIndication
		msg       string
	}{
		{"content changed", strings.Replace(s, "Test CA/QC", "Evil CA/QC", 1), report.TotalFailed, report.HashFailure, "digest of the list"},
		{"signed properties changed", strings.Replace(s, "<xades:MimeType>text/xml", "<xades:MimeType>text/html", 1), report.TotalFailed, report.HashFailure, "signed properties"},
		{"signature value changed", strings.Replace(s, "<ds:SignatureValue Id=\"value-sig-OM-3\">", "<ds:SignatureValue Id=\"value-sig-OM-3\">AAAA", 1), report.TotalFailed, report.SigCryptoFailure, "does not verify"},
		{"second signature", s[:sigEnd] + sig + s[sigEnd:], report.TotalFailed, report.FormatFailure, "2 XML signatures"},
		{"signature moved into a provider", strings.Replace(s[:sigStart]+s[sigEnd:], "<TSPServices>", "<TSPServices>"+sig, 1), report.TotalFailed, report.FormatFailure, "not a child"},
		{"wrapped: signed list inside a new root", `<TrustServiceStatusList xmlns="` + tsl.NSTSL + `">` + s[strings.Index(s, "<SchemeInformation>"):strings.Index(s, "</SchemeInformation>")+20] + `<Evil>` + strings.TrimPrefix(s, `<?xml version="1.0" encoding="UTF-8"?>`) + `</Evil></TrustServiceStatusList>`,
			report.TotalFailed, report.FormatFailure, "not a child"},
		{"duplicate Id", strings.Replace(s, "<TSPServices>", `<TSPServices><x Id="xades-sig-OM-3"/>`, 1), report.TotalFailed, report.FormatFailure, "names 2 elements"},
		{"reference to part of the list", strings.Replace(strings.Replace(s, `URI=""`, `URI="#svc"`, 1), "<TSPServices>", `<TSPServices Id="svc">`, 1),
			report.TotalFailed, report.FormatFailure, "neither the list"},
		{"XPath transform", strings.Replace(s, `<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>`,
			`<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/>`, 1), report.TotalFailed, report.FormatFailure, "not accepted"},
		{"SHA-1 signature method", strings.Replace(s, "ecdsa-sha256", "ecdsa-sha1", 1), report.Indeterminate, report.CryptoConstraintsFailure, "no longer acceptable"},
		{"unsigned", s[:sigStart] + s[sigEnd:], report.TotalFailed, report.FormatFailure, "0 XML signatures"},
		{"version 4", strings.Replace(s, "<TSLVersionIdentifier>5<", "<TSLVersionIdentifier>4<", 1), report.TotalFailed, report.FormatFailure, "version 4"},
	}
	for _, c := range cases {
		want(t, c.name, f.check([]byte(c.doc)), c.ind, c.sub, c.msg)
	}
	other := newList(t, ecKey(t), nil)
	want(t, "another signer", tsl.Check(f.raw, tsl.CheckOptions{Signers: []*x509.Certificate{other.signer}, At: t0}),
		report.Indeterminate, report.NoCertificateChainFound, "not a configured signer")
	want(t, "signer expired", tsl.Check(f.raw, tsl.CheckOptions{Signers: []*x509.Certificate{f.signer}, At: t0.AddDate(4, 0, 0)}),
		report.Indeterminate, report.OutOfBoundsNoPOE, "expired")
}

// TestCheckBadXMLIsBounded: entity bombs, deep nesting, huge and malformed
// documents are refused quickly, without building the tree.
func TestCheckBadXMLIsBounded(t *testing.T) {
	bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><TrustServiceStatusList xmlns="` + tsl.NSTSL + `">&lol3;</TrustServiceStatusList>`
	deep := strings.Repeat("<a>", 200_000) + strings.Repeat("</a>", 200_000)
	many := "<r>" + strings.Repeat("<a/>", 3_000_000) + "</r>"
	for _, c := range []struct{ name, doc, msg string }{
		{"entity expansion", bomb, "DOCTYPE"},
		{"external entity", `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`, "DOCTYPE"},
		{"deep nesting", deep, "deeper than 64"},
		{"too many elements", many, "elements"},
		{"not well-formed", "<TrustServiceStatusList><a></TrustServiceStatusList>", "not well-formed"},
		{"not UTF-8", `<?xml version="1.0" encoding="ISO-8859-1"?><x/>`, "not well-formed"},
		{"two roots", "<a/><b/>", "not well-formed"},
		{"empty", "", "not well-formed"},
		{"not a list", `<x xmlns="urn:other"/>`, "not a TS 119 612"},
	} {
		start := time.Now()
		r := tsl.Check([]byte(c.doc), tsl.CheckOptions{})
		want(t, c.name, r, report.TotalFailed, report.FormatFailure, c.msg)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s took %s", c.name, d)
		}
	}
	big := bytes.Repeat([]byte(" "), 2<<20)
	want(t, "over MaxBytes", tsl.Check(big, tsl.CheckOptions{Limits: tsl.Limits{MaxBytes: 1 << 20}}), report.TotalFailed, report.FormatFailure, "limit")
}

func pkixExt(der []byte) pkix.Extension {
	return pkix.Extension{Id: []int{1, 3, 6, 1, 5, 5, 7, 1, 3}, Value: der}
}
