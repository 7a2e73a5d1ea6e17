package crl

import (
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/thiqa/thiqa/internal/sigalg"
)

// RFC 5280 §5.3.1 CRLReason codes.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
	ReasonRemoveFromCRL        = 8
	ReasonPrivilegeWithdrawn   = 9
	ReasonAACompromise         = 10
)

// ValidReason reports whether code may appear on a Thiqa CRL: every RFC 5280
// reason except certificateHold (revocation is final), removeFromCRL (no
// delta CRLs) and the unused value 7.
func ValidReason(code int) bool {
	switch code {
	case ReasonUnspecified, ReasonKeyCompromise, ReasonCACompromise, ReasonAffiliationChanged,
		ReasonSuperseded, ReasonCessationOfOperation, ReasonPrivilegeWithdrawn, ReasonAACompromise:
		return true
	}
	return false
}

// RevokedEntry is one revoked certificate as the store reports it.
type RevokedEntry struct {
	Serial    *big.Int
	RevokedAt time.Time
	// Reason is an RFC 5280 CRLReason code; 0 (unspecified) is written as
	// an absent reasonCode extension, as RFC 5280 §5.3.1 recommends.
	Reason int
}

// RevokedSource streams the revoked certificates of one issuing CA's
// partition (the partition recorded with each certificate at issuance, the
// one its CRL distribution point names). fn's error stops the stream and
// must be returned.
type RevokedSource interface {
	RevokedCertificates(ctx context.Context, issuer string, partition int, fn func(RevokedEntry) error) error
}

// NumberSource hands out CRL numbers, strictly increasing per issuer across
// restarts and instances (the store does it in a transaction).
type NumberSource interface {
	NextCRLNumber(ctx context.Context, issuer string) (*big.Int, error)
}

// Issuer is an issuing CA as the generator needs it.
type Issuer struct {
	// Name is the CA's short name ("citizen"): URLs and store keys use it.
	Name   string
	Cert   *x509.Certificate
	Signer crypto.Signer
	// CACerts marks a CRL that lists CA certificates (the root's CRL):
	// its IDP says onlyContainsCACerts instead of onlyContainsUserCerts.
	CACerts bool
}

// CRL is one generated, signed CRL.
type CRL struct {
	Name       string // file name, e.g. "citizen.crl" or "citizen-3.crl"
	Issuer     string
	Partition  int
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	// Deferred counts entries revoked after thisUpdate, left for the next CRL.
	Deferred int
	// Redated counts entries recorded with a revocation time the clock had
	// not reached when they were read (futureSlack or more ahead of it): the
	// clock stepped back since, or the node that revoked them runs ahead.
	// They are listed, revoked as of thisUpdate.
	Redated int
	// BaseNumber is the CRL number of the complete CRL a delta CRL is
	// relative to (its deltaCRLIndicator); nil for a complete CRL.
	BaseNumber *big.Int
	DER        []byte
}

// ErrLint is returned when zlint reports an error-level finding.
var ErrLint = errors.New("CRL failed pre-signing lint")

// Generator builds the CRLs of one issuing CA.
type Generator struct {
	set     Settings
	iss     Issuer
	alg     sigalg.Algorithm
	akid    []byte
	numbers NumberSource
	source  RevokedSource
	deltas  DeltaSource // nil: no delta CRLs
	lintKey crypto.Signer
	lints   lint.Registry
	// now is the clock entries are read by, to tell a revocation made
	// while a CRL is built from one dated ahead of the clock.
	now func() time.Time
}

// futureSlack is how far ahead of the clock a revocation time must be for
// build to take it as dated ahead (a backward clock step, or a node running
// ahead) rather than as made while the CRL was being built.
const futureSlack = 5 * time.Second

