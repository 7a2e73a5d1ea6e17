package cmp

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/outage"
)

// cmpError is a refusal with the failure bit the client is told.
type cmpError struct {
	fail   FailInfo
	detail string
}

func (e *cmpError) Error() string { return e.fail.String() + ": " + e.detail }

func failf(f FailInfo, format string, args ...any) *cmpError {
	return &cmpError{fail: f, detail: fmt.Sprintf(format, args...)}
}

// errUnrecorded is the answer to a request whose audit record cannot be
// written (err: why).
func errUnrecorded(err error) *cmpError { return systemError(err, "the audit log is unavailable") }

// systemError is the answer to a request a dependency failed with err:
// systemUnavail ("try later", RFC 4210 §5.2.3) when err is marked as an
// outage (the database or the HSM down for now), systemFailure otherwise.
func systemError(err error, format string, args ...any) *cmpError {
	if outage.Is(err) {
		return failf(SystemUnavail, format, args...)
	}
	return failf(SystemFailure, format, args...)
}

// message is a parsed request.
type message struct {
	raw        rawMessage
	header     pkiHeader
	bodyType   int
	body       []byte // the body's content: the DER inside its explicit tag
	extraCerts []*x509.Certificate
}

// maxExtraCerts bounds the certificates a request may carry.
const maxExtraCerts = 8

// parseMessage reads a PKIMessage. Every error is badDataFormat: what the
// bytes mean is checked later, per body type.
func parseMessage(der []byte) (*message, *cmpError) {
	var m message
	rest, err := asn1.Unmarshal(der, &m.raw)
	if err != nil {
		return nil, failf(BadDataFormat, "not a DER PKIMessage: %v", err)
	}
	if len(rest) > 0 {
		return nil, failf(BadDataFormat, "%d bytes after the PKIMessage", len(rest))
	}
	if rest, err := asn1.Unmarshal(m.raw.Header.FullBytes, &m.header); err != nil || len(rest) > 0 {
		return nil, failf(BadDataFormat, "malformed PKIHeader: %v", err)
	}
	b := m.raw.Body
	if b.Class != asn1.ClassContextSpecific || !b.IsCompound {
		return nil, failf(BadDataFormat, "PKIBody is not a tagged choice")
	}
	m.bodyType, m.body = b.Tag, b.Bytes
	var inner asn1.RawValue
	if rest, err := asn1.Unmarshal(m.body, &inner); err != nil || len(rest) > 0 {
		return nil, failf(BadDataFormat, "malformed %s body", bodyName(m.bodyType))
	}
	if len(m.raw.ExtraCerts) > maxExtraCerts {
		return nil, failf(BadRequest, "%d extraCerts (at most %d)", len(m.raw.ExtraCerts), maxExtraCerts)
	}
	for _, c := range m.raw.ExtraCerts {
		cert, err := x509.ParseCertificate(c.FullBytes)
		if err != nil {
			return nil, failf(BadDataFormat, "extraCerts: %v", err)
		}
		m.extraCerts = append(m.extraCerts, cert)
	}
	return &m, nil
}

func bodyName(t int) string {
	if n, ok := bodyNames[t]; ok {
		return n
	}
	return fmt.Sprintf("[%d]", t)
}

// protectedBytes is the DER that the protection covers.
func (m *message) protectedBytes() []byte {
	der, _ := asn1.Marshal(protectedPart{Header: m.raw.Header, Body: m.raw.Body})
	return der
}

// senderName returns the sender's directoryName, nil when the sender is
// another kind of GeneralName.
func (m *message) senderName() (pkix.RDNSequence, bool) {
	return directoryName(m.header.Sender)
}

func directoryName(gn asn1.RawValue) (pkix.RDNSequence, bool) {
	if gn.Class != asn1.ClassContextSpecific || gn.Tag != 4 {
		return nil, false
	}
	var n pkix.RDNSequence
	if rest, err := asn1.Unmarshal(gn.Bytes, &n); err != nil || len(rest) > 0 {
		return nil, false
	}
	return n, true
}

// generalName wraps a DER Name as a directoryName GeneralName.
func generalName(rawName []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: rawName}
}

// hasGeneralInfo reports whether the header carries an InfoTypeAndValue
// of that type.
func (m *message) hasGeneralInfo(oid asn1.ObjectIdentifier) bool {
	for _, it := range m.header.GeneralInfo {
		if it.Type.Equal(oid) {
			return true
		}
	}
	return false
}

