// Package path validates X.509 certification paths per RFC 5280 §6: it builds
// candidate paths from an end-entity certificate through untrusted
// intermediates to configured trust anchors and validates each candidate
// (signatures, validity, name chaining, basic constraints and path length,
// key usage, name constraints, certificate policies, unknown critical
// extensions, algorithm constraints and, when asked, CRL revocation).
package path

import (
	"bytes"
	"crypto/dsa" //nolint:staticcheck // DSA parameter inheritance (PKITS)
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// SubIndication names a validation failure with the ETSI EN 319 102-1
// sub-indication that a signature validation report would carry.
type SubIndication string

// Sub-indications produced by path validation.
const (
	NoChainFound           SubIndication = "NO_CERTIFICATE_CHAIN_FOUND"
	ChainGeneralFailure    SubIndication = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
	ChainConstraints       SubIndication = "CHAIN_CONSTRAINTS_FAILURE"
	CryptoConstraints      SubIndication = "CRYPTO_CONSTRAINTS_FAILURE"
	SigCryptoFailure       SubIndication = "SIG_CRYPTO_FAILURE"
	OutOfBoundsNoPOE       SubIndication = "OUT_OF_BOUNDS_NO_POE"
	NotYetValid            SubIndication = "NOT_YET_VALID"
	Revoked                SubIndication = "REVOKED"
	TryLater               SubIndication = "TRY_LATER"
	RevocationOutOfBounds  SubIndication = "REVOCATION_OUT_OF_BOUNDS_NO_POE"
	PolicyProcessingFailed SubIndication = "POLICY_PROCESSING_ERROR"
)

// Error is a path validation failure. Index is the position in the path of
// the certificate concerned (0 = trust anchor, len-1 = end entity), or -1.
type Error struct {
	Sub   SubIndication
	Index int
	Msg   string
	// RevokedAt is set when Sub is Revoked.
	RevokedAt time.Time
	// InvalidSince is, when Sub is Revoked and the revocation information
	// carries an invalidityDate (RFC 5280 §5.3.2), the date from which the
	// CA states that the key was known or suspected to be compromised or
	// the certificate otherwise invalid. It is information for the report
	// only: EN 319 102-1 judges by the revocation time.
	InvalidSince time.Time
	// Subject names the certificate concerned when Sub is Revoked.
	Subject string
	// SuspendedAt is set when the certificate is on hold (suspended,
	// reason certificateHold) at the validation time, with the date of the
	// suspension; Sub is then TryLater (EN 319 102-1 §5.2.6: a suspension
	// may be lifted, so the status is to be asked again later).
	SuspendedAt time.Time
	// HeldAsOf is, when the suspension comes from a CRL, when the
	// information dating it was issued: the CRL's thisUpdate, or its
	// delta CRL's when one was read with it (the hold stood then).
	HeldAsOf time.Time
}

// Suspended reports whether e says the certificate is on hold.
func (e *Error) Suspended() bool { return e != nil && !e.SuspendedAt.IsZero() }

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: certificate %d: %s", e.Sub, e.Index, e.Msg)
}

func fail(sub SubIndication, i int, format string, a ...any) *Error {
	return &Error{Sub: sub, Index: i, Msg: fmt.Sprintf(format, a...)}
}

// Options configure one validation.
type Options struct {
	// Roots are the trust anchors.
	Roots []*x509.Certificate
	// Anchors, when set, is NewAnchorIndex(Roots), built once by a caller
	// that validates many paths against the same (possibly many) anchors;
	// otherwise each Validator indexes Roots itself.
	Anchors *AnchorIndex
	// Intermediates is the pool of untrusted certificates for path building.
	Intermediates []*x509.Certificate
	// At is the validation time; zero means now.
	At time.Time
	// InitialPolicies is the user-initial-policy-set (dotted OIDs); empty
	// means anyPolicy.
	InitialPolicies []string
	// InitialExplicitPolicy, InitialPolicyMappingInhibit and
	// InitialAnyPolicyInhibit are the RFC 5280 §6.1.1 inputs.
	InitialExplicitPolicy       bool
	InitialPolicyMappingInhibit bool
	InitialAnyPolicyInhibit     bool
	// Revocation, when set, is asked about every certificate of the path
	// except the trust anchor.
	Revocation RevocationChecker
	// Algorithms decides which signature algorithms and key sizes are
	// acceptable; nil means DefaultAlgorithms.
	Algorithms *AlgorithmPolicy
	// MaxDepth bounds the number of certificates in a path (default 10).
	MaxDepth int
	// Strict also enforces the RFC 5280 §4 certificate profile on every
	// certificate of the path (anchor included, whose validity is then
	// checked too).
	Strict bool
	// MaxCandidates bounds the number of candidate paths tried (default 64).
	MaxCandidates int
}

