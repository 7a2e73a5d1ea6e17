package tsl

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"

	"github.com/thiqa/thiqa/verify/report"
)

// CheckOptions configure Check.
type CheckOptions struct {
	// Signers are the certificates the relying party accepts as the list's
	// signer (for the EU LOTL: the certificates published in the Official
	// Journal; for a national list: those in the LOTL's pointer).
	Signers []*x509.Certificate
	// At is the validation time; zero means now.
	At time.Time
	// Limits bound the document.
	Limits Limits
}

// Result is the outcome of checking one trusted list.
type Result struct {
	// Indication and SubIndication are the verdict on the list's signature
	// (ETSI EN 319 102-1 names).
	Indication    report.Indication
	SubIndication report.SubIndication
	Errors        []string
	Warnings      []string
	// Signer is the certificate that signed the list (when identified).
	Signer *x509.Certificate
	// SigningTime is the XAdES signing time the list claims.
	SigningTime time.Time
	// List is the parsed list; it is set whenever the document could be
	// parsed, also when the signature fails (to show what was refused).
	// Use it only when Passed.
	List *List
}

// Passed reports whether the list may be used: its signature is
// TOTAL-PASSED (warnings, such as an expired nextUpdate, allowed).
func (r *Result) Passed() bool { return r.Indication == report.TotalPassed }

// Err returns nil for a list that passed, else an error carrying the result.
func (r *Result) Err() error {
	if r.Passed() {
		return nil
	}
	return &ListError{Result: r}
}

// ListError is a list refused by Check.
type ListError struct {
	// Location names the list (file or URL) when known.
	Location string
	Result   *Result
}

// Error implements error.
func (e *ListError) Error() string {
	msg := string(e.Result.Indication)
	if e.Result.SubIndication != report.None {
		msg += "/" + string(e.Result.SubIndication)
	}
	if len(e.Result.Errors) > 0 {
		msg += ": " + e.Result.Errors[0]
	}
	if e.Location != "" {
		return fmt.Sprintf("trusted list %s refused: %s", e.Location, msg)
	}
	return "trusted list refused: " + msg
}

// Check verifies a trusted list's signature against the configured signers
// and parses it. It never panics on input and its cost is bounded by
// o.Limits; the verdict is in the Result.
func Check(raw []byte, o CheckOptions) *Result {
	res := &Result{Indication: report.TotalPassed}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	fail := func(e *SignatureError) *Result {
		res.Errors = append(res.Errors, e.Msg)
		if report.Worse(e.Indication, res.Indication) {
			res.Indication, res.SubIndication = e.Indication, e.SubIndication
		}
		return res
	}
	doc, err := readXML(raw, o.Limits)
	if err != nil {
		return fail(formatFailure("%v", err))
	}
	list, err := parseList(doc.Root())
	if err != nil {
		fail(formatFailure("%v", err))
		if errors.Is(err, ErrNotTSL) || errors.Is(err, ErrVersion) {
			return res
		}
	}
	res.List = list
	if list != nil {
		res.Warnings = append(res.Warnings, list.Warnings...)
	}
	if err := verifyListSignature(doc, o.Signers, at, res); err != nil {
		return fail(err)
	}
	if list != nil {
		if !list.NextUpdate.IsZero() && at.After(list.NextUpdate) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the list's nextUpdate (%s) has passed: it may be out of date (ETSI TS 119 615: warn, still used)",
				list.NextUpdate.Format(time.RFC3339)))
		}
		if list.NextUpdate.IsZero() {
			res.Warnings = append(res.Warnings, "the list is closed (no nextUpdate): its scheme has ended")
		}
		if list.IssueDate.After(at) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the list is issued in the future (%s)", list.IssueDate.Format(time.RFC3339)))
		}
	}
	return res
}

// verifyListSignature runs the signature checks in the order that gives the
// most telling verdict: structure, digests (HASH_FAILURE), the signer
// (NO_CERTIFICATE_CHAIN_FOUND), the value (SIG_CRYPTO_FAILURE), the XAdES
// binding and the signer certificate's validity.
func verifyListSignature(doc *etree.Document, signers []*x509.Certificate, at time.Time, res *Result) *SignatureError {
	sig, err := findSignature(doc)
	if err != nil {
		return err
	}
	if err := sig.checkDigests(); err != nil {
		return err
	}
	if len(signers) == 0 {
		return sigFail(report.Indeterminate, report.NoCertificateChainFound, "no signer certificate is configured for this list")
	}
	var signer *x509.Certificate
	if len(sig.keyInfoCerts) > 0 {
		for _, c := range sig.keyInfoCerts {
			for _, s := range signers {
				if c.Equal(s) {
					signer = s
					break
				}
			}
			if signer != nil {
				break
			}
		}
		if signer == nil {
			return sigFail(report.Indeterminate, report.NoCertificateChainFound,
				"the list is signed by %q (serial %s), which is not a configured signer", sig.keyInfoCerts[0].Subject, sig.keyInfoCerts[0].SerialNumber.Text(16))
		}
	} else {
		for _, s := range signers {
			if sig.checkValue(s.PublicKey) == nil {
				signer = s
				break
			}
		}
		if signer == nil {
			return sigFail(report.Indeterminate, report.NoSigningCertificateFound, "the signature carries no certificate and no configured signer's key verifies it")
		}
	}
	res.Signer = signer
	if err := sig.checkValue(signer.PublicKey); err != nil {
		return err
	}
	st, err := sig.signingCertificate(signer)
	res.SigningTime = st
	if err != nil {
		return err
	}
	if at.Before(signer.NotBefore) {
		return sigFail(report.Indeterminate, report.NotYetValid, "the signer certificate is valid only from %s", signer.NotBefore.UTC().Format(time.RFC3339))
	}
	if at.After(signer.NotAfter) {
		return sigFail(report.Indeterminate, report.OutOfBoundsNoPOE, "the signer certificate expired at %s", signer.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}
