// Package build writes this deployment's own ETSI TS 119 612 trusted list
// and signs it: an enveloped XAdES-BES signature (XAdES baseline B with
// SigningCertificateV2) over the whole list, exclusive C14N, RSA PKCS#1 v1.5
// or ECDSA with SHA-2, made with any crypto.Signer (a key on the token in
// production). It lives outside verify/ because it signs; it checks what it
// signed with verify/tsl before returning it, as a relying party would.
//
// It also says what the list holds for a deployment (DeploymentServices,
// NextSequence), makes the list signer's self-signed certificate
// (SignerCertificate) and serves the published file (Published).
package build

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/thiqa/thiqa/verify/tsl"
)

// Service is one trust service of the provider.
type Service struct {
	// Type is the service type URI (tsl.SvcTypeCAQC, tsl.SvcTypeTSAQTST…).
	Type string
	Name string
	// Certificates are the service digital identity.
	Certificates []*x509.Certificate
	// Status is the status URI (tsl.StatusGranted) since Since.
	Status string
	Since  time.Time
	// AdditionalInfo are AdditionalServiceInformation URIs
	// (tsl.ASiForeSignatures, tsl.ASiForeSeals…).
	AdditionalInfo []string
}

// Options describe the list to build.
type Options struct {
	// Version is the TSL version, 5 or 6 (default 6).
	Version int
	// Sequence is the TSLSequenceNumber (at least 1; one more than the
	// previous list's).
	Sequence int
	// Territory is the scheme territory (ISO 3166-1 alpha-2).
	Territory string
	// Operator is the scheme operator's name; Provider the TSP's.
	Operator string
	Provider string
	// InformationURI is the operator's and provider's web address.
	InformationURI string
	// Street and Locality form the postal address of the operator and
	// the provider (placeholders allowed); StateOrProvince and PostalCode
	// are written when set.
	Street, Locality            string
	StateOrProvince, PostalCode string
	// Country is the address's country (ISO 3166-1 alpha-2; default the
	// territory).
	Country string
	// Email, when set, is written as a mailto: URI of the electronic
	// address after InformationURI.
	Email    string
	Services []Service
	// IssueDate and NextUpdate bound the list's validity.
	IssueDate  time.Time
	NextUpdate time.Time
	// DistributionPoint is where the list is published (…/tsl.xml).
	DistributionPoint string
	// Signer signs; Certificate is its certificate (placed in KeyInfo and
	// named by the XAdES SigningCertificateV2).
	Signer      crypto.Signer
	Certificate *x509.Certificate
	// C14N is the canonicalisation algorithm URI: exclusive C14N 1.0 (the
	// default, what other implementations expect), or inclusive C14N 1.0
	// or 1.1.
	C14N string
}

// Errors of Build.
var (
	// ErrOptions: the options cannot make a valid list.
	ErrOptions = errors.New("tsl build: invalid options")
	// ErrSelfCheck: the signed list does not verify (a signer fault).
	ErrSelfCheck = errors.New("tsl build: the signed list does not verify")
)

const (
	uriPrefix  = "http://uri.etsi.org/TrstSvc/TrustedList/"
	excC14N    = string(dsig.CanonicalXML10ExclusiveAlgorithmId)
	digestSHA2 = "http://www.w3.org/2001/04/xmlenc#sha256"
)

func (o *Options) validate() error {
	switch {
	case o.Version != 5 && o.Version != 6:
		return fmt.Errorf("%w: version %d (want 5 or 6)", ErrOptions, o.Version)
	case o.Sequence < 1:
		return fmt.Errorf("%w: sequence number %d", ErrOptions, o.Sequence)
	case len(o.Territory) != 2:
		return fmt.Errorf("%w: territory %q (want two letters)", ErrOptions, o.Territory)
	case o.Country != "" && !tsl.IsTerritory(o.Country):
		return fmt.Errorf("%w: country %q (want two capital letters)", ErrOptions, o.Country)
	case o.Operator == "" || o.Provider == "":
		return fmt.Errorf("%w: operator and provider names are required", ErrOptions)
	case o.IssueDate.IsZero() || !o.NextUpdate.After(o.IssueDate):
		return fmt.Errorf("%w: nextUpdate must follow the issue date", ErrOptions)
	case o.Signer == nil || o.Certificate == nil:
		return fmt.Errorf("%w: a signer and its certificate are required", ErrOptions)
	case len(o.Services) == 0:
		return fmt.Errorf("%w: no services", ErrOptions)
	}
	for _, s := range o.Services {
		if len(s.Certificates) == 0 || s.Type == "" || s.Status == "" || s.Name == "" {
			return fmt.Errorf("%w: service %q needs a type, a status and a certificate", ErrOptions, s.Name)
		}
	}
	return nil
}