// RevocationChecker reports the revocation status of path[i] (whose issuer
// is path[i-1]) at the given time. It returns nil when the certificate is
// known not to be revoked, and an *Error otherwise.
type RevocationChecker interface {
	CheckRevocation(path []*x509.Certificate, i int, at time.Time, v *Validator) *Error
}

// Result is a validated path, from trust anchor (index 0) to end entity.
type Result struct {
	Chain []*x509.Certificate
	// Policies is the authorities-constrained policy set (dotted OIDs);
	// "2.5.29.32.0" alone means any policy.
	Policies []string
}

// Validator validates paths with fixed options.
type Validator struct {
	opts  Options
	depth int
	names *nameMemo // shared with the nested validators
}

// New returns a validator for the options.
func New(opts Options) *Validator {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 10
	}
	if opts.MaxCandidates <= 0 {
		opts.MaxCandidates = 64
	}
	if opts.Algorithms == nil {
		a := DefaultAlgorithms()
		opts.Algorithms = &a
	}
	if opts.Anchors == nil {
		opts.Anchors = NewAnchorIndex(opts.Roots)
	}
	return &Validator{opts: opts, names: newNameMemo()}
}

// Options returns the validator's options.
func (v *Validator) Options() Options { return v.opts }

func (v *Validator) at() time.Time {
	if v.opts.At.IsZero() {
		return time.Now()
	}
	return v.opts.At
}

// Validate builds and validates a path for leaf. extra certificates (for
// example those carried in a CMS structure or a DSS) join the pool of
// intermediates for this call only. It returns the first candidate that
// validates, or the error of the most promising candidate.
func (v *Validator) Validate(leaf *x509.Certificate, extra ...*x509.Certificate) (*Result, error) {
	return v.validate(leaf, extra, v.depth)
}

func (v *Validator) validate(leaf *x509.Certificate, extra []*x509.Certificate, depth int) (*Result, error) {
	if leaf == nil {
		return nil, errors.New("path: no certificate")
	}
	if depth > 3 {
		return nil, fail(ChainGeneralFailure, -1, "revocation issuer paths nested too deeply")
	}
	pool := append(append([]*x509.Certificate{}, v.opts.Intermediates...), extra...)
	cands := v.build(leaf, pool)
	if len(cands) == 0 {
		if bad := nonCAIssuer(leaf, pool); bad != nil {
			return nil, fail(ChainGeneralFailure, -1, "%q is issued by %q, which is not a CA", leaf.Subject.String(), bad.Subject.String())
		}
		return nil, fail(NoChainFound, -1, "no path from %q to a trust anchor", leaf.Subject.String())
	}
	var best *Error
	for _, c := range cands {
		res, err := v.check(c, depth)
		if err == nil {
			return res, nil
		}
		if best == nil || rank(err) > rank(best) {
			best = err
		}
	}
	return nil, best
}

// rank orders failures so that the reported one is the most telling:
// revocation beats signature beats everything else.
func rank(e *Error) int {
	switch e.Sub {
	case Revoked:
		return 5
	case TryLater, RevocationOutOfBounds:
		return 3
	case SigCryptoFailure:
		return 1
	}
	return 2
}

// build enumerates candidate paths anchor-first by depth-first search over
// issuer/subject name matches, without repeating a certificate.
func (v *Validator) build(leaf *x509.Certificate, pool []*x509.Certificate) [][]*x509.Certificate {
	var out [][]*x509.Certificate
	chain := []*x509.Certificate{leaf}
	var dfs func()
	steps := 0
	dfs = func() {
		steps++
		if len(out) >= v.opts.MaxCandidates || steps > 10000 {
			return
		}
		cur := chain[len(chain)-1]
		for _, r := range v.opts.Anchors.issuersOf(cur.RawIssuer, v.names) {
			if keyIDMatch(cur, r) && !in(chain[1:], r) {
				p := make([]*x509.Certificate, 0, len(chain)+1)
				p = append(p, r)
				for i := len(chain) - 1; i >= 0; i-- {
					p = append(p, chain[i])
				}
				out = append(out, p)
			}
		}
		// Self-issued intermediates (key rollover) do not count towards
		// the depth, but the chain stays bounded.
		if nonSelfIssued(chain) >= v.opts.MaxDepth || len(chain) >= 2*v.opts.MaxDepth+2 {
			return
		}
		for _, c := range pool {
			if in(chain, c) || v.opts.Anchors.contains(c) {
				continue
			}
			if v.names.equal(cur.RawIssuer, c.RawSubject) && keyIDMatch(cur, c) {
				chain = append(chain, c)
				dfs()
				chain = chain[:len(chain)-1]
			}
		}
	}
	if v.opts.Anchors.contains(leaf) {
		out = append(out, []*x509.Certificate{leaf, leaf})
	}
	dfs()
	return out
}

