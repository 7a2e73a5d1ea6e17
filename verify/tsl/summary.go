package tsl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// Summary is what checking one trusted list found, as `thiqa tsl check`
// prints it (its --json form; the JSON keys are a contract).
type Summary struct {
	Location        string               `json:"location"`
	Indication      report.Indication    `json:"indication"`
	SubIndication   report.SubIndication `json:"subIndication,omitempty"`
	Territory       string               `json:"territory,omitempty"`
	Version         int                  `json:"tslVersion,omitempty"`
	SequenceNumber  int                  `json:"sequenceNumber,omitempty"`
	Type            string               `json:"tslType,omitempty"`
	Operator        string               `json:"schemeOperator,omitempty"`
	IssueDate       *time.Time           `json:"issueDate,omitempty"`
	NextUpdate      *time.Time           `json:"nextUpdate,omitempty"`
	Providers       int                  `json:"trustServiceProviders"`
	Services        int                  `json:"services"`
	Pointers        int                  `json:"pointersToOtherLists"`
	Signer          string               `json:"signer,omitempty"`
	SigningTime     *time.Time           `json:"signingTime,omitempty"`
	Errors          []string             `json:"errors,omitempty"`
	Warnings        []string             `json:"warnings,omitempty"`
	DistributionURI []string             `json:"distributionPoints,omitempty"`
}

// Summarize describes the result of checking the list read from loc.
func Summarize(loc string, res *Result) Summary {
	out := Summary{Location: loc, Indication: res.Indication, SubIndication: res.SubIndication, Errors: res.Errors, Warnings: res.Warnings}
	if l := res.List; l != nil {
		out.Territory, out.Version, out.SequenceNumber, out.Type, out.Operator = l.Territory, l.Version, l.SequenceNumber, l.Type, l.Operator
		out.IssueDate, out.Providers, out.Services, out.Pointers, out.DistributionURI = &l.IssueDate, len(l.Providers), l.ServiceCount(), len(l.Pointers), l.DistributionPoints
		if !l.NextUpdate.IsZero() {
			out.NextUpdate = &l.NextUpdate
		}
	}
	if res.Signer != nil {
		out.Signer = res.Signer.Subject.String()
	}
	if !res.SigningTime.IsZero() {
		out.SigningTime = &res.SigningTime
	}
	return out
}

// WriteJSON writes the summary as indented JSON (`thiqa tsl check --json`).
func (o Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}

// WriteText writes the summary for a reader: the indication, then one
// line per property the list has, then its errors and warnings.
func (o Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	v := string(o.Indication)
	if o.SubIndication != report.None {
		v += " / " + string(o.SubIndication)
	}
	fmt.Fprintf(&b, "Indication: %s\n", v)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-24s %s\n", k+":", v)
		}
	}
	day := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	line("Scheme territory", o.Territory)
	if o.Version > 0 {
		line("TSL version", strconv.Itoa(o.Version))
		line("Sequence number", strconv.Itoa(o.SequenceNumber))
	}
	line("TSL type", o.Type)
	line("Scheme operator", o.Operator)
	line("Issue date", day(o.IssueDate))
	line("Next update", day(o.NextUpdate))
	fmt.Fprintf(&b, "%-24s %d\n%-24s %d\n", "Trust service providers:", o.Providers, "Services:", o.Services)
	if o.Pointers > 0 {
		fmt.Fprintf(&b, "%-24s %d\n", "Pointers to other lists:", o.Pointers)
	}
	line("Signed by", o.Signer)
	line("Signing time", day(o.SigningTime))
	for _, e := range o.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	for _, wn := range o.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", wn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ReadList reads a list from a file or a URL, at most DefaultMaxBytes
// (and one byte more, for Check to refuse) and, for a URL, within timeout.
func ReadList(ctx context.Context, loc string, timeout time.Duration) ([]byte, error) {
	if IsURL(loc) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return HTTPFetcher{Client: &http.Client{Timeout: timeout}}.Fetch(ctx, loc, DefaultMaxBytes)
	}
	f, err := os.Open(loc)
	if err != nil {
		return nil, fmt.Errorf("reading the trusted list: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, DefaultMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the trusted list: %w", err)
	}
	return raw, nil
}
