package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"text/tabwriter"
	"time"

	pdfsignverify "github.com/digitorus/pdfsign/verify"

	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// pdfsignMode is one way of running github.com/digitorus/pdfsign's verify.
type pdfsignMode struct {
	name string
	opts func() *pdfsignverify.VerifyOptions
}

// pdfsignModes are its defaults (trust only the system roots, so a
// private hierarchy's chain fails early) and with the certificates the
// document carries taken as roots (then it validates the whole chain: the
// most work it can be asked to do). Neither checks revocation against the
// embedded OCSP responses' signers as Thiqa does, nor analyses changes
// after signing.
func pdfsignModes() []pdfsignMode {
	return []pdfsignMode{
		{"pdfsign verify (defaults)", pdfsignverify.DefaultVerifyOptions},
		{"pdfsign verify (embedded roots)", func() *pdfsignverify.VerifyOptions {
			o := pdfsignverify.DefaultVerifyOptions()
			o.AllowUntrustedRoots = true
			return o
		}},
	}
}

// errPdfsignRefused is a document pdfsign did not find a valid signature in.
var errPdfsignRefused = errors.New("pdfsign found no valid signature")

// pdfsignOp is one validation of doc by pdfsign's verify.
func pdfsignOp(doc []byte, opts *pdfsignverify.VerifyOptions) func(context.Context) error {
	return func(context.Context) error {
		r, err := pdfsignverify.VerifyWithOptions(bytes.NewReader(doc), int64(len(doc)), opts)
		if err != nil {
			return fmt.Errorf("pdfsign verify: %w", err)
		}
		if len(r.Signers) == 0 || !r.Signers[0].ValidSignature {
			return errPdfsignRefused
		}
		return nil
	}
}

// pdfsignSummary describes what pdfsign concluded about doc.
func pdfsignSummary(doc []byte, opts *pdfsignverify.VerifyOptions) string {
	r, err := pdfsignverify.VerifyWithOptions(bytes.NewReader(doc), int64(len(doc)), opts)
	if err != nil {
		return "error: " + err.Error()
	}
	if len(r.Signers) == 0 {
		return "no signer"
	}
	s := r.Signers[0]
	return fmt.Sprintf("valid=%v trusted=%v timestamp=%s", s.ValidSignature, s.TrustedIssuer, s.TimestampStatus)
}

// compareVerifiers alternates rounds of Thiqa's verifier and of each
// pdfsign mode on the same bytes and prints the medians and the ratios.
func compareVerifiers(ctx context.Context, env *env, v *verify.Verifier, doc []byte, first *report.Report, conc int, d time.Duration, rounds int) error {
	type contender struct {
		name, result string
		op           func(context.Context) error
		rounds       []verifyRound
	}
	var differing atomic.Int64
	level := ""
	if len(first.Signatures) > 0 {
		level = first.Signatures[len(first.Signatures)-1].Level
	}
	cs := []*contender{{name: "thiqa (full checks)", result: fmt.Sprintf("%s %s", first.Indication, level), op: thiqaVerifyOp(v, doc, first, &differing)}}
	for _, m := range pdfsignModes() {
		o := m.opts()
		cs = append(cs, &contender{name: m.name, result: pdfsignSummary(doc, o), op: pdfsignOp(doc, o)})
	}
	fmt.Fprintf(env.stdout, "comparison    %d alternating rounds of %s per verifier, %d goroutines, GOMAXPROCS %d (medians)\n", rounds, d, conc, runtime.GOMAXPROCS(0))
	for range rounds {
		for _, c := range cs {
			r, err := measureVerify(ctx, conc, d, c.op)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			c.rounds = append(c.rounds, r)
		}
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "verifier\tvalidations/s\tp50\tp99\tCPU/validation\trounds (/s)\tresult")
	meds := make([]verifyRound, len(cs))
	for i, c := range cs {
		m := medianRound(c.rounds)
		meds[i] = m
		each := ""
		for j, r := range c.rounds {
			if j > 0 {
				each += ", "
			}
			each += fmt.Sprintf("%.0f", r.rate)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\n", c.name, m.rate, m.p50.Round(10*time.Microsecond), m.p99.Round(10*time.Microsecond),
			m.cpu.Round(10*time.Microsecond), each, c.result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := 1; i < len(cs); i++ {
		fmt.Fprintf(env.stdout, "ratio         thiqa / %s: %.2f (validations/s), %.2f (CPU per validation, pdfsign / thiqa)\n",
			cs[i].name, meds[0].rate/meds[i].rate, float64(meds[i].cpu)/float64(meds[0].cpu))
	}
	if n := differing.Load(); n > 0 {
		return fmt.Errorf("thiqa's verdict differed from the first one %d times", n)
	}
	return nil
}