// NewGenerator checks that iss's key matches its certificate and prepares a
// throwaway key of the same kind for linting. With set.Deltas, source must
// also be a DeltaSource.
func NewGenerator(set Settings, iss Issuer, numbers NumberSource, source RevokedSource) (*Generator, error) {
	if iss.Name == "" || strings.ContainsAny(iss.Name, "/.-") {
		return nil, fmt.Errorf("%w: issuer name %q must be non-empty without '/', '.' or '-'", ErrConfig, iss.Name)
	}
	if iss.Cert == nil || iss.Signer == nil || numbers == nil || source == nil {
		return nil, fmt.Errorf("%w: issuer certificate, signer, number source and revoked source are required", ErrConfig)
	}
	if set.Partitions < 1 || set.LintSampleEntries < 1 {
		return nil, fmt.Errorf("%w: settings not validated", ErrConfig)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pk, ok := iss.Signer.Public().(equaler); !ok || !pk.Equal(iss.Cert.PublicKey) {
		return nil, fmt.Errorf("%w: signer of %s does not match its certificate", ErrConfig, iss.Name)
	}
	alg, err := sigalg.For(iss.Cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("CRL signature algorithm for %s: %w", iss.Name, err)
	}
	akid := iss.Cert.SubjectKeyId
	if len(akid) == 0 {
		var spki struct {
			Alg asn1.RawValue
			Key asn1.BitString
		}
		if _, err := asn1.Unmarshal(iss.Cert.RawSubjectPublicKeyInfo, &spki); err != nil {
			return nil, fmt.Errorf("issuer public key: %w", err)
		}
		h := sha1.Sum(spki.Key.Bytes)
		akid = h[:]
	}
	lk, err := sigalg.ThrowawayKey(iss.Cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("lint key: %w", err)
	}
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: lint.SourceList{lint.RFC5280, lint.Community}})
	if err != nil {
		return nil, fmt.Errorf("lint registry: %w", err)
	}
	g := &Generator{set: set, iss: iss, alg: alg, akid: akid, numbers: numbers, source: source, lintKey: lk, lints: reg, now: time.Now}
	if set.Deltas {
		ds, ok := source.(DeltaSource)
		if !ok {
			return nil, fmt.Errorf("%w: delta CRLs need a source of recent revocations", ErrConfig)
		}
		g.deltas = ds
	}
	return g, nil
}

// Issuer returns the CA's short name.
func (g *Generator) Issuer() string { return g.iss.Name }

// Partitions returns the partition count.
func (g *Generator) Partitions() int { return g.set.Partitions }

// PartitionNumbers lists the partitions whose CRLs the CA publishes: 0
// (BASE/crl/{ca}.crl) always, and 1 … Partitions() when there are more
// than one.
func (g *Generator) PartitionNumbers() []int {
	out := []int{0}
	if g.set.Partitions > 1 {
		for n := 1; n <= g.set.Partitions; n++ {
			out = append(out, n)
		}
	}
	return out
}

