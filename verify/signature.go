package verify

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/verify/cms"
	"github.com/thiqa/thiqa/verify/path"
	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// sigState accumulates one signature's verdict: the first failure of the
// highest severity wins.
type sigState struct {
	sr *report.Signature
}

func (s sigState) fail(ind report.Indication, sub report.SubIndication, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	s.sr.Errors = append(s.sr.Errors, msg)
	if report.Worse(ind, s.sr.Indication) {
		s.sr.Indication, s.sr.SubIndication = ind, sub
	}
}

func (s sigState) warn(format string, a ...any) {
	s.sr.Warnings = append(s.sr.Warnings, fmt.Sprintf(format, a...))
}

func (v *Verifier) verifySignature(dc *docContext, s *pdf.SigField, docPOE time.Time) report.Signature {
	sr := report.Signature{Field: s.Name, Kind: "signature", SubFilter: s.SubFilter(), ByteRange: s.ByteRange,
		Indication: report.TotalPassed, Revision: -1}
	st := sigState{&sr}
	readSigDict(dc.f, s, &sr)
	if m, ok := s.Value["M"].(pdf.String); ok {
		if t, err := parsePDFDate(string(m.Bytes)); err == nil {
			sr.ClaimedSigningTime = &t
		}
	}
	cov := checkCoverage(dc.f, s)
	if !cov.ok {
		st.fail(report.TotalFailed, report.FormatFailure, "%s", cov.problem)
	} else {
		sr.Revision = cov.revision
		sr.CoversWholeDocument = cov.revision == len(dc.f.Sections)-1
	}
	switch sr.SubFilter {
	case "adbe.pkcs7.detached", "ETSI.CAdES.detached":
	case "adbe.pkcs7.sha1", "adbe.x509.rsa_sha1":
		st.fail(report.Indeterminate, report.CryptoConstraintsFailure, "SubFilter %s relies on SHA-1", sr.SubFilter)
		return sr
	default:
		st.fail(report.TotalFailed, report.FormatFailure, "unsupported SubFilter %q", sr.SubFilter)
		return sr
	}
	sd, err := cms.ParseWith(s.Contents.Bytes, dc.certs)
	if err != nil {
		// Nothing decodable: no signature to validate (reported on the document).
		st.fail(report.TotalFailed, report.FormatFailure, "%v", err)
		dc.undecodable = true
		return sr
	}
	if len(sd.Signers) != 1 {
		st.fail(report.TotalFailed, report.FormatFailure, "CMS has %d signers, a PDF signature needs exactly one", len(sd.Signers))
		return sr
	}
	if sd.HasContent {
		st.fail(report.TotalFailed, report.FormatFailure, "a detached PDF signature carries encapsulated content")
		return sr
	}
	si := &sd.Signers[0]
	sr.DigestAlgorithm = si.DigestAlg.Algorithm.String()
	sr.SignatureAlgorithm = si.SigAlg.Algorithm.String()
	if sr.ClaimedSigningTime == nil {
		if t, ok := si.SigningTime(); ok {
			sr.ClaimedSigningTime = &t
		}
	}
	certs := append(append([]*x509.Certificate{}, sd.Certificates...), dc.dssCert...)
	cert := si.FindSigner(certs)
	sr.Signer = v.describeSigner(cert)
	if !cov.ok {
		return sr
	}
	h := cms.Hash(si.DigestAlg.Algorithm)
	if h == 0 || !h.Available() {
		st.fail(report.Indeterminate, report.CryptoConstraintsFailure, "unknown digest algorithm %s", si.DigestAlg.Algorithm)
		return sr
	}
	digest, err := hashRanges(dc.r, s.ByteRange, h, dc.bufs, &dc.prefixes)
	if err != nil {
		st.fail(report.TotalFailed, report.FormatFailure, "%v", err)
		return sr
	}
	if cert == nil {
		st.fail(report.Indeterminate, report.NoSigningCertificateFound, "the signer's certificate is not in the signature or the DSS")
		return sr
	}
	if err := sd.VerifySigner(si, cert, digest, v.opts.Algorithms); err != nil {
		if errors.Is(err, path.ErrCrypto) {
			// Tell an intact signature under weak algorithms from a broken one.
			if err2 := sd.VerifySigner(si, cert, digest, legacyAlgorithms()); err2 != nil && !errors.Is(err2, path.ErrCrypto) {
				err = err2
			} else if err2 == nil {
				sr.SignatureIntact = true
			}
		}
		mapCMSError(st, err)
		return sr
	}
	sr.SignatureIntact = true
	// The sid is not signed: only a signing-certificate(-v2) attribute binds
	// the signature to one certificate (EN 319 102-1 §5.2.3, as EU DSS).
	_, v2 := cms.Attr(si.SignedAttrs, cms.OIDAttrSigningCertV2)
	_, v1 := cms.Attr(si.SignedAttrs, cms.OIDAttrSigningCert)
	if !v2 && !v1 {
		st.fail(report.Indeterminate, report.NoSigningCertificateFound,
			"no signing-certificate(-v2) signed attribute binds the signature to the signer's certificate")
	}
	checkSignerUsage(st, cert)
	// Signature timestamps: the imprint is the hash of the signature value.
	var poe time.Time
	dc.tsaCerts = nil
	for _, a := range si.UnsignedAttrs {
		if !a.Type.Equal(cms.OIDAttrTimeStampToken) {
			continue
		}
		for _, val := range a.Values {
			tr := v.verifyTimestamp(dc, val, cms.DigestOf(si.Signature), "signature", certs, docPOE)
			sr.Timestamps = append(sr.Timestamps, tr)
			if tr.Indication == report.TotalPassed && (poe.IsZero() || tr.Time.Before(poe)) {
				poe = tr.Time
			}
		}
	}
	if !poe.IsZero() {
		t := poe
		sr.ProvenSigningTime = &t
	}
	if !docPOE.IsZero() && (poe.IsZero() || docPOE.Before(poe)) {
		// A later document timestamp proves the signature existed then.
		poe = docPOE
	}
	// Path and revocation.
	// Only a proof of existence makes later revocation information tell the
	// status at signing: the claimed signing time is the signer's word
	// (EN 319 102-1 §5.5: without a POE the best-signature-time is the
	// validation time).
	rd := v.revocationFor(dc, sd, si)
	rd.sigTime = poe
	// B-LT: validation data for the whole chain in the DSS (PAdES) or, for
	// adbe.pkcs7.detached, also in the CMS (Adobe revocation archival) —
	// what the document carries, never what validation fetches online.
	ltData := &revocationData{ocsps: slices.Clone(rd.ocsps), crls: slices.Clone(rd.crls),
		unreadCRLIssuers: slices.Clone(rd.unreadCRLIssuers), memo: dc.memo, crlMemo: dc.crls}
	res, perr, at := v.validatePath(dc, cert, certs, rd, poe)
	for _, w := range rd.warnings {
		st.warn("%s", w)
	}
	if sr.SubFilter == "ETSI.CAdES.detached" {
		ltData = &revocationData{ocsps: dc.dssOCSP, memo: dc.memo, crlMemo: dc.crls}
		for _, der := range dc.dssCRL {
			ltData.addCRL(der)
		}
	}
	covered := ltData.covers(cert, certs, v.roots(cert, certs))
	for _, t := range dc.tsaCerts {
		covered = covered && ltData.covers(t.cert, t.pool, v.roots(t.cert, t.pool))
	}
	dc.lastUsedRevocation = covered
	if perr != nil {
		mapPathError(st, perr, sr.ClaimedSigningTime)
	} else {
		for i := len(res.Chain) - 1; i >= 0; i-- {
			sr.Chain = append(sr.Chain, res.Chain[i].Subject.String())
		}
		if !at.Equal(dc.at) {
			st.warn("certificate path validated at the proven signing time %s", at.Format(time.RFC3339))
		}
	}
	v.qualifySigner(sr.Signer, res, perr, bestSigningTime(poe, dc.at))
	v.checkModifications(dc, s, cov.revision, st)
	return sr
}

