package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// ExitCode maps the overall indication to the CLI exit code: 0
// TOTAL-PASSED, 1 TOTAL-FAILED, 2 INDETERMINATE.
func (r *Report) ExitCode() int {
	switch r.Indication {
	case TotalPassed:
		return 0
	case TotalFailed:
		return 1
	}
	return 2
}

// Write writes the report as `thiqa verify` prints it: the JSON report
// (indented, docs/verify-report.md) when asJSON is set, else WriteText's
// summary.
func (r *Report) Write(w io.Writer, asJSON bool) error {
	if !asJSON {
		return r.WriteText(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a human-readable summary of the report.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	verdict := string(r.Indication)
	if r.SubIndication != None {
		verdict += " / " + string(r.SubIndication)
	}
	fmt.Fprintf(&b, "Verdict: %s\n", verdict)
	fmt.Fprintf(&b, "Validated at %s; %d bytes, %d revision(s), %d signature(s)\n",
		r.ValidationTime.UTC().Format(time.RFC3339), r.DocumentSize, r.Revisions, len(r.Signatures))
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", wn)
	}
	for i, s := range r.Signatures {
		v := string(s.Indication)
		if s.SubIndication != None {
			v += " / " + string(s.SubIndication)
		}
		form := s.SubFilter
		if s.Format != "" {
			form = s.Format
		}
		fmt.Fprintf(&b, "\n[%d] %s %q (%s): %s\n", i+1, s.Kind, s.Field, form, v)
		if s.Level != "" {
			fmt.Fprintf(&b, "    level: %s\n", s.Level)
		}
		if sg := s.Signer; sg != nil {
			fmt.Fprintf(&b, "    signer: %s\n", sg.Name)
			if sg.CivilNumber != "" {
				fmt.Fprintf(&b, "    civil number: %s\n", sg.CivilNumber)
			}
			if sg.OrganizationIdentifier != "" {
				fmt.Fprintf(&b, "    organisation identifier: %s\n", sg.OrganizationIdentifier)
			}
			if sg.Issuer != "" {
				fmt.Fprintf(&b, "    issuer: %s\n", sg.Issuer)
			}
			writeQualification(&b, sg)
		}
		if s.ClaimedSigningTime != nil {
			fmt.Fprintf(&b, "    claimed signing time: %s\n", s.ClaimedSigningTime.UTC().Format(time.RFC3339))
		}
		if s.ProvenSigningTime != nil {
			fmt.Fprintf(&b, "    proven signing time: %s\n", s.ProvenSigningTime.UTC().Format(time.RFC3339))
		}
		for _, kv := range [][2]string{{"reason", s.Reason}, {"location", s.Location}, {"contact", s.ContactInfo}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, "    %s: %s\n", kv[0], kv[1])
			}
		}
		if s.CertificationPermission != 0 {
			fmt.Fprintf(&b, "    certification signature: DocMDP P=%d (%s)\n", s.CertificationPermission, certificationText(s.CertificationPermission))
		}
		fmt.Fprintf(&b, "    covers the whole document: %v\n", s.CoversWholeDocument)
		for _, m := range s.Modifications {
			fmt.Fprintf(&b, "    changed after signing: %s\n", m)
		}
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "    error: %s\n", e)
		}
		for _, wn := range s.Warnings {
			fmt.Fprintf(&b, "    warning: %s\n", wn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeQualification writes the qualified status and where it came from.
func writeQualification(b *strings.Builder, sg *Signer) {
	q := sg.Qualification
	if q == nil {
		if sg.Qualified || sg.QSCD || len(sg.QCTypes) > 0 {
			fmt.Fprintf(b, "    qualified: %v, QSCD: %v, type: %s\n", sg.Qualified, sg.QSCD, strings.Join(sg.QCTypes, ","))
		}
		return
	}
	switch q.Status {
	case QualificationQualified:
		fmt.Fprintf(b, "    qualified: yes (%s), QSCD: %v (%s), type: %s (%s)\n", q.QualifiedFrom, sg.QSCD, q.QSCDFrom, strings.Join(sg.QCTypes, ","), q.TypeFrom)
	default:
		fmt.Fprintf(b, "    qualified: %s (%s)\n", q.Status, q.Reason)
	}
	if tl := q.TrustedList; tl != nil {
		fmt.Fprintf(b, "    trusted list: %s #%d, %s, %q (%s since %s)\n", tl.Territory, tl.SequenceNumber, tl.Provider, tl.Service,
			shortURI(tl.Status), tl.StatusStarting.UTC().Format(time.RFC3339))
	}
	if c := q.Certificate; c != nil && (c.QcCompliance || c.QcSSCD || len(c.QcTypes) > 0) {
		fmt.Fprintf(b, "    the certificate claims: QcCompliance %v, QcSSCD %v, QcType %s\n", c.QcCompliance, c.QcSSCD, strings.Join(c.QcTypes, ","))
	}
	for _, w := range q.Warnings {
		fmt.Fprintf(b, "    qualification warning: %s\n", w)
	}
}

func shortURI(u string) string {
	if i := strings.LastIndexAny(u, "/#"); i >= 0 && i < len(u)-1 {
		return u[i+1:]
	}
	return u
}

// certificationText says what a DocMDP permission allows.
func certificationText(p int) string {
	switch p {
	case 1:
		return "no changes allowed"
	case 2:
		return "form filling and signing allowed"
	}
	return "form filling, signing and annotations allowed"
}
