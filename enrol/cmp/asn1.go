package cmp

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"time"
)

// Object identifiers (RFC 4210, RFC 9480, RFC 9481, RFC 4211).
var (
	oidPasswordBasedMac = asn1.ObjectIdentifier{1, 2, 840, 113533, 7, 66, 13}
	oidPBMAC1           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBKDF2           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidSHA1             = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidHMACSHA1         = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 8, 1, 2}
	oidHMACWithSHA1     = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidImplicitConfirm  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 4, 13}
	oidConfirmWaitTime  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 4, 14}
	oidCACerts          = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 4, 17}
	oidRootCAKeyUpdate  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 4, 18}
	oidRootCACert       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 4, 20}
	oidCertProfile      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 4, 21}
	oidCRLReason        = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidRegCtrlOldCertID = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 5, 1, 5}
)

// PKIBody choices (RFC 4210 §5.1.2): the context tag of each body type.
const (
	bodyIR       = 0
	bodyIP       = 1
	bodyCR       = 2
	bodyCP       = 3
	bodyP10CR    = 4
	bodyKUR      = 7
	bodyKUP      = 8
	bodyRR       = 11
	bodyRP       = 12
	bodyPKIConf  = 19
	bodyGenM     = 21
	bodyGenP     = 22
	bodyError    = 23
	bodyCertConf = 24
)

// bodyNames names the body types in errors and audit records.
var bodyNames = map[int]string{
	0: "ir", 1: "ip", 2: "cr", 3: "cp", 4: "p10cr", 5: "popdecc", 6: "popdecr", 7: "kur", 8: "kup", 9: "krr", 10: "krp",
	11: "rr", 12: "rp", 13: "ccr", 14: "ccp", 15: "ckuann", 16: "cann", 17: "rann", 18: "crlann", 19: "pkiconf",
	20: "nested", 21: "genm", 22: "genp", 23: "error", 24: "certConf", 25: "pollReq", 26: "pollRep",
}

// PKIStatus values.
const (
	statusAccepted         = 0
	statusGrantedWithMods  = 1
	statusRejection        = 2
	statusWaiting          = 3
	statusRevocationNotice = 5
)

// FailInfo is a PKIFailureInfo bit (RFC 4210 §5.2.3).
type FailInfo int

// The failure bits this server sets.
const (
	BadAlg             FailInfo = 0
	BadMessageCheck    FailInfo = 1
	BadRequest         FailInfo = 2
	BadTime            FailInfo = 3
	BadCertID          FailInfo = 4
	BadDataFormat      FailInfo = 5
	WrongAuthority     FailInfo = 6
	IncorrectData      FailInfo = 7
	BadPOP             FailInfo = 9
	CertRevoked        FailInfo = 10
	CertConfirmed      FailInfo = 11
	WrongIntegrity     FailInfo = 12
	BadRecipientNonce  FailInfo = 13
	UnacceptedPolicy   FailInfo = 15
	BadSenderNonce     FailInfo = 18
	BadCertTemplate    FailInfo = 19
	SignerNotTrusted   FailInfo = 20
	TransactionIDInUse FailInfo = 21
	UnsupportedVersion FailInfo = 22
	NotAuthorized      FailInfo = 23
	SystemUnavail      FailInfo = 24
	SystemFailure      FailInfo = 25
	DuplicateCertReq   FailInfo = 26
)

var failInfoNames = map[FailInfo]string{
	BadAlg: "badAlg", BadMessageCheck: "badMessageCheck", BadRequest: "badRequest", BadTime: "badTime", BadCertID: "badCertId",
	BadDataFormat: "badDataFormat", WrongAuthority: "wrongAuthority", IncorrectData: "incorrectData", BadPOP: "badPOP",
	CertRevoked: "certRevoked", CertConfirmed: "certConfirmed", WrongIntegrity: "wrongIntegrity", BadRecipientNonce: "badRecipientNonce",
	UnacceptedPolicy: "unacceptedPolicy", BadSenderNonce: "badSenderNonce", BadCertTemplate: "badCertTemplate",
	SignerNotTrusted: "signerNotTrusted", TransactionIDInUse: "transactionIdInUse", UnsupportedVersion: "unsupportedVersion",
	NotAuthorized: "notAuthorized", SystemUnavail: "systemUnavail", SystemFailure: "systemFailure", DuplicateCertReq: "duplicateCertReq",
}

// String names the bit as RFC 4210 does.
func (f FailInfo) String() string { return failInfoNames[f] }

// bits encodes one failure bit as a DER named-bit BIT STRING.
func (f FailInfo) bits() asn1.BitString {
	n := int(f)
	b := make([]byte, n/8+1)
	b[n/8] = 0x80 >> (n % 8)
	return asn1.BitString{Bytes: b, BitLength: n + 1}
}

// rawMessage is a PKIMessage with its parts' DER kept as received: the
// protection covers SEQUENCE { header, body } byte for byte.
type rawMessage struct {
	Header     asn1.RawValue
	Body       asn1.RawValue
	Protection asn1.BitString  `asn1:"optional,explicit,tag:0"`
	ExtraCerts []asn1.RawValue `asn1:"optional,explicit,tag:1"`
}