func checkSignerUsage(st sigState, cert *x509.Certificate) {
	if path.KeyUsageLacks(cert, x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) {
		st.fail(report.Indeterminate, report.ChainConstraintsFailure, "the signer's key usage allows neither digitalSignature nor nonRepudiation")
	}
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return
	}
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny || u == x509.ExtKeyUsageEmailProtection || u == x509.ExtKeyUsageCodeSigning {
			return
		}
	}
	for _, o := range cert.UnknownExtKeyUsage {
		switch o.String() {
		case "1.3.6.1.5.5.7.3.36", "1.2.840.113583.1.1.5", "1.3.6.1.4.1.311.10.3.12":
			return
		}
	}
	st.warn("the signer's extended key usage names no document-signing purpose")
}

func mapCMSError(st sigState, err error) {
	switch {
	case errors.Is(err, cms.ErrHashFailure):
		st.fail(report.TotalFailed, report.HashFailure, "the signed bytes were changed: %v", err)
	case errors.Is(err, cms.ErrSigCrypto):
		st.fail(report.TotalFailed, report.SigCryptoFailure, "%v", err)
	case errors.Is(err, path.ErrCrypto):
		st.fail(report.Indeterminate, report.CryptoConstraintsFailure, "%v", err)
	case errors.Is(err, cms.ErrNoSigningCert):
		st.fail(report.Indeterminate, report.NoSigningCertificateFound, "%v", err)
	default:
		st.fail(report.TotalFailed, report.FormatFailure, "%v", err)
	}
}

