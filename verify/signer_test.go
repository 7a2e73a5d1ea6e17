package verify

// A minimal, test-only PDF signer: verify/ may not import signer/, so the
// tests build their own signed PDFs with an in-process key.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

type testPKI struct {
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	leaf    *x509.Certificate
	leafKey *ecdsa.PrivateKey
	tsa     *x509.Certificate
	tsaKey  *ecdsa.PrivateKey
}

func newTestPKI(t testing.TB) *testPKI { return newTestPKIWith(t, "") }

// newTestPKIWith names ocspURL as the leaf's OCSP responder.
func newTestPKIWith(t testing.TB, ocspURL string) *testPKI {
	t.Helper()
	p := &testPKI{}
	var err error
	p.rootKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root", Country: []string{"OM"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3}}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &p.rootKey.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.root, _ = x509.ParseCertificate(der)
	issue := func(cn string, serial int64, eku []x509.ExtKeyUsage, extra []pkix.Extension) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial),
			Subject:   pkix.Name{CommonName: cn, Country: []string{"OM"}, SerialNumber: "IDCOM-12345678"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(12 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage: eku, SubjectKeyId: []byte{byte(serial), 9, 9}, ExtraExtensions: extra}
		if ocspURL != "" && eku == nil {
			tmpl.OCSPServer = []string{ocspURL}
		}
		d, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, &k.PublicKey, p.rootKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(d)
		return c, k
	}
	qc, _ := asn1.Marshal([]any{
		struct{ ID asn1.ObjectIdentifier }{asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 1}},
		struct{ ID asn1.ObjectIdentifier }{asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 4}},
		struct {
			ID    asn1.ObjectIdentifier
			Types []asn1.ObjectIdentifier
		}{asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6}, []asn1.ObjectIdentifier{{0, 4, 0, 1862, 1, 6, 1}}},
	})
	p.leaf, p.leafKey = issue("Citizen One", 2, nil, []pkix.Extension{{Id: oidQCStatements, Value: qc}})
	p.tsa, p.tsaKey = issue("Test TSA", 3, []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}, nil)
	return p
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type signOpts struct {
	subFilter   string
	encapsulate bool // put the content inside the CMS (must be rejected)
	skiSID      bool
	noAttrs     bool
	timestamp   bool
	wrongCert   bool // signing-certificate-v2 names another certificate
	padding     int  // bytes of page content, to size the document
	docMDP      int  // certification signature with this P (0: approval signature)
	noCerts     bool // leave the signer's certificate out of the SignedData
	badEarlyTS  bool // with timestamp: first an hour-older token over other bytes
}

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func raw(b []byte) asn1.RawValue { return asn1.RawValue{FullBytes: b} }

var (
	oidSHA256    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSigned    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidCT        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMD        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSCv2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidTSTAttr   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
	algSHA256    = pkix.AlgorithmIdentifier{Algorithm: oidSHA256}
	algECDSA256  = pkix.AlgorithmIdentifier{Algorithm: oidECDSA256}
	testPolicyID = asn1.ObjectIdentifier{1, 2, 3, 4}
)

