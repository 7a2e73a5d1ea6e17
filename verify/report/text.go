package report

import (
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
		fmt.Fprintf(&b, "\n[%d] %s %q (%s): %s\n", i+1, s.Kind, s.Field, s.SubFilter, v)
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
			if sg.Qualified || sg.QSCD || len(sg.QCTypes) > 0 {
				fmt.Fprintf(&b, "    qualified: %v, QSCD: %v, type: %s\n", sg.Qualified, sg.QSCD, strings.Join(sg.QCTypes, ","))
			}
		}
		if s.ClaimedSigningTime != nil {
			fmt.Fprintf(&b, "    claimed signing time: %s\n", s.ClaimedSigningTime.UTC().Format(time.RFC3339))
		}
		if s.ProvenSigningTime != nil {
			fmt.Fprintf(&b, "    proven signing time: %s\n", s.ProvenSigningTime.UTC().Format(time.RFC3339))
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
