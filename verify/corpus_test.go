package verify

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/verify/report"
)

// corpusCase is the expectation for one corpus PDF, taken from the verdict
// column of corpus/MANIFEST.txt (not from this verifier's output).
type corpusCase struct {
	file   string
	anchor string    // trust anchor PEM in the corpus, if the manifest names one
	at     time.Time // validation time, if the manifest names one
	policy RevocationPolicy
	check  func(r *report.Report) error
}

func sigsOfKind(r *report.Report, kind string) []report.Signature {
	var out []report.Signature
	for _, s := range r.Signatures {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

func want(cond bool, format string, a ...any) error {
	if cond {
		return nil
	}
	return fmt.Errorf(format, a...)
}

// intact: the signature's own cryptography holds (it may be untrusted).
func intact(s report.Signature) bool {
	return s.SignatureIntact && s.Indication != report.TotalFailed
}

func levels(r *report.Report) string {
	var ls []string
	for _, s := range sigsOfKind(r, "signature") {
		ls = append(ls, s.Level)
	}
	sort.Strings(ls)
	return strings.Join(ls, ",")
}

func oneSig(level string, ok bool) func(r *report.Report) error {
	return func(r *report.Report) error {
		ss := sigsOfKind(r, "signature")
		if len(ss) != 1 {
			return fmt.Errorf("%d signatures, want 1", len(ss))
		}
		if ok && !intact(ss[0]) {
			return fmt.Errorf("signature not intact: %s/%s %v", ss[0].Indication, ss[0].SubIndication, ss[0].Errors)
		}
		if !ok && intact(ss[0]) {
			return fmt.Errorf("signature accepted as intact (%s)", ss[0].Indication)
		}
		if level != "" && ss[0].Level != level {
			return fmt.Errorf("level %q, want %q", ss[0].Level, level)
		}
		return nil
	}
}

func failedWith(sub report.SubIndication) func(r *report.Report) error {
	return func(r *report.Report) error {
		for _, s := range r.Signatures {
			if s.Indication == report.TotalFailed && (sub == "" || s.SubIndication == sub) {
				return nil
			}
		}
		return fmt.Errorf("no signature TOTAL-FAILED/%s (overall %s/%s)", sub, r.Indication, r.SubIndication)
	}
}

func corpusCases() []corpusCase {
	noSig := func(r *report.Report) error {
		return want(len(r.Signatures) == 0 && r.Indication == report.Indeterminate && r.SubIndication == report.NoSignatureFound,
			"want no signatures, got %d (%s/%s)", len(r.Signatures), r.Indication, r.SubIndication)
	}
	coverageAnomaly := func(r *report.Report) error {
		ss := sigsOfKind(r, "signature")
		if len(ss) != 1 || ss[0].Indication == report.TotalPassed {
			return fmt.Errorf("non-standard coverage accepted")
		}
		return want(strings.Contains(strings.Join(ss[0].Errors, ";"), "ByteRange"), "coverage problem not reported: %v", ss[0].Errors)
	}
	return []corpusCase{
		{file: "digitorus/testfile12.pdf", check: noSig},
		{file: "digitorus/testfile20.pdf", check: noSig},
		{file: "digitorus/testfile30.pdf", check: oneSig("", true)},
		{file: "dss/BadEncodedCMS.pdf", check: noSig},
		{file: "dss/PAdES-LT.pdf", check: func(r *report.Report) error {
			return want(levels(r) == "B-LT,B-LT,B-T", "levels %q, want B-LT,B-LT,B-T", levels(r))
		}},
		{file: "dss/Test.signed_Certipost-2048-SHA512.extended-LTA.pdf", anchor: "dss/Test.signed_Certipost-2048-SHA512.extended-LTA.trust-anchor.pem",
			policy: RevocationBestEffort, check: func(r *report.Report) error {
				if err := oneSig("B-LTA", true)(r); err != nil {
					return err
				}
				for _, s := range sigsOfKind(r, "document-timestamp") {
					if !intact(s) {
						return fmt.Errorf("archive timestamp not valid: %v", s.Errors)
					}
				}
				return want(len(sigsOfKind(r, "document-timestamp")) == 2, "want 2 archive timestamps")
			}},
		{file: "dss/doc-firmado-LT.pdf", check: oneSig("B-LT", true)},
		{file: "dss/doc-firmado.pdf", check: oneSig("B-T", true)},
		{file: "dss/hello_signed_INCSAVE_signed_EDITED.pdf", check: func(r *report.Report) error {
			ss := sigsOfKind(r, "signature")
			if len(ss) != 2 {
				return fmt.Errorf("%d signatures, want 2", len(ss))
			}
			// The second signature dictionary copies the first one's ByteRange.
			return want(intact(ss[0]) != intact(ss[1]) && (ss[0].Indication == report.TotalFailed || ss[1].Indication == report.TotalFailed),
				"want one valid and one invalid: %s %s", ss[0].Indication, ss[1].Indication)
		}},
		{file: "dss/pades-bes.pdf", check: oneSig("B-B", true)},
		{file: "dss/pades-lta-copied-doctst.pdf", check: func(r *report.Report) error {
			// B and T valid, A not: the level achieved stays below B-LTA.
			if err := oneSig("", true)(r); err != nil {
				return err
			}
			if l := sigsOfKind(r, "signature")[0].Level; l != "B-T" && l != "B-LT" {
				return fmt.Errorf("level %q, want B-T or B-LT", l)
			}
			return failedWith(report.HashFailure)(r)
		}},
		{file: "dss/pades-signed-annot-added.pdf", check: func(r *report.Report) error {
			if err := oneSig("B-B", true)(r); err != nil {
				return err
			}
			return want(len(sigsOfKind(r, "signature")[0].Modifications) > 0, "post-signing changes not reported")
		}},
		{file: "dss/pades-t-duplicated-sigtst.pdf", check: func(r *report.Report) error {
			if err := oneSig("B-T", true)(r); err != nil {
				return err
			}
			s := sigsOfKind(r, "signature")[0]
			return want(len(s.Timestamps) == 2 && s.Timestamps[0].Intact && s.Timestamps[1].Intact,
				"want 2 intact signature timestamps: %+v", s.Timestamps)
		}},
		{file: "dss/pades-t-level-extended.pdf", check: func(r *report.Report) error {
			if err := oneSig("B-T", true)(r); err != nil {
				return err
			}
			d := sigsOfKind(r, "document-timestamp")
			return want(len(d) == 1 && intact(d[0]), "want 1 intact document timestamp")
		}},
		{file: "dss/pades-unsupported-signature-algorithm.pdf", check: oneSig("", false)},
		{file: "dss/pdf-byterange-overlap.pdf", check: func(r *report.Report) error {
			ss := sigsOfKind(r, "signature")
			if len(ss) != 2 {
				return fmt.Errorf("%d signatures, want 2", len(ss))
			}
			ok, bad := 0, 0
			for _, s := range ss {
				if intact(s) {
					ok++
				} else if s.Indication == report.TotalFailed && s.SubIndication == report.FormatFailure {
					bad++
				}
			}
			return want(ok == 1 && bad == 1, "want one valid and one FORMAT_FAILURE")
		}},
		{file: "dss/pdf-signed-added-page.pdf", check: failedWith(report.FormatFailure)},
		{file: "dss/pdf-signed-corrupted.pdf", check: oneSig("", false)},
		{file: "dss/pdf-signed-original.pdf", check: oneSig("B-B", true)},
		{file: "dss/pdf-signed-out-of-byteRange.pdf", check: oneSig("", false)},
		{file: "dss/pdf-spoofing-attack.pdf", check: failedWith("")},
		{file: "dss/pkcs7.pdf", check: func(r *report.Report) error {
			ss := sigsOfKind(r, "signature")
			return want(len(ss) == 1 && ss[0].Indication == report.Indeterminate && ss[0].SubIndication == report.NoSigningCertificateFound,
				"want INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND, got %s/%s", ss[0].Indication, ss[0].SubIndication)
		}},
		{file: "dss/self-issued-qesig.pdf", check: func(r *report.Report) error {
			ss := sigsOfKind(r, "signature")
			return want(len(ss) == 1 && ss[0].Indication == report.Indeterminate && ss[0].SubIndication == report.CertificateChainGeneral,
				"want INDETERMINATE/CERTIFICATE_CHAIN_GENERAL_FAILURE, got %s/%s", ss[0].Indication, ss[0].SubIndication)
		}},
		{file: "dss/timestamped-fields.pdf", check: func(r *report.Report) error {
			if len(sigsOfKind(r, "signature")) != 0 || len(r.Signatures) == 0 {
				return fmt.Errorf("want only document timestamps")
			}
			for _, s := range r.Signatures {
				if !intact(s) {
					return fmt.Errorf("document timestamp %s not intact: %v", s.Field, s.Errors)
				}
			}
			return nil
		}},
		{file: "dss/timestamped_and_signed.pdf", check: func(r *report.Report) error {
			if err := oneSig("B-B", true)(r); err != nil {
				return err
			}
			return want(len(sigsOfKind(r, "document-timestamp")) == 1, "want 1 document timestamp")
		}},
		{file: "pyhanko/coverage-anomalies/one-byterange.pdf", check: coverageAnomaly},
		{file: "pyhanko/coverage-anomalies/signature-gap-too-big.pdf", check: coverageAnomaly},
		{file: "pyhanko/coverage-anomalies/tail-uncovered.pdf", check: coverageAnomaly},
		{file: "pyhanko/coverage-anomalies/weird-byterange.pdf", check: coverageAnomaly},
		{file: "pyhanko/ed448-disallowed-hash.pdf", check: func(r *report.Report) error {
			ss := sigsOfKind(r, "signature")
			return want(len(ss) == 1 && ss[0].Indication == report.Indeterminate && ss[0].SubIndication == report.CryptoConstraintsFailure,
				"want INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE")
		}},
		{file: "pyhanko/pades-lta-dss-indirect-arrs-test.pdf", anchor: "pyhanko/pades-lta-dss-indirect-arrs-test.embedded-root.pem",
			at: time.Date(2020, 11, 1, 0, 0, 0, 0, time.UTC), policy: RevocationIgnored, check: func(r *report.Report) error {
				return want(r.Indication == report.TotalPassed, "want TOTAL-PASSED, got %s/%s", r.Indication, r.SubIndication)
			}},
		{file: "pyhanko/pdf-sig-with-econtent.pdf", check: failedWith(report.FormatFailure)},
		{file: "pyhanko/sig-no-signed-attrs.pdf", check: oneSig("", true)},
		{file: "pyhanko/sig-with-ski-sid.pdf", check: oneSig("", true)},
	}
}

// corpusFloor is the agreement reached; the test fails below it.
const corpusFloor = 34

func TestCorpus(t *testing.T) {
	root := testenv.SharedCorpus(t)
	agree := 0
	cases := corpusCases()
	var disagreements []string
	for _, c := range cases {
		opts := Options{At: c.at, Revocation: c.policy}
		if c.anchor != "" {
			pemBytes, err := os.ReadFile(filepath.Join(root, c.anchor))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := pem.Decode(pemBytes)
			if b == nil {
				t.Fatalf("%s: no PEM", c.anchor)
			}
			ac, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			opts.TrustAnchors = []*x509.Certificate{ac}
		}
		fh, err := os.Open(filepath.Join(root, c.file))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		rep, err := New(opts).VerifyPDF(context.Background(), fh, st.Size())
		fh.Close()
		if err != nil {
			disagreements = append(disagreements, fmt.Sprintf("%s: could not run: %v", c.file, err))
			continue
		}
		if err := c.check(rep); err != nil {
			disagreements = append(disagreements, fmt.Sprintf("%s: %v\n      got %s", c.file, err, summary(rep)))
			continue
		}
		agree++
		if testing.Verbose() {
			t.Logf("ok %s: %s", c.file, summary(rep))
		}
	}
	for _, d := range disagreements {
		t.Logf("disagree %s", d)
	}
	t.Logf("corpus: %d/%d agree", agree, len(cases))
	if agree < corpusFloor {
		t.Errorf("corpus agreement %d below floor %d", agree, corpusFloor)
	}
}

func summary(r *report.Report) string {
	s := fmt.Sprintf("%s/%s", r.Indication, r.SubIndication)
	for _, g := range r.Signatures {
		s += fmt.Sprintf(" [%s %s %s/%s lvl=%s rev=%d errs=%q warn=%q mods=%q ts=%+v]", g.Kind, g.Field, g.Indication, g.SubIndication, g.Level, g.Revision, g.Errors, g.Warnings, g.Modifications, g.Timestamps)
	}
	return s
}