func keyIDMatch(child, parent *x509.Certificate) bool {
	if len(child.AuthorityKeyId) == 0 || len(parent.SubjectKeyId) == 0 {
		return true
	}
	return bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId)
}

func in(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func selfIssued(c *x509.Certificate) bool { return nameEqual(c.RawIssuer, c.RawSubject) }

// check runs the RFC 5280 §6.1 basic path validation on path (anchor first).
func (v *Validator) check(path []*x509.Certificate, depth int) (*Result, *Error) {
	at := v.at()
	n := len(path) - 1
	anchor := path[0]
	st := newPolicyState(v.opts, n)
	nc := &nameState{}
	maxPathLen := n
	if n == 0 {
		return nil, fail(NoChainFound, 0, "empty path")
	}
	// A trust anchor's own name constraints are honoured (RFC 5937).
	if err := nc.add(anchor); err != nil {
		return nil, fail(ChainConstraints, 0, "trust anchor name constraints: %v", err)
	}
	path = inheritDSAParams(path)
	if v.opts.Strict {
		for i, c := range path {
			if i == 0 && n > 0 && path[1] == c {
				continue
			}
			if err := profileCheck(c, i == 0, i == n, at); err != nil {
				return nil, fail(ChainConstraints, i, "%v", err)
			}
		}
	}
	for i := 1; i <= n; i++ {
		c, issuer := path[i], path[i-1]
		if err := v.opts.Algorithms.checkCertSignature(c, issuer, at); err != nil {
			err.Index = i
			return nil, err
		}
		if validityTime(at).Before(c.NotBefore) {
			return nil, fail(NotYetValid, i, "not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
		}
		if validityTime(at).After(c.NotAfter) {
			return nil, fail(OutOfBoundsNoPOE, i, "expired at %s", c.NotAfter.UTC().Format(time.RFC3339))
		}
		if !v.names.equal(c.RawIssuer, issuer.RawSubject) {
			return nil, fail(NoChainFound, i, "issuer name does not match")
		}
		if v.opts.Revocation != nil {
			if err := v.opts.Revocation.CheckRevocation(path, i, at, v.nested(depth)); err != nil {
				if err.Index < 0 {
					err.Index = i
				}
				return nil, err
			}
		}
		if !(v.names.selfIssued(c) && i < n) {
			if err := nc.check(c); err != nil {
				return nil, fail(ChainConstraints, i, "name constraints: %v", err)
			}
		}
		if err := st.processCert(c, i, n, v.names.selfIssued(c)); err != nil {
			return nil, fail(ChainConstraints, i, "%v", err)
		}
		if err := unknownCritical(c, i == n); err != nil {
			return nil, fail(ChainConstraints, i, "%v", err)
		}
		if i == n {
			break
		}
		// Preparation for certificate i+1 (§6.1.4).
		if err := st.prepare(c, i, v.names.selfIssued(c)); err != nil {
			return nil, fail(ChainConstraints, i, "%v", err)
		}
		if err := nc.add(c); err != nil {
			return nil, fail(ChainConstraints, i, "name constraints: %v", err)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fail(ChainGeneralFailure, i, "intermediate certificate is not a CA")
		}
		if !v.names.selfIssued(c) {
			if maxPathLen <= 0 {
				return nil, fail(ChainConstraints, i, "path length constraint exceeded")
			}
			maxPathLen--
		}
		if c.MaxPathLen >= 0 && (c.MaxPathLen > 0 || c.MaxPathLenZero) && c.MaxPathLen < maxPathLen {
			maxPathLen = c.MaxPathLen
		}
		if keyUsageLacks(c, x509.KeyUsageCertSign) {
			return nil, fail(ChainConstraints, i, "CA key usage lacks keyCertSign")
		}
	}
	pols, err := st.wrapUp(path[n], n)
	if err != nil {
		return nil, fail(ChainConstraints, n, "%v", err)
	}
	return &Result{Chain: path, Policies: pols}, nil
}

// nested returns a validator for revocation-issuer paths: same anchors and
// time, no policy inputs, one level deeper.
func (v *Validator) nested(depth int) *Validator {
	o := v.opts
	o.InitialPolicies = nil
	o.InitialExplicitPolicy = false
	o.InitialPolicyMappingInhibit = false
	o.InitialAnyPolicyInhibit = false
	return &Validator{opts: o, depth: depth + 1, names: v.names}
}

func unknownCritical(c *x509.Certificate, leaf bool) error {
	for _, e := range c.Extensions {
		if !e.Critical {
			continue
		}
		switch e.Id.String() {
		case "2.5.29.15", "2.5.29.19", "2.5.29.17", "2.5.29.30", "2.5.29.32", "2.5.29.33",
			"2.5.29.36", "2.5.29.54", "2.5.29.37", "2.5.29.35", "2.5.29.14", "2.5.29.18",
			"1.3.6.1.5.5.7.1.3", "2.5.29.31", "1.3.6.1.5.5.7.1.1", "2.5.29.9":
			continue
		}
		return fmt.Errorf("unknown critical extension %s", e.Id)
	}
	return nil
}

// ExtKeyUsage checks that leaf permits every named extended key usage
// ("serverAuth", "clientAuth", "codeSigning", "emailProtection",
// "timeStamping", "OCSPSigning", or a dotted OID). A certificate without the
// extension, or with anyExtendedKeyUsage, permits all.
func ExtKeyUsage(leaf *x509.Certificate, want []string) error {
	if len(want) == 0 || (len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0) {
		return nil
	}
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
		x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
		x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
	}
	have := map[string]bool{}
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny {
			return nil
		}
		have[names[u]] = true
	}
	for _, o := range leaf.UnknownExtKeyUsage {
		have[o.String()] = true
	}
	for _, w := range want {
		if !have[w] {
			return fmt.Errorf("%s: extended key usage %s not permitted", ChainConstraints, w)
		}
	}
	return nil
}