// Build returns the signed list.
func Build(o Options) ([]byte, error) {
	if o.Version == 0 {
		o.Version = 6
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("TrustServiceStatusList")
	root.CreateAttr("xmlns", tsl.NSTSL)
	root.CreateAttr("TSLTag", tsl.TSLTag)
	root.CreateAttr("Id", "tsl-"+o.Territory+"-"+strconv.Itoa(o.Sequence))
	writeScheme(root, &o)
	writeProvider(root, &o)
	doc.Indent(2)
	switch o.C14N {
	case "":
		o.C14N = excC14N
	case excC14N, string(dsig.CanonicalXML10RecAlgorithmId), string(dsig.CanonicalXML11AlgorithmId):
	default:
		return nil, fmt.Errorf("%w: canonicalisation %q", ErrOptions, o.C14N)
	}
	if err := sign(root, &o); err != nil {
		return nil, err
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("tsl build: serialising: %w", err)
	}
	res := tsl.Check(out, tsl.CheckOptions{Signers: []*x509.Certificate{o.Certificate}, At: o.IssueDate})
	if !res.Passed() {
		return nil, fmt.Errorf("%w: %s %s %v", ErrSelfCheck, res.Indication, res.SubIndication, res.Errors)
	}
	return out, nil
}

func text(parent *etree.Element, tag, value string) *etree.Element {
	e := parent.CreateElement(tag)
	e.SetText(value)
	return e
}

func names(parent *etree.Element, tag, value string) {
	n := parent.CreateElement(tag).CreateElement("Name")
	n.CreateAttr("xml:lang", "en")
	n.SetText(value)
}

func uris(parent *etree.Element, tag string, values ...string) {
	e := parent.CreateElement(tag)
	for _, v := range values {
		u := text(e, "URI", v)
		u.CreateAttr("xml:lang", "en")
	}
}

func address(parent *etree.Element, tag string, o *Options) {
	a := parent.CreateElement(tag)
	pa := a.CreateElement("PostalAddresses").CreateElement("PostalAddress")
	pa.CreateAttr("xml:lang", "en")
	text(pa, "StreetAddress", o.Street)
	text(pa, "Locality", o.Locality)
	if o.StateOrProvince != "" {
		text(pa, "StateOrProvince", o.StateOrProvince)
	}
	if o.PostalCode != "" {
		text(pa, "PostalCode", o.PostalCode)
	}
	country := o.Country
	if country == "" {
		country = o.Territory
	}
	text(pa, "CountryName", country)
	electronic := []string{o.InformationURI}
	if o.Email != "" {
		electronic = append(electronic, "mailto:"+o.Email)
	}
	uris(a, "ElectronicAddress", electronic...)
}

func xsdTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func writeScheme(root *etree.Element, o *Options) {
	si := root.CreateElement("SchemeInformation")
	text(si, "TSLVersionIdentifier", strconv.Itoa(o.Version))
	text(si, "TSLSequenceNumber", strconv.Itoa(o.Sequence))
	text(si, "TSLType", uriPrefix+"TSLType/"+o.Territory+"list")
	names(si, "SchemeOperatorName", o.Operator)
	address(si, "SchemeOperatorAddress", o)
	names(si, "SchemeName", o.Territory+": trusted list of the qualified trust services of "+o.Provider)
	uris(si, "SchemeInformationURI", o.InformationURI)
	text(si, "StatusDeterminationApproach", uriPrefix+"StatusDetn/"+o.Territory+"determination")
	uris(si, "SchemeTypeCommunityRules", uriPrefix+"schemerules/"+o.Territory)
	text(si, "SchemeTerritory", o.Territory)
	n := si.CreateElement("PolicyOrLegalNotice").CreateElement("TSLLegalNotice")
	n.CreateAttr("xml:lang", "en")
	n.SetText("The trust services listed here are operated by " + o.Provider + " under the rules of the scheme of " + o.Territory + ".")
	text(si, "HistoricalInformationPeriod", "65535")
	text(si, "ListIssueDateTime", xsdTime(o.IssueDate))
	text(si.CreateElement("NextUpdate"), "dateTime", xsdTime(o.NextUpdate))
	if o.DistributionPoint != "" {
		uris(si, "DistributionPoints", o.DistributionPoint)
	}
}

func writeProvider(root *etree.Element, o *Options) {
	tp := root.CreateElement("TrustServiceProviderList").CreateElement("TrustServiceProvider")
	info := tp.CreateElement("TSPInformation")
	names(info, "TSPName", o.Provider)
	address(info, "TSPAddress", o)
	uris(info, "TSPInformationURI", o.InformationURI)
	svcs := tp.CreateElement("TSPServices")
	for _, s := range o.Services {
		si := svcs.CreateElement("TSPService").CreateElement("ServiceInformation")
		text(si, "ServiceTypeIdentifier", s.Type)
		names(si, "ServiceName", s.Name)
		sdi := si.CreateElement("ServiceDigitalIdentity")
		for _, c := range s.Certificates {
			text(sdi.CreateElement("DigitalId"), "X509Certificate", base64.StdEncoding.EncodeToString(c.Raw))
		}
		text(si, "ServiceStatus", s.Status)
		text(si, "StatusStartingTime", xsdTime(s.Since))
		if len(s.AdditionalInfo) > 0 {
			exts := si.CreateElement("ServiceInformationExtensions")
			for _, a := range s.AdditionalInfo {
				ext := exts.CreateElement("Extension")
				ext.CreateAttr("Critical", "true")
				uris(ext, "AdditionalServiceInformation", a)
			}
		}
	}
}

// signatureMethod picks the algorithm for the signer's key.
func signatureMethod(pub crypto.PublicKey) (string, crypto.Hash, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return dsig.RSASHA256SignatureMethod, crypto.SHA256, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			return dsig.ECDSASHA384SignatureMethod, crypto.SHA384, nil
		}
		return dsig.ECDSASHA256SignatureMethod, crypto.SHA256, nil
	}
	return "", 0, fmt.Errorf("%w: signer key %T", ErrOptions, pub)
}

