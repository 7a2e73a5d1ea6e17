package tsl

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/thiqa/thiqa/verify/report"
)

// SignatureError is a list signature that does not pass, with its ETSI
// EN 319 102-1 indication and sub-indication.
type SignatureError struct {
	Indication    report.Indication
	SubIndication report.SubIndication
	Msg           string
}

// Error implements error.
func (e *SignatureError) Error() string {
	return fmt.Sprintf("%s/%s: %s", e.Indication, e.SubIndication, e.Msg)
}

func sigFail(ind report.Indication, sub report.SubIndication, format string, a ...any) *SignatureError {
	return &SignatureError{Indication: ind, SubIndication: sub, Msg: fmt.Sprintf(format, a...)}
}

func formatFailure(format string, a ...any) *SignatureError {
	return sigFail(report.TotalFailed, report.FormatFailure, format, a...)
}

// Algorithm identifiers (XMLDSig, RFC 6931).
const (
	algEnveloped   = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	typeSignedProp = "http://uri.etsi.org/01903#SignedProperties"
)

type sigAlg struct {
	rsa, pss bool
	hash     crypto.Hash
}

var signatureMethods = map[string]sigAlg{
	dsig.RSASHA256SignatureMethod:                            {rsa: true, hash: crypto.SHA256},
	dsig.RSASHA384SignatureMethod:                            {rsa: true, hash: crypto.SHA384},
	dsig.RSASHA512SignatureMethod:                            {rsa: true, hash: crypto.SHA512},
	"http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1": {rsa: true, pss: true, hash: crypto.SHA256},
	"http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1": {rsa: true, pss: true, hash: crypto.SHA384},
	"http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1": {rsa: true, pss: true, hash: crypto.SHA512},
	dsig.ECDSASHA256SignatureMethod:                          {hash: crypto.SHA256},
	dsig.ECDSASHA384SignatureMethod:                          {hash: crypto.SHA384},
	dsig.ECDSASHA512SignatureMethod:                          {hash: crypto.SHA512},
}

var weakSignatureMethods = map[string]bool{
	dsig.RSASHA1SignatureMethod:                      true,
	dsig.ECDSASHA1SignatureMethod:                    true,
	"http://www.w3.org/2000/09/xmldsig#dsa-sha1":     true,
	"http://www.w3.org/2001/04/xmldsig-more#rsa-md5": true,
}

var digestMethods = map[string]crypto.Hash{
	"http://www.w3.org/2001/04/xmlenc#sha256":       crypto.SHA256,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": crypto.SHA384,
	"http://www.w3.org/2001/04/xmlenc#sha512":       crypto.SHA512,
}

const digestSHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"

// canonicalizer returns goxmldsig's canonicaliser for a C14N algorithm.
func canonicalizer(alg, prefixList string) (dsig.Canonicalizer, bool) {
	switch dsig.AlgorithmID(alg) {
	case dsig.CanonicalXML10ExclusiveAlgorithmId:
		return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList(prefixList), true
	case dsig.CanonicalXML10ExclusiveWithCommentsAlgorithmId:
		return dsig.MakeC14N10ExclusiveWithCommentsCanonicalizerWithPrefixList(prefixList), true
	case dsig.CanonicalXML10RecAlgorithmId:
		return dsig.MakeC14N10RecCanonicalizer(), true
	case dsig.CanonicalXML10WithCommentsAlgorithmId:
		return dsig.MakeC14N10WithCommentsCanonicalizer(), true
	case dsig.CanonicalXML11AlgorithmId:
		return dsig.MakeC14N11Canonicalizer(), true
	case dsig.CanonicalXML11WithCommentsAlgorithmId:
		return dsig.MakeC14N11WithCommentsCanonicalizer(), true
	}
	return nil, false
}

// canonicalSubtree canonicalises an element of the document in its context:
// the namespaces in scope where it stands are declared on a detached copy
// (inclusive C14N 1.0 collects them, and xml:* attributes, itself).
func canonicalSubtree(el *etree.Element, c dsig.Canonicalizer) ([]byte, error) {
	switch c.Algorithm() {
	case dsig.CanonicalXML10RecAlgorithmId, dsig.CanonicalXML10WithCommentsAlgorithmId:
		return c.Canonicalize(el)
	}
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, err
	}
	det, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return nil, err
	}
	return c.Canonicalize(det)
}