// nonCAIssuer returns a certificate of pool that signed leaf although it is
// not a CA (an end entity issuing certificates), if any.
func nonCAIssuer(leaf *x509.Certificate, pool []*x509.Certificate) *x509.Certificate {
	for _, c := range pool {
		if c.Equal(leaf) || !nameEqual(leaf.RawIssuer, c.RawSubject) {
			continue
		}
		if c.Version < 3 || (c.BasicConstraintsValid && c.IsCA) || selfIssued(c) {
			continue
		}
		if leaf.CheckSignatureFrom(c) == nil || checkSigLoose(leaf, c) {
			return c
		}
	}
	return nil
}

func checkSigLoose(child, parent *x509.Certificate) bool {
	p := AlgorithmPolicy{MinRSABits: 1024, MinECBits: 160, AllowSHA1: true}
	return p.VerifySignature(child.SignatureAlgorithm, parent.PublicKey, child.RawTBSCertificate, child.Signature) == nil
}

// inheritDSAParams gives DSA keys without parameters those of the working
// public key (RFC 5280 §6.1.4 (f)), on shallow copies of the certificates.
func inheritDSAParams(p []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for i, c := range p {
		k, ok := c.PublicKey.(*dsa.PublicKey)
		if i == 0 || !ok || k.P != nil {
			continue
		}
		if out == nil {
			out = append([]*x509.Certificate{}, p...)
		}
		prev, ok := out[i-1].PublicKey.(*dsa.PublicKey)
		if !ok || prev.P == nil {
			continue
		}
		cp := *c
		cp.PublicKey = &dsa.PublicKey{Y: k.Y, Parameters: prev.Parameters}
		out[i] = &cp
	}
	if out == nil {
		return p
	}
	return out
}

// validityTime is the validation time at the granularity of a certificate's
// validity dates. RFC 5280 §4.1.2.5 encodes notBefore and notAfter to the
// second and makes the period inclusive, so notAfter T covers the whole
// second T; comparing the truncated time keeps a validation time with a
// fractional second (a time-stamp's genTime, for instance) inside that
// second instead of expiring the certificate milliseconds early. Truncation
// never admits a time before notBefore.
func validityTime(at time.Time) time.Time { return at.Truncate(time.Second) }

func nonSelfIssued(chain []*x509.Certificate) int {
	n := 1 // the end entity
	for _, c := range chain[1:] {
		if !selfIssued(c) {
			n++
		}
	}
	return n
}