// buildSignedData builds a CMS SignedData over content (digest given).
func buildSignedData(t testing.TB, cert *x509.Certificate, key crypto.Signer, contentType asn1.ObjectIdentifier, digest, content []byte, o signOpts, unsignedFn func(sigValue []byte) []attribute) []byte {
	t.Helper()
	certHash := sha256.Sum256(cert.Raw)
	if o.wrongCert {
		certHash[0] ^= 0xff
	}
	var attrs []attribute
	attrs = append(attrs, attribute{oidCT, []asn1.RawValue{raw(mustMarshal(contentType))}})
	attrs = append(attrs, attribute{oidMD, []asn1.RawValue{raw(mustMarshal(digest))}})
	scv2 := mustMarshal(struct{ Certs []struct{ Hash []byte } }{[]struct{ Hash []byte }{{certHash[:]}}})
	attrs = append(attrs, attribute{oidSCv2, []asn1.RawValue{raw(scv2)}})
	// The struct wrapper is a SEQUENCE; its content is the DER SET OF.
	setDER := innerOf(mustMarshal(struct {
		A []attribute `asn1:"set"`
	}{attrs}))
	var toSign []byte
	if o.noAttrs {
		toSign = digest
	} else {
		h := sha256.Sum256(setDER)
		toSign = h[:]
	}
	sig, err := key.Sign(rand.Reader, toSign, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var sid asn1.RawValue
	version := 1
	if o.skiSID {
		sid = asn1.RawValue{Class: 2, Tag: 0, Bytes: cert.SubjectKeyId}
		version = 3
	} else {
		sid = raw(mustMarshal(struct {
			Issuer asn1.RawValue
			Serial *big.Int
		}{raw(cert.RawIssuer), cert.SerialNumber}))
	}
	si := []asn1.RawValue{raw(mustMarshal(version)), sid, raw(mustMarshal(algSHA256))}
	if !o.noAttrs {
		// [0] IMPLICIT SET OF Attribute
		inner := setDER
		si = append(si, asn1.RawValue{Class: 2, Tag: 0, IsCompound: true, Bytes: stripHeader(inner)})
	}
	si = append(si, raw(mustMarshal(algECDSA256)), raw(mustMarshal(sig)))
	if unsignedFn != nil {
		u := innerOf(mustMarshal(struct {
			A []attribute `asn1:"set"`
		}{unsignedFn(sig)}))
		si = append(si, asn1.RawValue{Class: 2, Tag: 1, IsCompound: true, Bytes: stripHeader(u)})
	}
	siDER := mustMarshal(si)
	eci := []asn1.RawValue{raw(mustMarshal(contentType))}
	if content != nil {
		eci = append(eci, asn1.RawValue{Class: 2, Tag: 0, IsCompound: true, Bytes: mustMarshal(content)})
	}
	sd := []asn1.RawValue{
		raw(mustMarshal(version)),
		raw(innerOf(mustMarshal(struct {
			A []pkix.AlgorithmIdentifier `asn1:"set"`
		}{[]pkix.AlgorithmIdentifier{algSHA256}}))),
		raw(mustMarshal(eci)),
		{Class: 2, Tag: 0, IsCompound: true, Bytes: cert.Raw},
		raw(innerOf(mustMarshal(struct {
			S []asn1.RawValue `asn1:"set"`
		}{[]asn1.RawValue{raw(siDER)}}))),
	}
	if o.noCerts {
		sd = append(sd[:3], sd[4:]...)
	}
	sdDER := mustMarshal(sd)
	return mustMarshal([]asn1.RawValue{raw(mustMarshal(oidSigned)), {Class: 2, Tag: 0, IsCompound: true, Bytes: sdDER}})
}

// innerOf returns the content of a DER element (for a one-field struct
// wrapper: the field's full encoding).
func innerOf(der []byte) []byte { return stripHeader(der) }

// stripHeader drops the tag and length of a DER element.
func stripHeader(der []byte) []byte {
	var r asn1.RawValue
	if _, err := asn1.Unmarshal(der, &r); err != nil {
		panic(err)
	}
	return r.Bytes
}

// timestampToken builds an RFC 3161 token over data with the test TSA.
func (p *testPKI) timestampToken(t testing.TB, data []byte, at time.Time) []byte {
	return p.timestampTokenWith(t, data, at, signOpts{})
}

// timestampTokenWith is timestampToken with the SignedData built under o
// (noCerts: a token without the TSA certificate).
func (p *testPKI) timestampTokenWith(t testing.TB, data []byte, at time.Time, o signOpts) []byte {
	imprint := sha256.Sum256(data)
	tst := mustMarshal(struct {
		Version int
		Policy  asn1.ObjectIdentifier
		MI      struct {
			Alg  pkix.AlgorithmIdentifier
			Hash []byte
		}
		Serial  *big.Int
		GenTime time.Time `asn1:"generalized"`
	}{1, testPolicyID, struct {
		Alg  pkix.AlgorithmIdentifier
		Hash []byte
	}{algSHA256, imprint[:]}, big.NewInt(42), at.UTC().Truncate(time.Second)})
	d := sha256.Sum256(tst)
	return buildSignedData(t, p.tsa, p.tsaKey, oidTSTInfo, d[:], tst, o, nil)
}

const contentsHexLen = 16384

// signPDF appends a signature revision to base (or makes base the signed
// revision if it already contains the signature field) and returns the
// signed file.
func (p *testPKI) signPDF(t testing.TB, o signOpts) []byte {
	t.Helper()
	if o.subFilter == "" {
		o.subFilter = "ETSI.CAdES.detached"
	}
	var b bytes.Buffer
	offs := map[int]int{}
	obj := func(n int, body string) {
		offs[n] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", n, body)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	perms, ref := "", ""
	if o.docMDP > 0 {
		perms = " /Perms << /DocMDP 5 0 R >>"
		ref = fmt.Sprintf(" /Reference [<< /Type /SigRef /TransformMethod /DocMDP /TransformParams << /Type /TransformParams /P %d /V /1.2 >> >>]", o.docMDP)
	}
	obj(1, "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >>"+perms+" >>")
	obj(2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
	obj(3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 6 0 R /Annots [4 0 R] >>")
	obj(4, "<< /FT /Sig /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /T (Signature1) /V 5 0 R /P 3 0 R /F 132 >>")
	placeholderBR := "[0 0000000000 0000000000 0000000000]"
	obj(5, "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /"+o.subFilter+ref+" /M (D:20250101120000+04'00') /ByteRange "+placeholderBR+
		" /Contents <"+strings.Repeat("0", contentsHexLen)+"> >>")
	content := "BT /F1 12 Tf 10 100 Td (Signed document) Tj ET" + strings.Repeat("\n% padding", o.padding/10)
	obj(6, fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 7\n0000000000 65535 f \n")
	for n := 1; n <= 6; n++ {
		fmt.Fprintf(&b, "%010d 00000 n \n", offs[n])
	}
	fmt.Fprintf(&b, "trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", xref)
	out := b.Bytes()
	cStart := bytes.Index(out, []byte("/Contents <")) + len("/Contents ")
	cEnd := cStart + contentsHexLen + 2
	br := fmt.Sprintf("[0 %010d %010d %010d]", cStart, cEnd, len(out)-cEnd)
	brPos := bytes.Index(out, []byte(placeholderBR))
	copy(out[brPos:], br)
	signed := append(append([]byte{}, out[:cStart]...), out[cEnd:]...)
	digest := sha256.Sum256(signed)
	var content2 []byte
	if o.encapsulate {
		content2 = signed
	}
	var unsignedFn func([]byte) []attribute
	if o.timestamp {
		// The token's imprint is the hash of the signature value.
		unsignedFn = func(sigValue []byte) []attribute {
			toks := []asn1.RawValue{raw(p.timestampToken(t, sigValue, time.Now()))}
			if o.badEarlyTS {
				toks = append([]asn1.RawValue{raw(p.timestampToken(t, []byte("other bytes"), time.Now().Add(-time.Hour)))}, toks...)
			}
			return []attribute{{oidTSTAttr, toks}}
		}
	}
	cmsDER := buildSignedData(t, p.leaf, p.leafKey, oidData, digest[:], content2, o, unsignedFn)
	return fill(t, out, cStart, cmsDER)
}

func fill(t testing.TB, out []byte, cStart int, cmsDER []byte) []byte {
	h := hex.EncodeToString(cmsDER)
	if len(h) > contentsHexLen {
		t.Fatalf("CMS too large for the placeholder: %d", len(h))
	}
	copy(out[cStart+1:], h)
	return out
}

// addDSS appends an incremental update with a DSS holding the given OCSP
// responses and certificates (B-LT).
func addDSS(b []byte, ocsps [][]byte, certs []*x509.Certificate) []byte {
	return addDSSWithCRLs(b, ocsps, nil, certs)
}

// addDSSWithCRLs is addDSS with CRLs too.
func addDSSWithCRLs(b []byte, ocsps, crls [][]byte, certs []*x509.Certificate) []byte {
	start := len(b)
	var u bytes.Buffer
	offs := map[int]int{}
	next := 10
	var certRefs, ocspRefs, crlRefs []string
	stream := func(data []byte) int {
		n := next
		next++
		offs[n] = start + u.Len()
		fmt.Fprintf(&u, "%d 0 obj\n<< /Length %d >>\nstream\n", n, len(data))
		u.Write(data)
		u.WriteString("\nendstream\nendobj\n")
		return n
	}
	for _, c := range certs {
		certRefs = append(certRefs, fmt.Sprintf("%d 0 R", stream(c.Raw)))
	}
	for _, o := range ocsps {
		ocspRefs = append(ocspRefs, fmt.Sprintf("%d 0 R", stream(o)))
	}
	for _, l := range crls {
		crlRefs = append(crlRefs, fmt.Sprintf("%d 0 R", stream(l)))
	}
	dss := next
	next++
	offs[dss] = start + u.Len()
	fmt.Fprintf(&u, "%d 0 obj\n<< /Type /DSS /Certs [%s] /OCSPs [%s] /CRLs [%s] >>\nendobj\n", dss, strings.Join(certRefs, " "), strings.Join(ocspRefs, " "), strings.Join(crlRefs, " "))
	offs[1] = start + u.Len()
	fmt.Fprintf(&u, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> /DSS %d 0 R >>\nendobj\n", dss)
	prev := bytes.LastIndex(b, []byte("startxref\n"))
	var prevOff int
	fmt.Sscanf(string(b[prev+len("startxref\n"):]), "%d", &prevOff) //nolint:errcheck
	xref := start + u.Len()
	fmt.Fprintf(&u, "xref\n1 1\n%010d 00000 n \n%d %d\n", offs[1], 10, next-10)
	for n := 10; n < next; n++ {
		fmt.Fprintf(&u, "%010d 00000 n \n", offs[n])
	}
	fmt.Fprintf(&u, "trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", next, prevOff, xref)
	return append(b, u.Bytes()...)
}

// ocspFor returns a good OCSP response for cert signed by the root.
func (p *testPKI) ocspFor(t testing.TB, cert *x509.Certificate) []byte {
	now := time.Now()
	der, err := ocsp.CreateResponse(p.root, p.root, ocsp.Response{Status: ocsp.Good, SerialNumber: cert.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// appendDocTimestamp appends a revision with a document timestamp over
// everything before its /Contents; catalog is the new catalog body (it
// must list field 20 in /AcroForm /Fields).
func (p *testPKI) appendDocTimestamp(t testing.TB, b []byte, catalog string) []byte {
	t.Helper()
	return p.appendDocTimestampWith(t, b, catalog, func(signed []byte) []byte { return p.timestampToken(t, signed, time.Now()) })
}

// appendDocTimestampWith is appendDocTimestamp with the token that token
// makes of the bytes the timestamp covers.
func (p *testPKI) appendDocTimestampWith(t testing.TB, b []byte, catalog string, token func(signed []byte) []byte) []byte {
	t.Helper()
	placeholderBR := "[0 0000000000 0000000000 0000000000]"
	objs := map[int]string{
		1:  catalog,
		20: "<< /FT /Sig /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /T (DocTS) /V 21 0 R /P 3 0 R /F 132 >>",
		21: "<< /Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161 /ByteRange " + placeholderBR +
			" /Contents <" + strings.Repeat("0", contentsHexLen) + "> >>",
	}
	out := appendUpdate(b, objs, 1)
	base := len(b)
	cStart := base + bytes.Index(out[base:], []byte("/Contents <")) + len("/Contents ")
	cEnd := cStart + contentsHexLen + 2
	br := fmt.Sprintf("[0 %010d %010d %010d]", cStart, cEnd, len(out)-cEnd)
	brPos := base + bytes.Index(out[base:], []byte(placeholderBR))
	copy(out[brPos:], br)
	signed := append(append([]byte{}, out[:cStart]...), out[cEnd:]...)
	return fill(t, out, cStart, token(signed))
}