func mapPathError(st sigState, e *path.Error, claimed *time.Time) {
	switch e.Sub {
	case path.NoChainFound, path.SigCryptoFailure:
		st.fail(report.Indeterminate, report.NoCertificateChainFound, "%v", e)
	case path.ChainGeneralFailure:
		st.fail(report.Indeterminate, report.CertificateChainGeneral, "%v", e)
	case path.ChainConstraints, path.PolicyProcessingFailed:
		st.fail(report.Indeterminate, report.ChainConstraintsFailure, "%v", e)
	case path.CryptoConstraints:
		st.fail(report.Indeterminate, report.CryptoConstraintsFailure, "%v", e)
	case path.OutOfBoundsNoPOE:
		st.fail(report.Indeterminate, report.OutOfBoundsNoPOE, "%v", e)
	case path.NotYetValid:
		st.fail(report.Indeterminate, report.NotYetValid, "%v", e)
	case path.Revoked:
		if claimed != nil && !e.RevokedAt.After(*claimed) {
			st.fail(report.TotalFailed, report.Revoked, "%v", e)
		} else {
			st.fail(report.Indeterminate, report.RevokedNoPOE, "%v", e)
			if claimed != nil && !e.InvalidSince.IsZero() && !e.InvalidSince.After(*claimed) {
				st.warn("%s", invalidityWarning(e.Subject, e.InvalidSince, e.RevokedAt, "the claimed signing time "+claimed.UTC().Format(time.RFC3339)))
			}
		}
	case path.TryLater:
		st.fail(report.Indeterminate, report.TryLater, "%v", e)
	default:
		st.fail(report.Indeterminate, report.CertificateChainGeneral, "%v", e)
	}
}

// revocationFor gathers embedded revocation values for one signature.
func (v *Verifier) revocationFor(dc *docContext, sd *cms.SignedData, si *cms.SignerInfo) *revocationData {
	rd := &revocationData{memo: dc.memo, crlMemo: dc.crls, ctx: dc.ctx, fetcher: v.opts.Fetcher, online: v.opts.AllowOnline, public: v.opts.Public, log: v.log, policy: v.opts.Revocation,
		timeout: v.opts.FetchTimeout, pool: append(append([]*x509.Certificate{}, sd.Certificates...), dc.dssCert...)}
	crls, ocsps := si.RevocationValues()
	for _, der := range append(append(append([][]byte{}, sd.CRLs...), crls...), dc.dssCRL...) {
		rd.addCRL(der)
	}
	rd.ocsps = append(append(append(rd.ocsps, sd.OCSPs...), ocsps...), dc.dssOCSP...)
	return rd
}

// validatePath validates at the validation time and, when the certificate
// has since expired or been revoked (or its status cannot be told now) but
// a timestamp proves the signature existed earlier, at that
// proof-of-existence time (EN 319 102-1 §5.5.4: revoked after the
// best-signature-time is no reason to reject).
func (v *Verifier) validatePath(dc *docContext, cert *x509.Certificate, extra []*x509.Certificate, rd *revocationData, poe time.Time) (*path.Result, *path.Error, time.Time) {
	opts := path.Options{Roots: v.roots(cert, extra), At: dc.at, Revocation: rd, Algorithms: v.opts.Algorithms}
	if len(opts.Roots) == len(v.opts.TrustAnchors) {
		opts.Anchors = v.anchors // no listed anchors added: the index built once
	}
	res, err := path.New(opts).Validate(cert, extra...)
	if err == nil {
		return res, nil, dc.at
	}
	pe := asPathError(err)
	if !poe.IsZero() && poe.Before(dc.at) && (pe.Sub == path.OutOfBoundsNoPOE || pe.Sub == path.TryLater || pe.Sub == path.CryptoConstraints || pe.Sub == path.Revoked) {
		opts.At = poe
		rd.warnings = nil
		if res2, err2 := path.New(opts).Validate(cert, extra...); err2 == nil {
			return res2, nil, poe
		}
	}
	return nil, pe, dc.at
}