// certReq is one parsed certificate request of ir, cr or kur.
type certReq struct {
	id        *big.Int
	raw       []byte // CertRequest DER, what a signature POP covers
	publicKey crypto.PublicKey
	subject   *pkix.RDNSequence
	// extensions is the content of the template's extensions ([9]
	// IMPLICIT Extensions), read (templateExtensions) for an RA's request
	// alone: an enrolment fixes the subject, a kur keeps the holder's.
	extensions []byte
	oldCert    *certID
	popo       asn1.RawValue
}

// reSequence turns the content of an implicitly tagged SEQUENCE back into
// the SEQUENCE's DER.
func reSequence(content []byte) []byte {
	der, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: content})
	return der
}

// parseCertReqMessages reads the one CertReqMsg of a Lightweight CMP ir,
// cr or kur.
func parseCertReqMessages(body []byte) (*certReq, *cmpError) {
	var msgs []certReqMsg
	if rest, err := asn1.Unmarshal(body, &msgs); err != nil || len(rest) > 0 {
		return nil, failf(BadDataFormat, "malformed CertReqMessages: %v", err)
	}
	if len(msgs) != 1 {
		return nil, failf(BadRequest, "%d certificate requests in one message (the Lightweight CMP profile allows one)", len(msgs))
	}
	var cr certRequest
	if rest, err := asn1.Unmarshal(msgs[0].CertReq.FullBytes, &cr); err != nil || len(rest) > 0 {
		return nil, failf(BadDataFormat, "malformed CertRequest: %v", err)
	}
	var tmpl certTemplate
	if rest, err := asn1.UnmarshalWithParams(cr.Template.FullBytes, &tmpl, ""); err != nil || len(rest) > 0 {
		return nil, failf(BadDataFormat, "malformed CertTemplate: %v", err)
	}
	out := &certReq{id: cr.CertReqID, raw: msgs[0].CertReq.FullBytes, popo: msgs[0].POPO}
	if cr.CertReqID == nil || cr.CertReqID.Sign() < 0 || cr.CertReqID.BitLen() > 31 {
		return nil, failf(BadDataFormat, "certReqId out of range")
	}
	if len(tmpl.PublicKey.Bytes) == 0 {
		return nil, failf(BadCertTemplate, "the certificate template has no public key (central key generation is not offered)")
	}
	pub, err := x509.ParsePKIXPublicKey(reSequence(tmpl.PublicKey.Bytes))
	if err != nil {
		return nil, failf(BadCertTemplate, "template public key: %v", err)
	}
	out.publicKey = pub
	if len(tmpl.Subject.Bytes) > 0 {
		var n pkix.RDNSequence
		if rest, err := asn1.Unmarshal(tmpl.Subject.Bytes, &n); err != nil || len(rest) > 0 {
			return nil, failf(BadCertTemplate, "template subject: malformed Name")
		}
		out.subject = &n
	}
	if tmpl.Extensions.Tag == 9 && tmpl.Extensions.Class == asn1.ClassContextSpecific {
		out.extensions = tmpl.Extensions.Bytes
	}
	for _, c := range cr.Controls {
		if c.Type.Equal(oidRegCtrlOldCertID) {
			var id certID
			if rest, err := asn1.Unmarshal(c.Value.FullBytes, &id); err != nil || len(rest) > 0 || id.SerialNumber == nil {
				return nil, failf(BadDataFormat, "malformed oldCertID control")
			}
			out.oldCert = &id
		}
	}
	return out, nil
}

// templateExtensions reads the template's extensions: none when it has
// none.
func (r *certReq) templateExtensions() ([]pkix.Extension, *cmpError) {
	if r.extensions == nil {
		return nil, nil
	}
	var exts []pkix.Extension
	if rest, err := asn1.Unmarshal(reSequence(r.extensions), &exts); err != nil || len(rest) > 0 {
		return nil, failf(BadCertTemplate, "template extensions: malformed Extensions")
	}
	return exts, nil
}