func ds(parent *etree.Element, tag string) *etree.Element { return parent.CreateElement("ds:" + tag) }

func algorithm(parent *etree.Element, tag, alg string) *etree.Element {
	e := ds(parent, tag)
	e.CreateAttr("Algorithm", alg)
	return e
}

// sign appends the enveloped XAdES-BES signature to root.
func sign(root *etree.Element, o *Options) error {
	method, hash, err := signatureMethod(o.Signer.Public())
	if err != nil {
		return err
	}
	id := fmt.Sprintf("sig-%s-%d", o.Territory, o.Sequence)
	sig := root.CreateElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", tsl.NSXMLDSig)
	sig.CreateAttr("Id", id)
	si := ds(sig, "SignedInfo")
	algorithm(si, "CanonicalizationMethod", o.C14N)
	algorithm(si, "SignatureMethod", method)
	refList := ds(si, "Reference")
	refList.CreateAttr("Id", "ref-"+id)
	refList.CreateAttr("URI", "")
	tr := ds(refList, "Transforms")
	algorithm(tr, "Transform", string(dsig.EnvelopedSignatureAltorithmId))
	algorithm(tr, "Transform", o.C14N)
	algorithm(refList, "DigestMethod", digestSHA2)
	listDigest := ds(refList, "DigestValue")
	refProps := ds(si, "Reference")
	refProps.CreateAttr("Type", "http://uri.etsi.org/01903#SignedProperties")
	refProps.CreateAttr("URI", "#xades-"+id)
	algorithm(ds(refProps, "Transforms"), "Transform", o.C14N)
	algorithm(refProps, "DigestMethod", digestSHA2)
	propsDigest := ds(refProps, "DigestValue")
	value := ds(sig, "SignatureValue")
	value.CreateAttr("Id", "value-"+id)
	ds(ds(ds(sig, "KeyInfo"), "X509Data"), "X509Certificate").SetText(base64.StdEncoding.EncodeToString(o.Certificate.Raw))

	qp := ds(sig, "Object").CreateElement("xades:QualifyingProperties")
	qp.CreateAttr("xmlns:xades", tsl.NSXAdES)
	qp.CreateAttr("Target", "#"+id)
	sp := qp.CreateElement("xades:SignedProperties")
	sp.CreateAttr("Id", "xades-"+id)
	ssp := sp.CreateElement("xades:SignedSignatureProperties")
	text(ssp, "xades:SigningTime", xsdTime(o.IssueDate))
	cd := ssp.CreateElement("xades:SigningCertificateV2").CreateElement("xades:Cert").CreateElement("xades:CertDigest")
	algorithm(cd, "DigestMethod", digestSHA2)
	certSum := sha256.Sum256(o.Certificate.Raw)
	ds(cd, "DigestValue").SetText(base64.StdEncoding.EncodeToString(certSum[:]))
	dof := sp.CreateElement("xades:SignedDataObjectProperties").CreateElement("xades:DataObjectFormat")
	dof.CreateAttr("ObjectReference", "#ref-"+id)
	text(dof, "xades:MimeType", "text/xml")

	exc := canonicalizer(o.C14N)
	d, err := digestInPlace(sp, exc)
	if err != nil {
		return err
	}
	propsDigest.SetText(d)
	cp := root.Copy()
	cp.RemoveChildAt(sig.Index())
	canon, err := exc.Canonicalize(cp)
	if err != nil {
		return fmt.Errorf("tsl build: canonicalising the list: %w", err)
	}
	sum := sha256.Sum256(canon)
	listDigest.SetText(base64.StdEncoding.EncodeToString(sum[:]))

	signed, err := canonicalInPlace(si, canonicalizer(o.C14N))
	if err != nil {
		return err
	}
	h := hash.New()
	h.Write(signed)
	sv, err := o.Signer.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return fmt.Errorf("tsl build: signing: %w", err)
	}
	if k, ok := o.Signer.Public().(*ecdsa.PublicKey); ok {
		if sv, err = ecdsaRaw(sv, (k.Curve.Params().BitSize+7)/8); err != nil {
			return err
		}
	}
	value.SetText(base64.StdEncoding.EncodeToString(sv))
	return nil
}

