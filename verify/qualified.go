package verify

import (
	"crypto/x509"
	"slices"
	"time"

	"github.com/thiqa/thiqa/verify/path"
	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

// TrustedLists is what verification needs from ETSI TS 119 612 trusted
// lists: trust anchors (the listed CA/QC services, and TSA/QTST services
// for timestamps) and the TS 119 615 qualification of a validated path.
// *tsl.Trust and *tsl.Live implement it.
type TrustedLists interface {
	AnchorsFor(u tsl.Usage, certs []*x509.Certificate) []*x509.Certificate
	Qualify(u tsl.Usage, chain []*x509.Certificate, at time.Time) tsl.Verdict
}

// noTrustedList is the reason a qualification stays unknown.
const noTrustedList = "no trusted list"

// usageOf tells a TSA certificate (time-stamping EKU) from a signer's.
func usageOf(c *x509.Certificate) tsl.Usage {
	if slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageTimeStamping) {
		return tsl.ForTimestamps
	}
	return tsl.ForSignatures
}

// roots returns the configured anchors plus the trusted-list anchors that
// may have issued cert or one of the extra certificates.
func (v *Verifier) roots(cert *x509.Certificate, extra []*x509.Certificate) []*x509.Certificate {
	if v.opts.TrustedLists == nil || cert == nil {
		return v.opts.TrustAnchors
	}
	listed := v.opts.TrustedLists.AnchorsFor(usageOf(cert), append([]*x509.Certificate{cert}, extra...))
	if len(listed) == 0 {
		return v.opts.TrustAnchors
	}
	return append(slices.Clip(v.opts.TrustAnchors), listed...)
}

// qualifySigner sets the signer's qualified status from the trusted lists
// at the best signing time (ETSI TS 119 615). Without trusted lists, or
// without a validated path, it stays "unknown" and Qualified stays false.
func (v *Verifier) qualifySigner(s *report.Signer, res *path.Result, perr *path.Error, best time.Time) {
	if s == nil || v.opts.TrustedLists == nil {
		return
	}
	if perr != nil || res == nil {
		s.Qualification.Reason = "the certificate path did not validate"
		return
	}
	verdict := v.opts.TrustedLists.Qualify(tsl.ForSignatures, res.Chain, best)
	s.Qualified, s.QSCD = verdict.Qualified, verdict.Qualified && verdict.QSCD
	s.QCTypes = verdict.Types
	s.Qualification = verdict.Detail
}

// qualifyTimestamp says whether a timestamp comes from a qualified
// time-stamp service at its own time; nil without trusted lists.
func (v *Verifier) qualifyTimestamp(res *path.Result, perr *path.Error, at time.Time) (bool, *report.Qualification) {
	if v.opts.TrustedLists == nil {
		return false, nil
	}
	if perr != nil || res == nil {
		return false, &report.Qualification{Status: report.QualificationUnknown, Reason: "the TSA certificate path did not validate"}
	}
	verdict := v.opts.TrustedLists.Qualify(tsl.ForTimestamps, res.Chain, at)
	return verdict.Qualified, verdict.Detail
}

// bestSigningTime is the earliest proof of existence, else the validation time.
func bestSigningTime(poe, at time.Time) time.Time {
	if poe.IsZero() {
		return at
	}
	return poe
}