// Generate builds, lints and signs the CRL of one partition as of now.
// Its entries are the revocations the store recorded for that partition
// (the one the certificate names, fixed when it was issued).
func (g *Generator) Generate(ctx context.Context, partition int, now time.Time) (*CRL, error) {
	if partition < 0 || partition > g.set.Partitions || (g.set.Partitions == 1 && partition != 0) {
		return nil, fmt.Errorf("%s has no CRL partition %d (it has %d)", g.iss.Name, partition, g.set.Partitions)
	}
	thisUpdate := now.UTC().Truncate(time.Second)
	nextUpdate := thisUpdate.Add(g.set.Validity)
	if !g.iss.Cert.NotAfter.IsZero() && nextUpdate.After(g.iss.Cert.NotAfter) {
		// A CRL must not promise updates past its issuer's life.
		nextUpdate = g.iss.Cert.NotAfter.UTC().Truncate(time.Second)
	}
	out := &CRL{Name: FileName(g.iss.Name, partition), Issuer: g.iss.Name, Partition: partition,
		ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	return g.build(ctx, out, func(fn func(RevokedEntry) error) error {
		return g.source.RevokedCertificates(ctx, g.iss.Name, partition, fn)
	})
}

// build streams out's entries from stream, numbers, lints and signs it.
func (g *Generator) build(ctx context.Context, out *CRL, stream func(fn func(RevokedEntry) error) error) (*CRL, error) {
	thisUpdate, partition := out.ThisUpdate, out.Partition
	// The number comes before the entries are read. Of two CRLs of one
	// scope (made by two instances, or one made while another streamed),
	// the higher-numbered one then starts reading later and lists what the
	// other lists, but for a revocation whose own transaction was still
	// open across both. Numbered after the read, a CRL whose stream took
	// seconds could carry a higher number than one that already lists a
	// revocation made meanwhile, and a relying party keeping the
	// highest-numbered CRL would see that certificate unrevoked. A CRL that
	// then fails leaves a gap in the numbers, which RFC 5280 allows.
	number, err := g.numbers.NextCRLNumber(ctx, g.iss.Name)
	if err != nil {
		return nil, fmt.Errorf("next CRL number for %s: %w", g.iss.Name, err)
	}
	if number == nil || number.Sign() < 0 || len(number.Bytes()) > 20 {
		return nil, fmt.Errorf("CRL number %v outside [0, 2^159]", number)
	}
	out.Number = new(big.Int).Set(number)
	// Entries are encoded as they stream in; the offset after the first
	// LintSampleEntries marks the part that is linted.
	body := make([]byte, 0, 64*1024)
	sampleEnd := 0
	err = stream(func(e RevokedEntry) error {
		if err := checkEntry(e); err != nil {
			return err
		}
		if e.RevokedAt.After(thisUpdate) {
			if !e.RevokedAt.After(g.now().Add(futureSlack)) {
				out.Deferred++ // revoked while this CRL was being built: next CRL
				return nil
			}
			// Dated ahead of the clock: the clock stepped back after the
			// revocation was recorded (or the node that recorded it runs
			// ahead). It has happened, so deferring it would drop it from
			// the CRLs (and from one that already listed it) until the
			// clock catches up; it is listed as revoked by thisUpdate
			// (a revocation date after thisUpdate is not allowed).
			e.RevokedAt = thisUpdate
			out.Redated++
		}
		body = appendEntry(body, e)
		out.Entries++
		if out.Entries == g.set.LintSampleEntries {
			sampleEnd = len(body)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("streaming revoked certificates of %s partition %d: %w", g.iss.Name, partition, err)
	}
	if out.Entries < g.set.LintSampleEntries {
		sampleEnd = len(body)
	}
	if err := g.lint(out, body[:sampleEnd]); err != nil {
		return nil, err
	}
	buf, err := g.tbs(out, body)
	if err != nil {
		return nil, err
	}
	body = nil // let the entries buffer go
	tbs := buf[outerReserve:]
	sig, err := g.alg.Sign(g.iss.Signer, tbs)
	if err != nil {
		return nil, fmt.Errorf("signing CRL of %s: %w", g.iss.Name, err)
	}
	if len(sig) > tailReserve-64 {
		return nil, fmt.Errorf("signature of %d bytes too long", len(sig))
	}
	// Check the CA signature before the CRL leaves (HSM faults, wrong key).
	if err := checkSignature(g.iss.Cert, g.alg, tbs, sig); err != nil {
		return nil, fmt.Errorf("CRL signature of %s does not verify: %w", g.iss.Name, err)
	}
	der, err := g.assemble(buf, sig)
	if err != nil {
		return nil, err
	}
	out.DER = der
	return out, nil
}

func checkEntry(e RevokedEntry) error {
	switch {
	case e.Serial == nil || e.Serial.Sign() <= 0:
		return fmt.Errorf("revoked entry with non-positive serial %v", e.Serial)
	case len(e.Serial.Bytes()) > 20:
		return fmt.Errorf("serial %x longer than 20 octets", e.Serial)
	case !ValidReason(e.Reason):
		return fmt.Errorf("serial %x: reason code %d not allowed", e.Serial, e.Reason)
	case e.RevokedAt.IsZero():
		return fmt.Errorf("serial %x: missing revocation time", e.Serial)
	}
	return nil
}

var (
	oidReasonCode   = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidCRLNumber    = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidAKID         = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidIssuingDistP = asn1.ObjectIdentifier{2, 5, 29, 28}
)

// addTime writes t as UTCTime through 2049 and GeneralizedTime after
// (RFC 5280 §5.1.2.4).
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

// appendHeader appends a DER tag and definite length.
func appendHeader(dst []byte, tag byte, n int) []byte {
	dst = append(dst, tag)
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 1<<8:
		return append(dst, 0x81, byte(n))
	case n < 1<<16:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendEntry appends one revokedCertificates element. It is the hot loop
// of a million-entry CRL, so it writes DER by hand.
func appendEntry(dst []byte, e RevokedEntry) []byte {
	var serial [21]byte
	mag := e.Serial.FillBytes(serial[1:])[20-len(e.Serial.Bytes()):]
	if mag[0]&0x80 != 0 {
		mag = serial[20-len(mag) : 21] // leading zero keeps it positive
	}
	t := e.RevokedAt.UTC()
	timeTag, timeLen, layout := byte(0x17), 13, "060102150405Z"
	if y := t.Year(); y < 1950 || y >= 2050 {
		timeTag, timeLen, layout = 0x18, 15, "20060102150405Z"
	}
	n := 2 + len(mag) + 2 + timeLen
	if e.Reason != ReasonUnspecified {
		n += 14 // SEQUENCE { SEQUENCE { OID reasonCode, OCTET STRING { ENUMERATED } } }
	}
	dst = appendHeader(dst, 0x30, n)
	dst = appendHeader(dst, 0x02, len(mag))
	dst = append(dst, mag...)
	dst = append(dst, timeTag, byte(timeLen))
	dst = t.AppendFormat(dst, layout)
	if e.Reason != ReasonUnspecified {
		dst = append(dst, 0x30, 12, 0x30, 10, 0x06, 3, 85, 29, 21, 0x04, 3, 0x0a, 1, byte(e.Reason))
	}
	return dst
}

// outerReserve is the room kept in front of the TBS for the
// CertificateList header, and tailReserve the room after it for the
// algorithm and signature, so the signed CRL is built without copying.
const outerReserve, tailReserve = 8, 1100

// tbs assembles the TBSCertList around the encoded entries into a buffer
// with outerReserve bytes free in front; the TBS is buf[outerReserve:].
func (g *Generator) tbs(c *CRL, entries []byte) ([]byte, error) {
	var hb cryptobyte.Builder
	hb.AddASN1Int64(1) // v2
	g.alg.AddAlgorithmIdentifier(&hb)
	hb.AddBytes(g.iss.Cert.RawSubject)
	addTime(&hb, c.ThisUpdate)
	addTime(&hb, c.NextUpdate)
	head, err := hb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding CRL header: %w", err)
	}
	var eb cryptobyte.Builder
	eb.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExtension(b, oidAKID, false, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(g.akid) })
				})
			})
			addExtension(b, oidCRLNumber, false, func(b *cryptobyte.Builder) { b.AddASN1BigInt(c.Number) })
			g.addDeltaExtensions(b, c)
			// Every CRL of an issuing CA names its own distribution point
			// (critical IDP, RFC 5280 §5.2.5) so a partition cannot be
			// taken for the whole; it covers end-entity or CA
			// certificates only. The root's CRL (CACerts: one CRL, no
			// partitions) names none: the root certificate has no CRL
			// distribution point, and OpenSSL checking the whole chain
			// (verify -crl_check_all, nginx ssl_crl) checks the root too,
			// for which a CRL naming a distribution point is out of scope
			// ("different CRL scope"): every chain failed.
			addExtension(b, oidIssuingDistP, true, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					if !g.iss.CACerts {
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
								b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) {
									b.AddBytes([]byte(URL(g.set.BaseURL, g.iss.Name, c.Partition)))
								})
							})
						})
					}
					scope := cbasn1.Tag(1).ContextSpecific() // onlyContainsUserCerts
					if g.iss.CACerts {
						scope = cbasn1.Tag(2).ContextSpecific() // onlyContainsCACerts
					}
					b.AddASN1(scope, func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
				})
			})
		})
	})
	exts, err := eb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding CRL extensions: %w", err)
	}
	inner := len(head) + len(exts)
	if len(entries) > 0 { // RFC 5280 §5.1.2.6: absent when empty
		inner += len(appendHeader(nil, 0x30, len(entries))) + len(entries)
	}
	buf := make([]byte, outerReserve, outerReserve+6+inner+tailReserve)
	buf = appendHeader(buf, 0x30, inner)
	buf = append(buf, head...)
	if len(entries) > 0 {
		buf = appendHeader(buf, 0x30, len(entries))
		buf = append(buf, entries...)
	}
	return append(buf, exts...), nil
}

