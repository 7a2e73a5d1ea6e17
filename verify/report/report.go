// Package report holds the validation report of a signed PDF, shaped after
// ETSI EN 319 102-1: an indication (TOTAL-PASSED, TOTAL-FAILED,
// INDETERMINATE) with a sub-indication per signature and overall, the level
// achieved, the signer's identity and the reasons, as stable JSON.
package report

import "time"

// Indication is the main status of a validation (EN 319 102-1 §5.1.3).
type Indication string

// Indications.
const (
	TotalPassed   Indication = "TOTAL-PASSED"
	TotalFailed   Indication = "TOTAL-FAILED"
	Indeterminate Indication = "INDETERMINATE"
)

// SubIndication explains a non-passing indication (EN 319 102-1 §5.1.3,
// plus NO_SIGNATURE_FOUND for a document without signatures).
type SubIndication string

// Sub-indications used by the verifier.
const (
	None                      SubIndication = ""
	FormatFailure             SubIndication = "FORMAT_FAILURE"
	HashFailure               SubIndication = "HASH_FAILURE"
	SigCryptoFailure          SubIndication = "SIG_CRYPTO_FAILURE"
	Revoked                   SubIndication = "REVOKED"
	RevokedNoPOE              SubIndication = "REVOKED_NO_POE"
	NoCertificateChainFound   SubIndication = "NO_CERTIFICATE_CHAIN_FOUND"
	ChainConstraintsFailure   SubIndication = "CHAIN_CONSTRAINTS_FAILURE"
	CertificateChainGeneral   SubIndication = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
	OutOfBoundsNoPOE          SubIndication = "OUT_OF_BOUNDS_NO_POE"
	OutOfBoundsNotRevoked     SubIndication = "OUT_OF_BOUNDS_NOT_REVOKED"
	NotYetValid               SubIndication = "NOT_YET_VALID"
	CryptoConstraintsFailure  SubIndication = "CRYPTO_CONSTRAINTS_FAILURE"
	TryLater                  SubIndication = "TRY_LATER"
	RevocationOutOfBoundsNoPO SubIndication = "REVOCATION_OUT_OF_BOUNDS_NO_POE"
	NoSigningCertificateFound SubIndication = "NO_SIGNING_CERTIFICATE_FOUND"
	SignedDataNotFound        SubIndication = "SIGNED_DATA_NOT_FOUND"
	NoSignatureFound          SubIndication = "NO_SIGNATURE_FOUND"
	TimestampOrderFailure     SubIndication = "TIMESTAMP_ORDER_FAILURE"
)