// xmlSignature is the one ds:Signature of a list, as found.
type xmlSignature struct {
	el, signedInfo, signedProps *etree.Element
	c14n                        dsig.Canonicalizer
	method                      sigAlg
	value                       []byte
	keyInfoCerts                []*x509.Certificate
	refs                        []reference
}

type reference struct {
	whole  bool // covers the whole list
	target *etree.Element
	c14n   dsig.Canonicalizer
	hash   crypto.Hash
	digest []byte
}

// findSignature locates and parses the list's signature under the rules of
// the package documentation.
func findSignature(doc *etree.Document) (*xmlSignature, *SignatureError) {
	root := doc.Root()
	var sigs []*etree.Element
	ids := map[string][]*etree.Element{}
	walk(root, func(e *etree.Element) {
		if is(e, NSXMLDSig, "Signature") {
			sigs = append(sigs, e)
		}
		for _, a := range e.Attr {
			if a.Space == "" && (a.Key == "Id" || a.Key == "ID" || a.Key == "id") {
				ids[a.Value] = append(ids[a.Value], e)
			}
		}
	})
	if len(sigs) != 1 {
		return nil, formatFailure("the list has %d XML signatures; a trusted list has exactly one", len(sigs))
	}
	s := &xmlSignature{el: sigs[0]}
	if s.el.Parent() != root {
		return nil, formatFailure("the signature is not a child of the TrustServiceStatusList element (signature wrapping?)")
	}
	si := children(s.el, NSXMLDSig, "SignedInfo")
	sv := children(s.el, NSXMLDSig, "SignatureValue")
	if len(si) != 1 || len(sv) != 1 || len(children(s.el, NSXMLDSig, "KeyInfo")) > 1 {
		return nil, formatFailure("the signature needs exactly one SignedInfo and one SignatureValue")
	}
	s.signedInfo = si[0]
	cm := children(s.signedInfo, NSXMLDSig, "CanonicalizationMethod")
	sm := children(s.signedInfo, NSXMLDSig, "SignatureMethod")
	if len(cm) != 1 || len(sm) != 1 {
		return nil, formatFailure("SignedInfo needs one CanonicalizationMethod and one SignatureMethod")
	}
	var ok bool
	if s.c14n, ok = canonicalizer(attr(cm[0], "Algorithm"), prefixList(cm[0])); !ok {
		return nil, formatFailure("unsupported canonicalisation %q", attr(cm[0], "Algorithm"))
	}
	alg := attr(sm[0], "Algorithm")
	if weakSignatureMethods[alg] {
		return nil, sigFail(report.Indeterminate, report.CryptoConstraintsFailure, "signature algorithm %s is no longer acceptable (ETSI TS 119 312)", alg)
	}
	if s.method, ok = signatureMethods[alg]; !ok {
		return nil, formatFailure("unsupported signature algorithm %q", alg)
	}
	val, err := base64.StdEncoding.DecodeString(stripSpace(sv[0].Text()))
	if err != nil || len(val) == 0 {
		return nil, formatFailure("SignatureValue is not base64")
	}
	s.value = val
	for _, c := range children(path(s.el, NSXMLDSig, "KeyInfo", "X509Data"), NSXMLDSig, "X509Certificate") {
		der, err := base64.StdEncoding.DecodeString(stripSpace(c.Text()))
		if err != nil {
			return nil, formatFailure("KeyInfo X509Certificate is not base64")
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, formatFailure("KeyInfo certificate: %v", err)
		}
		s.keyInfoCerts = append(s.keyInfoCerts, cert)
	}
	// XAdES: ds:Object/xades:QualifyingProperties/xades:SignedProperties.
	for _, obj := range children(s.el, NSXMLDSig, "Object") {
		for _, qp := range children(obj, NSXAdES, "QualifyingProperties") {
			for _, sp := range children(qp, NSXAdES, "SignedProperties") {
				if s.signedProps != nil {
					return nil, formatFailure("more than one xades:SignedProperties")
				}
				s.signedProps = sp
			}
		}
	}
	if s.signedProps == nil {
		return nil, formatFailure("no xades:SignedProperties: not a XAdES-BES signature")
	}
	rootID := root.SelectAttrValue("Id", root.SelectAttrValue("ID", ""))
	whole, props := 0, 0
	for _, r := range children(s.signedInfo, NSXMLDSig, "Reference") {
		ref, err := parseReference(r, s, root, rootID, ids)
		if err != nil {
			return nil, err
		}
		if ref.whole {
			whole++
		} else {
			props++
		}
		s.refs = append(s.refs, ref)
	}
	if whole != 1 || props != 1 {
		return nil, formatFailure("the signature must reference the whole list once and its SignedProperties once (found %d and %d)", whole, props)
	}
	return s, nil
}