// checkPOP verifies a signature proof of possession of the request's key
// (RFC 4211 §4.1: over the CertRequest when there is no poposkInput).
func (r *certReq) checkPOP() *cmpError {
	if r.popo.Class != asn1.ClassContextSpecific || r.popo.Tag != 1 || !r.popo.IsCompound {
		return failf(BadPOP, "a signature proof of possession is required")
	}
	var sk popoSigningKey
	if rest, err := asn1.Unmarshal(reSequence(r.popo.Bytes), &sk); err != nil || len(rest) > 0 {
		return failf(BadDataFormat, "malformed POPOSigningKey: %v", err)
	}
	if len(sk.Input.FullBytes) > 0 {
		return failf(BadPOP, "poposkInput is not accepted: the template carries subject and key")
	}
	if e := checkSignature(r.publicKey, sk.Algorithm, r.raw, sk.Signature.RightAlign()); e != nil {
		if e.fail == BadMessageCheck {
			e.fail = BadPOP
		}
		return e
	}
	return nil
}

// parseRevDetails reads the one RevDetails of a Lightweight CMP rr: the
// certificate's issuer and serial, and the reason (unspecified when none).
func parseRevDetails(body []byte) (serial *big.Int, issuer *pkix.RDNSequence, reason int, e *cmpError) {
	var rds []revDetails
	if rest, err := asn1.Unmarshal(body, &rds); err != nil || len(rest) > 0 {
		return nil, nil, 0, failf(BadDataFormat, "malformed RevReqContent: %v", err)
	}
	if len(rds) != 1 {
		return nil, nil, 0, failf(BadRequest, "%d revocations in one message (the Lightweight CMP profile allows one)", len(rds))
	}
	var tmpl certTemplate
	if rest, err := asn1.Unmarshal(rds[0].CertDetails.FullBytes, &tmpl); err != nil || len(rest) > 0 {
		return nil, nil, 0, failf(BadDataFormat, "malformed certDetails: %v", err)
	}
	if len(tmpl.SerialNumber.Bytes) == 0 {
		return nil, nil, 0, failf(BadCertID, "certDetails names no serial number")
	}
	var sn *big.Int
	full, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagInteger, Bytes: tmpl.SerialNumber.Bytes})
	if rest, err := asn1.Unmarshal(full, &sn); err != nil || len(rest) > 0 || sn.Sign() <= 0 {
		return nil, nil, 0, failf(BadCertID, "malformed serial number")
	}
	if len(tmpl.Issuer.Bytes) > 0 {
		var n pkix.RDNSequence
		if rest, err := asn1.Unmarshal(tmpl.Issuer.Bytes, &n); err != nil || len(rest) > 0 {
			return nil, nil, 0, failf(BadCertID, "malformed issuer")
		}
		issuer = &n
	}
	reason = 0
	for _, ext := range rds[0].CRLEntryDetails {
		if ext.Id.Equal(oidCRLReason) {
			var r asn1.Enumerated
			if rest, err := asn1.Unmarshal(ext.Value, &r); err != nil || len(rest) > 0 {
				return nil, nil, 0, failf(BadDataFormat, "malformed CRL reason")
			}
			reason = int(r)
		}
	}
	return sn, issuer, reason, nil
}

// sameName compares two names by their DER.
func sameName(a pkix.RDNSequence, b []byte) bool {
	der, err := asn1.Marshal(a)
	return err == nil && bytes.Equal(der, b)
}

// Inspect reads a DER PKIMessage as the server does before it acts on it:
// the message, the protection's input and parameters, and the body by its
// type (certificate requests with their proof of possession, revocation
// details). It returns the body type's name, or the refusal the server
// would answer with. The fuzzer drives every parser through it.
func Inspect(der []byte) (string, error) {
	m, e := parseMessage(der)
	if e != nil {
		return "", e
	}
	_ = m.protectedBytes()
	m.senderName()
	if isMAC(m.header.ProtectionAlg) {
		// The parameters only: the key derivation is bounded work, not
		// parsing (and would make the fuzzer crawl).
		if _, e := parseMACParams(m.header.ProtectionAlg); e != nil {
			return bodyName(m.bodyType), e
		}
	}
	switch m.bodyType {
	case bodyIR, bodyCR, bodyKUR:
		r, e := parseCertReqMessages(m.body)
		if e != nil {
			return bodyName(m.bodyType), e
		}
		if e := r.checkPOP(); e != nil {
			return bodyName(m.bodyType), e
		}
		// Read for an RA's request alone (raSubject); parsed here so that
		// the fuzzer reaches the template's extensions and subjectAltName.
		if exts, e := r.templateExtensions(); e == nil {
			for _, x := range exts {
				_, _, _ = ca.SubjectAltName(x.Value)
			}
		}
	case bodyRR:
		if _, _, _, e := parseRevDetails(m.body); e != nil {
			return bodyName(m.bodyType), e
		}
	}
	return bodyName(m.bodyType), nil
}