// Report is the validation report of one document.
type Report struct {
	// Indication and SubIndication are the overall verdict: the worst of
	// the signatures' (TOTAL-FAILED > INDETERMINATE > TOTAL-PASSED).
	Indication    Indication    `json:"indication"`
	SubIndication SubIndication `json:"subIndication,omitempty"`
	// ValidationTime is the time the validation refers to.
	ValidationTime time.Time `json:"validationTime"`
	// DocumentSize and Revisions describe the file.
	DocumentSize int64 `json:"documentSize"`
	Revisions    int   `json:"revisions"`
	// Signatures lists signatures and document timestamps in file order.
	Signatures []Signature `json:"signatures"`
	// Errors and Warnings concern the document as a whole.
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Signature is the validation of one signature or document timestamp.
type Signature struct {
	// Field is the fully qualified name of the signature field.
	Field string `json:"field"`
	// Kind is "signature" or "document-timestamp".
	Kind string `json:"kind"`
	// SubFilter is the /SubFilter (adbe.pkcs7.detached, ETSI.CAdES.detached, ETSI.RFC3161).
	SubFilter string `json:"subFilter"`
	// Format is "JAdES" for a JSON signature (TS 119 182-1); empty for a
	// PDF's.
	Format string `json:"format,omitempty"`
	// Level achieved: "B-B", "B-T", "B-LT", "B-LTA" for PAdES; "PKCS7-B",
	// "PKCS7-T", "PKCS7-LT", "PKCS7-LTA" for adbe.pkcs7.detached; "" when
	// the signature is not valid at its basic level.
	Level         string        `json:"level,omitempty"`
	Indication    Indication    `json:"indication"`
	SubIndication SubIndication `json:"subIndication,omitempty"`
	// SignatureIntact is true when the message digest and the signature
	// value verify (possibly under algorithms that are no longer accepted:
	// then the indication is INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE).
	SignatureIntact bool `json:"signatureIntact"`
	// Signer identifies the signing (or TSA) certificate.
	Signer *Signer `json:"signer,omitempty"`
	// ClaimedSigningTime is /M or the signing-time attribute.
	ClaimedSigningTime *time.Time `json:"claimedSigningTime,omitempty"`
	// ProvenSigningTime is the earliest TOTAL-PASSED signature timestamp
	// (or the document timestamp's own time when it is TOTAL-PASSED); nil
	// when no timestamp is valid.
	ProvenSigningTime *time.Time `json:"provenSigningTime,omitempty"`
	// Timestamps are the signature timestamps and the document timestamps
	// that cover this signature.
	Timestamps []Timestamp `json:"timestamps,omitempty"`
	// Revision is the index of the revision signed (0 = original).
	Revision int `json:"revision"`
	// CoversWholeDocument is true when no later revision exists.
	CoversWholeDocument bool `json:"coversWholeDocument"`
	// ByteRange as found.
	ByteRange []int64 `json:"byteRange,omitempty"`
	// DigestAlgorithm and SignatureAlgorithm as named in the CMS.
	DigestAlgorithm    string `json:"digestAlgorithm,omitempty"`
	SignatureAlgorithm string `json:"signatureAlgorithm,omitempty"`
	// Chain lists the certificate path subjects, end entity first.
	Chain []string `json:"chain,omitempty"`
	// Reason, Location and ContactInfo are the signature dictionary's
	// /Reason, /Location and /ContactInfo as the signer wrote them: claims,
	// not verified facts.
	Reason      string `json:"reason,omitempty"`
	Location    string `json:"location,omitempty"`
	ContactInfo string `json:"contactInfo,omitempty"`
	// CertificationPermission is the DocMDP permission (1 no changes, 2
	// form filling and signing, 3 also annotations) of a certification
	// signature; 0 for an approval signature.
	CertificationPermission int `json:"certificationPermission,omitempty"`
	// Modifications lists changes made after this signature.
	Modifications []string `json:"modifications,omitempty"`
	Errors        []string `json:"errors,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`
}

// Signer describes the signer's certificate.
type Signer struct {
	Name                   string `json:"name"`
	CommonName             string `json:"commonName,omitempty"`
	CivilNumber            string `json:"civilNumber,omitempty"`
	SerialNumberAttribute  string `json:"serialNumberAttribute,omitempty"`
	OrganizationIdentifier string `json:"organizationIdentifier,omitempty"`
	Organization           string `json:"organization,omitempty"`
	Country                string `json:"country,omitempty"`
	// Issuer, CertificateSerial (hexadecimal), NotBefore and NotAfter are
	// the certificate's; absent when no verified certificate is known (a
	// document timestamp whose token did not verify: only the TSA's Name
	// is then reported), never empty or the zero time.
	Issuer            string    `json:"issuer,omitempty"`
	CertificateSerial string    `json:"certificateSerial,omitempty"`
	NotBefore         time.Time `json:"notBefore,omitzero"`
	NotAfter          time.Time `json:"notAfter,omitzero"`
	// Qualified is true only when a trusted list confirms, under ETSI TS
	// 119 615, that the certificate is a qualified certificate for
	// e-signatures or e-seals at the signing time (for a document
	// timestamp: a qualified time-stamp service). Never from the
	// certificate alone: without a trusted list it is false and
	// Qualification.Status is "unknown". QSCD likewise (key in a QSCD);
	// QCTypes: "esign", "eseal", "web" (from the trusted list when it says,
	// else the certificate's QcType).
	Qualified bool     `json:"qualified"`
	QSCD      bool     `json:"qscd"`
	QCTypes   []string `json:"qcTypes,omitempty"`
	// LegalPerson is true for a legal-person (seal) certificate.
	LegalPerson bool `json:"legalPerson,omitempty"`
	// Qualification says how Qualified, QSCD and QCTypes were determined.
	Qualification *Qualification `json:"qualification,omitempty"`
}

// Qualification statuses.
const (
	QualificationQualified    = "qualified"
	QualificationNotQualified = "not-qualified"
	QualificationUnknown      = "unknown"
)

// Sources of a qualification attribute.
const (
	FromTrustedList = "trusted-list"
	FromCertificate = "certificate"
)

// Qualification is the outcome of the ETSI TS 119 615 procedure for one
// certificate: its status, why, and where each attribute came from.
type Qualification struct {
	// Status is "qualified", "not-qualified" or "unknown" (no trusted
	// list configured, or the certificate path did not validate).
	Status string `json:"status"`
	// Reason explains a status other than "qualified".
	Reason string `json:"reason,omitempty"`
	// QualifiedFrom, QSCDFrom and TypeFrom name the source of Qualified,
	// QSCD and QCTypes: "trusted-list" (a service qualifier overrode the
	// certificate) or "certificate" (the certificate's QC statements, as
	// the listed service vouches for them).
	QualifiedFrom string `json:"qualifiedFrom,omitempty"`
	QSCDFrom      string `json:"qscdFrom,omitempty"`
	TypeFrom      string `json:"typeFrom,omitempty"`
	// Certificate is what the certificate itself claims.
	Certificate *CertificateClaims `json:"certificate,omitempty"`
	// TrustedList is the trusted-list service that was matched.
	TrustedList *TrustedListService `json:"trustedList,omitempty"`
	Warnings    []string            `json:"warnings,omitempty"`
}

// CertificateClaims are a certificate's own QC statements (EN 319 412-5).
type CertificateClaims struct {
	QcCompliance bool     `json:"qcCompliance"`
	QcSSCD       bool     `json:"qcSSCD"`
	QcTypes      []string `json:"qcTypes,omitempty"`
}

// TrustedListService identifies the service of a trusted list that a
// qualification rests on, with the status applied.
type TrustedListService struct {
	// Location is the list's file or URL.
	Location       string    `json:"location,omitempty"`
	Territory      string    `json:"territory"`
	SequenceNumber int       `json:"sequenceNumber"`
	Provider       string    `json:"provider"`
	Service        string    `json:"service"`
	ServiceType    string    `json:"serviceType"`
	Status         string    `json:"status"`
	StatusStarting time.Time `json:"statusStarting"`
	// Qualifiers are the service qualifiers that applied to the certificate.
	Qualifiers []string `json:"qualifiers,omitempty"`
	// AdditionalServiceInformation are the service's ASi URIs
	// (ForeSignatures, ForeSeals, ForWebSiteAuthentication…).
	AdditionalServiceInformation []string `json:"additionalServiceInformation,omitempty"`
}

// Timestamp is one timestamp's validation.
type Timestamp struct {
	// Kind is "signature", "document" or "archive".
	Kind string `json:"kind"`
	// Time is the token's genTime; absent when the token could not be read.
	Time          time.Time     `json:"time,omitzero"`
	TSA           string        `json:"tsa,omitempty"`
	Indication    Indication    `json:"indication"`
	SubIndication SubIndication `json:"subIndication,omitempty"`
	// Intact is true when the imprint and the token's signature verify.
	Intact bool     `json:"intact"`
	Errors []string `json:"errors,omitempty"`
	// Qualified is true when a trusted list names the TSA as a qualified
	// time-stamp service (TSA/QTST) granted at the token's time;
	// Qualification says why or why not.
	Qualified     bool           `json:"qualified,omitempty"`
	Qualification *Qualification `json:"qualification,omitempty"`
}

func severity(i Indication) int {
	switch i {
	case TotalFailed:
		return 2
	case Indeterminate:
		return 1
	}
	return 0
}

// Worse reports whether a is a worse indication than b.
func Worse(a, b Indication) bool { return severity(a) > severity(b) }

// Finish computes the overall verdict from the signatures.
func (r *Report) Finish() {
	if len(r.Signatures) == 0 {
		r.Indication, r.SubIndication = Indeterminate, NoSignatureFound
		return
	}
	r.Indication, r.SubIndication = TotalPassed, None
	for _, s := range r.Signatures {
		if Worse(s.Indication, r.Indication) {
			r.Indication, r.SubIndication = s.Indication, s.SubIndication
		}
	}
}