func prefixList(e *etree.Element) string {
	for _, c := range e.ChildElements() {
		if c.Tag == "InclusiveNamespaces" {
			return c.SelectAttrValue("PrefixList", "")
		}
	}
	return ""
}

func parseReference(r *etree.Element, s *xmlSignature, root *etree.Element, rootID string, ids map[string][]*etree.Element) (reference, *SignatureError) {
	var ref reference
	uri := r.SelectAttrValue("URI", "")
	switch {
	case uri == "" || (rootID != "" && uri == "#"+rootID):
		if uri != "" && len(ids[rootID]) != 1 {
			return ref, formatFailure("Id %q is not unique (signature wrapping?)", rootID)
		}
		ref.whole, ref.target = true, root
	case len(uri) > 1 && uri[0] == '#':
		els := ids[uri[1:]]
		if len(els) != 1 {
			return ref, formatFailure("reference %q names %d elements (signature wrapping?)", uri, len(els))
		}
		if els[0] != s.signedProps {
			return ref, formatFailure("reference %q is neither the list nor the signature's SignedProperties", uri)
		}
		if t := r.SelectAttrValue("Type", typeSignedProp); t != typeSignedProp {
			return ref, formatFailure("reference to the SignedProperties has Type %q", t)
		}
		ref.target = s.signedProps
	default:
		return ref, formatFailure("reference URI %q is not accepted in a trusted list", uri)
	}
	enveloped := false
	for _, t := range children(child(r, NSXMLDSig, "Transforms"), NSXMLDSig, "Transform") {
		alg := attr(t, "Algorithm")
		if alg == algEnveloped && ref.whole && !enveloped && ref.c14n == nil {
			enveloped = true
			continue
		}
		c, ok := canonicalizer(alg, prefixList(t))
		if !ok || ref.c14n != nil {
			return ref, formatFailure("transform %q is not accepted in a trusted list", alg)
		}
		ref.c14n = c
	}
	if ref.whole && !enveloped {
		return ref, formatFailure("the reference to the list lacks the enveloped-signature transform")
	}
	if ref.c14n == nil {
		// XMLDSig §4.3.3.2: a node-set becomes octets by inclusive C14N 1.0.
		ref.c14n = dsig.MakeC14N10RecCanonicalizer()
	}
	alg := attr(child(r, NSXMLDSig, "DigestMethod"), "Algorithm")
	if alg == digestSHA1 {
		return ref, sigFail(report.Indeterminate, report.CryptoConstraintsFailure, "digest algorithm SHA-1 is no longer acceptable (ETSI TS 119 312)")
	}
	h, ok := digestMethods[alg]
	if !ok {
		return ref, formatFailure("unsupported digest algorithm %q", alg)
	}
	ref.hash = h
	d, err := base64.StdEncoding.DecodeString(stripSpace(text(child(r, NSXMLDSig, "DigestValue"))))
	if err != nil || len(d) != h.Size() {
		return ref, formatFailure("DigestValue is not a %s digest", h)
	}
	ref.digest = d
	return ref, nil
}