func addExtension(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, critical bool, value cryptobyte.BuilderContinuation) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(cbasn1.OCTET_STRING, value)
	})
}

// assemble completes the CertificateList in place around buf from tbs.
func (g *Generator) assemble(buf, sig []byte) ([]byte, error) {
	var tb cryptobyte.Builder
	g.alg.AddAlgorithmIdentifier(&tb)
	tb.AddASN1BitString(sig)
	tail, err := tb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding CRL signature: %w", err)
	}
	hdr := appendHeader(nil, 0x30, len(buf)-outerReserve+len(tail))
	start := outerReserve - len(hdr)
	copy(buf[start:], hdr)
	return append(buf, tail...)[start:], nil
}

// lint signs a copy holding the header, the extensions and the first
// entries with the throwaway key and runs zlint's RFC 5280 and community
// CRL lints on it. Entries beyond the sample are checked by checkEntry and
// encoded by the same code, so they cannot differ in form.
func (g *Generator) lint(c *CRL, sample []byte) error {
	buf, err := g.tbs(c, sample)
	if err != nil {
		return err
	}
	sig, err := g.alg.Sign(g.lintKey, buf[outerReserve:])
	if err != nil {
		return fmt.Errorf("signing lint copy: %w", err)
	}
	der, err := g.assemble(buf, sig)
	if err != nil {
		return err
	}
	parsed, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("%w: lint copy does not parse: %v", ErrLint, err)
	}
	res := zlint.LintRevocationListEx(parsed, g.lints)
	var bad []string
	for name, r := range res.Results {
		if r != nil && (r.Status == lint.Error || r.Status == lint.Fatal) {
			bad = append(bad, name+": "+r.Details)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrLint, strings.Join(bad, "; "))
	}
	return nil
}

func checkSignature(cert *x509.Certificate, alg sigalg.Algorithm, tbs, sig []byte) error {
	return cert.CheckSignature(alg.X509(), tbs, sig)
}
