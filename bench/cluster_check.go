package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/timestamp"
)

// checkAnswers checks what clients received: few failures, all at one
// moment (the kill), each kind served, no serial handed out twice.
func (l *clusterLoad) checkAnswers(s clusterSummary, maxFail int, window time.Duration) []string {
	var out []string
	if s.failed > maxFail {
		out = append(out, fmt.Sprintf("%d requests failed, more than the %d that can be in flight at one node", s.failed, maxFail))
	}
	if span := s.lastFail.Sub(s.firstFail); s.failed > 0 && span > window {
		out = append(out, fmt.Sprintf("the failures span %s, more than %s: requests failed beyond those in flight at the kill", span.Round(time.Millisecond), window))
	}
	for _, k := range []string{"tsa", "seal", "issue"} {
		if s.byKind[k] > 0 && s.byKind[k] == s.failBy[k] {
			out = append(out, fmt.Sprintf("no %s request succeeded", k))
		}
	}
	seen := map[string]bool{}
	for _, o := range l.ops {
		if o.err != "" || o.serial == "" {
			continue
		}
		key := o.kind + " " + o.serial
		if seen[key] {
			out = append(out, fmt.Sprintf("%s serial %s was handed out twice", o.kind, o.serial))
		}
		seen[key] = true
	}
	return out
}

// auditedAnswers is what the audit log says was handed out.
type auditedAnswers struct {
	records int64
	tsa     map[string]int  // token serial → records naming it
	certs   map[string]bool // certificate serials issued
	seals   map[string]int  // ByteRange digest of a seal → its records (one PDF sealed twice in a second gives one digest)
}

// readAudited walks the whole audit log once.
func readAudited(ctx context.Context, chain audit.ChainReader) (*auditedAnswers, error) {
	a := &auditedAnswers{tsa: map[string]int{}, certs: map[string]bool{}, seals: map[string]int{}}
	err := chain.AuditRecords(ctx, 1, func(r audit.Record) error {
		a.records++
		if r.Outcome != audit.OutcomeSuccess {
			return nil
		}
		switch r.Action {
		case timestamp.ActionIssue:
			var d struct {
				Items []struct {
					Serial string `json:"serial"`
				} `json:"items"`
			}
			if err := json.Unmarshal(r.Details, &d); err != nil {
				return fmt.Errorf("audit record %d: %w", r.Seq, err)
			}
			for _, it := range d.Items {
				a.tsa[it.Serial]++
			}
		case string(policies.ActionIssueCertificate):
			a.certs[strings.ToLower(r.Object)] = true
		case string(policies.ActionSeal):
			var d struct {
				DocumentDigest string `json:"documentDigest"`
			}
			if err := json.Unmarshal(r.Details, &d); err != nil {
				return fmt.Errorf("audit record %d: %w", r.Seq, err)
			}
			a.seals[d.DocumentDigest]++
		}
		return nil
	})
	return a, err
}

// checkStore checks the store against the answers: every answer a client
// received has its audit record (and its certificate row; for seals of
// the same digest, at least as many records as answers), and no token
// serial appears twice in the audit log.
func (l *clusterLoad) checkStore(ctx context.Context, st Store, w io.Writer) ([]string, error) {
	a, err := readAudited(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	var out []string
	for serial, n := range a.tsa {
		if n > 1 {
			out = append(out, fmt.Sprintf("time-stamp serial %s is in %d audit records", serial, n))
		}
	}
	var missing int
	sealAnswers := map[string]int{}
	for _, o := range l.ops {
		if o.err != "" {
			continue
		}
		ok := true
		switch o.kind {
		case "tsa":
			ok = a.tsa[o.serial] == 1
		case "issue":
			ok = a.certs[strings.ToLower(o.serial)]
			if ok {
				if serial, hex := new(big.Int).SetString(o.serial, 16); !hex {
					out = append(out, fmt.Sprintf("certificate %s was answered with a serial that is not hexadecimal", o.serial))
				} else if _, err := st.CertificateDER(ctx, serial); err != nil {
					out = append(out, fmt.Sprintf("certificate %s was answered but is not in the store: %v", o.serial, err))
				}
			}
		case "seal":
			sealAnswers[o.digest]++
			ok = sealAnswers[o.digest] <= a.seals[o.digest]
		}
		if !ok {
			missing++
			if missing <= 5 {
				out = append(out, fmt.Sprintf("the %s answer %s%s has no audit record", o.kind, o.serial, o.digest))
			}
		}
	}
	if missing > 5 {
		out = append(out, fmt.Sprintf("%d answers in all have no audit record", missing))
	}
	fmt.Fprintf(w, "audit log     %d records: %d time-stamp tokens, %d certificates, %d seals recorded\n", a.records, len(a.tsa), len(a.certs), sumCounts(a.seals))
	return out, nil
}

// sumCounts adds a map's counts.
func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