func asPathError(err error) *path.Error {
	var pe *path.Error
	if errors.As(err, &pe) {
		return pe
	}
	return &path.Error{Sub: path.ChainGeneralFailure, Index: -1, Msg: err.Error()}
}

// verifyTimestamp verifies a timestamp token (imprint, signature, TSA path).
func (v *Verifier) verifyTimestamp(dc *docContext, der []byte, digest func(crypto.Hash) ([]byte, error), kind string, extra []*x509.Certificate, poe time.Time) report.Timestamp {
	tr := report.Timestamp{Kind: kind, Indication: report.TotalPassed}
	failTS := func(ind report.Indication, sub report.SubIndication, msg string) {
		tr.Errors = append(tr.Errors, msg)
		if report.Worse(ind, tr.Indication) {
			tr.Indication, tr.SubIndication = ind, sub
		}
	}
	ts, err := cms.ParseTimestampWith(der, dc.certs)
	if err != nil {
		failTS(report.TotalFailed, report.FormatFailure, err.Error())
		return tr
	}
	tr.Time = ts.Info.GenTime.UTC()
	if ts.Cert != nil {
		tr.TSA = ts.Cert.Subject.String()
	}
	all := append(append(append([]*x509.Certificate{}, ts.Signed.Certificates...), extra...), dc.dssCert...)
	if err := ts.Verify(digest, all, v.opts.Algorithms); err != nil {
		switch {
		case errors.Is(err, cms.ErrImprint), errors.Is(err, cms.ErrHashFailure):
			failTS(report.TotalFailed, report.HashFailure, err.Error())
		case errors.Is(err, cms.ErrSigCrypto):
			failTS(report.TotalFailed, report.SigCryptoFailure, err.Error())
		case errors.Is(err, path.ErrCrypto):
			failTS(report.Indeterminate, report.CryptoConstraintsFailure, err.Error())
		case errors.Is(err, cms.ErrNoSigningCert):
			failTS(report.Indeterminate, report.NoSigningCertificateFound, err.Error())
		default:
			failTS(report.TotalFailed, report.FormatFailure, err.Error())
		}
		return tr
	}
	tr.TSA = ts.Cert.Subject.String()
	tr.Intact = true
	dc.tsaCerts = append(dc.tsaCerts, tsaCert{cert: ts.Cert, pool: all})
	rd := v.revocationFor(dc, ts.Signed, ts.Signer)
	rd.sigTime = tr.Time
	// The token's own time proves nothing about itself: only a later
	// (archive) timestamp is a proof of existence for it.
	res, perr, _ := v.validatePath(dc, ts.Cert, all, rd, poe)
	tr.Qualified, tr.Qualification = v.qualifyTimestamp(res, perr, tr.Time)
	if perr != nil {
		tmp := report.Signature{Indication: report.TotalPassed}
		mapPathError(sigState{&tmp}, perr, &tr.Time)
		failTS(tmp.Indication, tmp.SubIndication, "TSA certificate: "+perr.Error())
	}
	return tr
}

// legacyAlgorithms accepts what is cryptographically checkable but no
// longer acceptable, to tell intact signatures from broken ones.
func legacyAlgorithms() *path.AlgorithmPolicy {
	return &path.AlgorithmPolicy{MinRSABits: 512, MinECBits: 160, AllowSHA1: true, AllowDSA: true, AllowMD5: true}
}

// parsePDFDate parses D:YYYYMMDDHHmmSSOHH'mm'.
func parsePDFDate(s string) (time.Time, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "D:")
	if len(s) < 4 {
		return time.Time{}, errors.New("short date")
	}
	get := func(i, n, def int) int {
		if len(s) >= i+n {
			if v, err := strconv.Atoi(s[i : i+n]); err == nil {
				return v
			}
		}
		return def
	}
	y, mo, d, h, mi, se := get(0, 4, 0), get(4, 2, 1), get(6, 2, 1), get(8, 2, 0), get(10, 2, 0), get(12, 2, 0)
	loc := time.UTC
	if len(s) > 14 && (s[14] == '+' || s[14] == '-') {
		oh, om := get(15, 2, 0), get(18, 2, 0)
		off := oh*3600 + om*60
		if s[14] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	return time.Date(y, time.Month(mo), d, h, mi, se, 0, loc).UTC(), nil
}
