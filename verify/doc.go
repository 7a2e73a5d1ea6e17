package verify

import (
	"crypto"
	"time"

	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// verifyDocTimestamp validates a document timestamp: its imprint is the
// hash of the ByteRange bytes.
func (v *Verifier) verifyDocTimestamp(dc *docContext, s *pdf.SigField, poe time.Time) report.Signature {
	sr := report.Signature{Field: s.Name, Kind: "document-timestamp", SubFilter: s.SubFilter(), ByteRange: s.ByteRange,
		Indication: report.TotalPassed, Revision: -1}
	st := sigState{&sr}
	cov := checkCoverage(dc.f, s)
	if !cov.ok {
		st.fail(report.TotalFailed, report.FormatFailure, "%s", cov.problem)
		return sr
	}
	sr.Revision = cov.revision
	sr.CoversWholeDocument = cov.revision == len(dc.f.Sections)-1
	if sr.SubFilter != "ETSI.RFC3161" {
		st.fail(report.TotalFailed, report.FormatFailure, "document timestamp with SubFilter %q", sr.SubFilter)
		return sr
	}
	digest := func(h crypto.Hash) ([]byte, error) { return hashRanges(dc.r, s.ByteRange, h, dc.bufs, &dc.prefixes) }
	dc.tsaCerts = nil
	tr := v.verifyTimestamp(dc, s.Contents.Bytes, digest, "document", nil, poe)
	sr.Timestamps = []report.Timestamp{tr}
	sr.SignatureIntact = tr.Intact
	if tr.Indication != report.TotalPassed {
		sr.Indication, sr.SubIndication = tr.Indication, tr.SubIndication
		sr.Errors = append(sr.Errors, tr.Errors...)
	}
	// Only a valid token proves its time, as for a signature's timestamps: a
	// token that did not verify, or an intact one whose TSA is not trusted
	// (anyone can make a TSA certificate) or whose certificate failed, gives
	// a genTime that is only what it says.
	if tr.Indication == report.TotalPassed && !tr.Time.IsZero() {
		t := tr.Time
		sr.ProvenSigningTime = &t
	}
	if len(dc.tsaCerts) > 0 {
		sr.Signer = v.describeSigner(dc.tsaCerts[0].cert)
	} else if tr.TSA != "" {
		sr.Signer = &report.Signer{Name: tr.TSA}
	}
	if sr.Signer != nil && tr.Qualification != nil {
		sr.Signer.Qualified, sr.Signer.QSCD, sr.Signer.Qualification = tr.Qualified, false, tr.Qualification
	}
	v.checkModifications(dc, s, cov.revision, st)
	return sr
}

// applyLevels computes the PAdES level each signature reaches: B-B (valid
// CMS), B-T (a valid signature timestamp or a later valid document
// timestamp), B-LT (revocation values for every certificate of the signer's
// and the TSAs' paths below the trust anchor, and for the delegated OCSP
// responders without id-pkix-ocsp-nocheck that answered for them, in a DSS
// added after it or, for adbe.pkcs7.detached, embedded), B-LTA (a valid
// document timestamp after the DSS).
func (v *Verifier) applyLevels(dc *docContext, rep *report.Report) {
	for i := range rep.Signatures {
		s := &rep.Signatures[i]
		// The level is structural: it needs an intact signature, not a trusted one.
		if s.Kind != "signature" || s.Revision < 0 || s.Indication == report.TotalFailed || !s.SignatureIntact {
			continue
		}
		prefix := "B-"
		if s.SubFilter == "adbe.pkcs7.detached" {
			prefix = "PKCS7-"
		}
		level := "B"
		tRev := -1 // revision holding the evidence of the T level
		for _, t := range s.Timestamps {
			if t.Intact {
				tRev = s.Revision
			}
		}
		var laterDocTS []int
		for j, o := range rep.Signatures {
			if o.Kind == "document-timestamp" && o.SignatureIntact && o.Revision > s.Revision {
				laterDocTS = append(laterDocTS, j)
			}
		}
		for _, j := range laterDocTS {
			o := rep.Signatures[j]
			s.Timestamps = append(s.Timestamps, report.Timestamp{Kind: "document", Time: o.Timestamps[0].Time,
				TSA: o.Timestamps[0].TSA, Indication: o.Indication, SubIndication: o.SubIndication, Intact: true})
			if tRev < 0 || o.Revision < tRev {
				tRev = o.Revision
			}
		}
		if tRev >= 0 {
			level = "T"
			// B-LT: validation data for the chain added after the T evidence.
			if i < len(dc.usedRevocation) && dc.usedRevocation[i] && (dc.dssRev > tRev || (tRev == s.Revision && dc.dssRev >= tRev && s.SubFilter != "ETSI.CAdES.detached")) {
				level = "LT"
				for _, j := range laterDocTS {
					if rep.Signatures[j].Revision >= dc.dssRev {
						level = "LTA"
					}
				}
			}
		}
		s.Level = prefix + level
	}
}