// pkiHeader is PKIHeader (explicit tags).
type pkiHeader struct {
	PVNO          int
	Sender        asn1.RawValue            // GeneralName
	Recipient     asn1.RawValue            // GeneralName
	MessageTime   time.Time                `asn1:"optional,explicit,tag:0,generalized"`
	ProtectionAlg pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
	SenderKID     []byte                   `asn1:"optional,explicit,tag:2"`
	RecipKID      []byte                   `asn1:"optional,explicit,tag:3"`
	TransactionID []byte                   `asn1:"optional,explicit,tag:4"`
	SenderNonce   []byte                   `asn1:"optional,explicit,tag:5"`
	RecipNonce    []byte                   `asn1:"optional,explicit,tag:6"`
	FreeText      []asn1.RawValue          `asn1:"optional,explicit,tag:7"`
	GeneralInfo   []infoTypeAndValue       `asn1:"optional,explicit,tag:8"`
}

// infoTypeAndValue is InfoTypeAndValue; Value is absent when empty.
type infoTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"optional"`
}

// protectedPart is what the protection covers.
type protectedPart struct {
	Header asn1.RawValue
	Body   asn1.RawValue
}

// certReqMsg is CertReqMsg (CRMF, implicit tags).
type certReqMsg struct {
	CertReq asn1.RawValue
	POPO    asn1.RawValue   `asn1:"optional"`
	RegInfo []asn1.RawValue `asn1:"optional"`
}

// certRequest is CertRequest.
type certRequest struct {
	CertReqID *big.Int
	Template  asn1.RawValue
	Controls  []attributeTypeAndValue `asn1:"optional"`
}

type attributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// certTemplate is CertTemplate (implicit tags; issuer and subject are
// CHOICEs, so their tags are explicit).
type certTemplate struct {
	Version      asn1.RawValue `asn1:"optional,tag:0"`
	SerialNumber asn1.RawValue `asn1:"optional,tag:1"`
	SigningAlg   asn1.RawValue `asn1:"optional,tag:2"`
	Issuer       asn1.RawValue `asn1:"optional,tag:3"`
	Validity     asn1.RawValue `asn1:"optional,tag:4"`
	Subject      asn1.RawValue `asn1:"optional,tag:5"`
	PublicKey    asn1.RawValue `asn1:"optional,tag:6"`
	IssuerUID    asn1.RawValue `asn1:"optional,tag:7"`
	SubjectUID   asn1.RawValue `asn1:"optional,tag:8"`
	Extensions   asn1.RawValue `asn1:"optional,tag:9"`
}

// popoSigningKey is POPOSigningKey.
type popoSigningKey struct {
	Input     asn1.RawValue `asn1:"optional,tag:0"`
	Algorithm pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

// certID is CertId (CRMF): the certificate a control or a revocation names.
type certID struct {
	Issuer       asn1.RawValue // GeneralName
	SerialNumber *big.Int
}

// revDetails is RevDetails.
type revDetails struct {
	CertDetails     asn1.RawValue
	CRLEntryDetails []pkix.Extension `asn1:"optional"`
}

// certStatus is CertStatus (certConf).
type certStatus struct {
	CertHash   []byte
	CertReqID  *big.Int
	StatusInfo pkiStatusInfo            `asn1:"optional"`
	HashAlg    pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
}

// pkiStatusInfo is PKIStatusInfo.
type pkiStatusInfo struct {
	Status       int
	StatusString []asn1.RawValue `asn1:"optional"`
	FailInfo     asn1.BitString  `asn1:"optional"`
}

// certRepMessage is CertRepMessage.
type certRepMessage struct {
	CAPubs   []asn1.RawValue `asn1:"optional,explicit,tag:1"`
	Response []certResponse
}

// certResponse is CertResponse.
type certResponse struct {
	CertReqID        int
	Status           pkiStatusInfo
	CertifiedKeyPair asn1.RawValue `asn1:"optional"`
}

// revRepContent is RevRepContent.
type revRepContent struct {
	Status []pkiStatusInfo
}

// errorMsgContent is ErrorMsgContent.
type errorMsgContent struct {
	Status       pkiStatusInfo
	ErrorCode    int             `asn1:"optional"`
	ErrorDetails []asn1.RawValue `asn1:"optional"`
}

// pbmParameter is PBMParameter (RFC 4210 §5.1.3.1).
type pbmParameter struct {
	Salt           []byte
	OWF            pkix.AlgorithmIdentifier
	IterationCount int
	MAC            pkix.AlgorithmIdentifier
}

// pbmac1Params is PBMAC1-params (RFC 8018 appendix A.5).
type pbmac1Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	MessageAuthScheme pkix.AlgorithmIdentifier
}

// pbkdf2Params is PBKDF2-params with the salt as an OCTET STRING.
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// rootCAKeyUpdateContent is RootCaKeyUpdateContent (RFC 9480).
type rootCAKeyUpdateContent struct {
	NewWithNew asn1.RawValue
	NewWithOld asn1.RawValue `asn1:"optional,explicit,tag:0"`
	OldWithNew asn1.RawValue `asn1:"optional,explicit,tag:1"`
}

// freeText encodes PKIFreeText: UTF8Strings.
func freeText(lines ...string) []asn1.RawValue {
	out := make([]asn1.RawValue, 0, len(lines))
	for _, l := range lines {
		out = append(out, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(l)})
	}
	return out
}