// checkDigests recomputes every reference's digest.
func (s *xmlSignature) checkDigests() *SignatureError {
	for _, ref := range s.refs {
		var data []byte
		var err error
		if ref.whole {
			cp := ref.target.Copy()
			idx := s.el.Index()
			if idx < 0 || idx >= len(cp.Child) {
				return formatFailure("the enveloped signature cannot be removed")
			}
			cp.RemoveChildAt(idx)
			data, err = ref.c14n.Canonicalize(cp)
		} else {
			data, err = canonicalSubtree(ref.target, ref.c14n)
		}
		if err != nil {
			return formatFailure("canonicalising a reference: %v", err)
		}
		h := ref.hash.New()
		h.Write(data)
		if !bytes.Equal(h.Sum(nil), ref.digest) {
			what := "the list"
			if !ref.whole {
				what = "the signed properties"
			}
			return sigFail(report.TotalFailed, report.HashFailure, "the digest of %s does not match: the list was changed after signing", what)
		}
	}
	return nil
}

// checkValue verifies the signature value over the canonical SignedInfo.
func (s *xmlSignature) checkValue(pub crypto.PublicKey) *SignatureError {
	data, err := canonicalSubtree(s.signedInfo, s.c14n)
	if err != nil {
		return formatFailure("canonicalising SignedInfo: %v", err)
	}
	h := s.method.hash.New()
	h.Write(data)
	digest := h.Sum(nil)
	bad := func(err error) *SignatureError {
		return sigFail(report.TotalFailed, report.SigCryptoFailure, "the signature value does not verify with the signer's key: %v", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if !s.method.rsa {
			return bad(errors.New("an RSA key with an ECDSA algorithm"))
		}
		if k.N.BitLen() < 2048 {
			return sigFail(report.Indeterminate, report.CryptoConstraintsFailure, "RSA key of %d bits (at least 2048)", k.N.BitLen())
		}
		if s.method.pss {
			err = rsa.VerifyPSS(k, s.method.hash, digest, s.value, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		} else {
			err = rsa.VerifyPKCS1v15(k, s.method.hash, digest, s.value)
		}
		if err != nil {
			return bad(err)
		}
	case *ecdsa.PublicKey:
		if s.method.rsa {
			return bad(errors.New("an ECDSA key with an RSA algorithm"))
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		ok := false
		if len(s.value) == 2*n {
			r, ss := new(big.Int).SetBytes(s.value[:n]), new(big.Int).SetBytes(s.value[n:])
			ok = ecdsa.Verify(k, digest, r, ss)
		} else {
			ok = ecdsa.VerifyASN1(k, digest, s.value)
		}
		if !ok {
			return bad(errors.New("ECDSA verification failure"))
		}
	default:
		return sigFail(report.Indeterminate, report.CryptoConstraintsFailure, "unsupported signer key %T", pub)
	}
	return nil
}

// signingCertificate checks the XAdES SigningCertificate(V2) names cert and
// returns the claimed signing time.
func (s *xmlSignature) signingCertificate(cert *x509.Certificate) (time.Time, *SignatureError) {
	ssp := child(s.signedProps, NSXAdES, "SignedSignatureProperties")
	var signingTime time.Time
	if st := child(ssp, NSXAdES, "SigningTime"); st != nil {
		signingTime, _ = parseTime(text(st))
	}
	sc := child(ssp, NSXAdES, "SigningCertificateV2")
	if sc == nil {
		sc = child(ssp, NSXAdES, "SigningCertificate")
	}
	if sc == nil {
		return signingTime, sigFail(report.Indeterminate, report.NoSigningCertificateFound, "the signed properties name no signing certificate (XAdES SigningCertificate)")
	}
	for _, c := range children(sc, NSXAdES, "Cert") {
		cd := child(c, NSXAdES, "CertDigest")
		alg := attr(child(cd, NSXMLDSig, "DigestMethod"), "Algorithm")
		want, err := base64.StdEncoding.DecodeString(stripSpace(text(child(cd, NSXMLDSig, "DigestValue"))))
		if err != nil {
			continue
		}
		h, ok := digestMethods[alg]
		if alg == digestSHA1 {
			h, ok = crypto.SHA1, true // an identifier only, as XAdES 1.3.2 lists allow
		}
		if !ok {
			continue
		}
		d := h.New()
		d.Write(cert.Raw)
		if bytes.Equal(d.Sum(nil), want) {
			return signingTime, nil
		}
	}
	return signingTime, sigFail(report.Indeterminate, report.NoSigningCertificateFound, "the XAdES SigningCertificate does not name the certificate that signed the list")
}