func canonicalizer(alg string) dsig.Canonicalizer {
	switch dsig.AlgorithmID(alg) {
	case dsig.CanonicalXML10RecAlgorithmId:
		return dsig.MakeC14N10RecCanonicalizer()
	case dsig.CanonicalXML11AlgorithmId:
		return dsig.MakeC14N11Canonicalizer()
	}
	return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
}

// canonicalInPlace canonicalises an element with the namespaces in scope
// where it stands, as a verifier will.
func canonicalInPlace(el *etree.Element, c dsig.Canonicalizer) ([]byte, error) {
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, fmt.Errorf("tsl build: namespaces: %w", err)
	}
	det, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return nil, fmt.Errorf("tsl build: namespaces: %w", err)
	}
	out, err := c.Canonicalize(det)
	if err != nil {
		return nil, fmt.Errorf("tsl build: canonicalising: %w", err)
	}
	return out, nil
}

func digestInPlace(el *etree.Element, c dsig.Canonicalizer) (string, error) {
	canon, err := canonicalInPlace(el, c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// ecdsaRaw turns an ASN.1 ECDSA signature into XMLDSig's r||s.
func ecdsaRaw(der []byte, size int) ([]byte, error) {
	var v struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) > 0 || v.R == nil || v.S == nil ||
		v.R.Sign() < 0 || v.S.Sign() < 0 || v.R.BitLen() > 8*size || v.S.BitLen() > 8*size {
		return nil, errors.New("tsl build: the signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	v.R.FillBytes(out[:size])
	v.S.FillBytes(out[size:])
	return out, nil
}
