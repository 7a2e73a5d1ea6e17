package crl

import (
	"context"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Delta CRLs (RFC 5280 §5.2.4), when Settings.Deltas is on: each
// partition's complete CRL names its delta CRL in a freshestCRL extension
// (§5.2.6), and the delta lists the revocations of that partition recorded
// since the complete CRL it is relative to (its critical deltaCRLIndicator
// names that CRL's number). Both carry the same issuingDistributionPoint,
// so they have the same scope. CRL numbers come from the CA's one
// sequence, so a delta's number is above its base's. Complete CRLs are then
// regenerated on the schedule only (a base must stay put for relying
// parties that hold it), deltas on the schedule and seconds after a
// revocation.

var (
	oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidFreshestCRL       = asn1.ObjectIdentifier{2, 5, 29, 46}
)

// deltaOverlap is how far before its base's thisUpdate a delta starts
// listing revocations: a revocation recorded by another process while the
// base was being built is on one of the two. An entry on both is harmless.
const deltaOverlap = 5 * time.Minute

// DeltaSource streams the revocations of one issuing CA's partition that
// were recorded at or after since (package store implements it). fn's
// error stops the stream and must be returned.
type DeltaSource interface {
	RevokedSince(ctx context.Context, issuer string, partition int, since time.Time, fn func(RevokedEntry) error) error
}

// DeltaFileName is the file name of one partition's delta CRL:
// "{ca}-delta.crl" for partition 0, "{ca}-{n}-delta.crl" for partition n.
func DeltaFileName(ca string, partition int) string {
	if partition == 0 {
		return ca + "-delta.crl"
	}
	return fmt.Sprintf("%s-%d-delta.crl", ca, partition)
}

// DeltaURL is where one partition's delta CRL is published.
func DeltaURL(base, ca string, partition int) string {
	return strings.TrimRight(base, "/") + "/crl/" + DeltaFileName(ca, partition)
}

// Deltas reports whether the generator makes delta CRLs.
func (g *Generator) Deltas() bool { return g.deltas != nil }

// GenerateDelta builds, lints and signs the delta CRL of base's partition
// as of now: the revocations recorded since shortly before base's
// thisUpdate, relative to base (a complete CRL this generator made).
func (g *Generator) GenerateDelta(ctx context.Context, base *CRL, now time.Time) (*CRL, error) {
	if g.deltas == nil {
		return nil, fmt.Errorf("%w: delta CRLs are not configured for %s", ErrConfig, g.iss.Name)
	}
	if base == nil || base.BaseNumber != nil || base.Issuer != g.iss.Name || base.Number == nil {
		return nil, fmt.Errorf("a delta CRL of %s needs a complete CRL of that CA as its base", g.iss.Name)
	}
	thisUpdate := now.UTC().Truncate(time.Second)
	if thisUpdate.Before(base.ThisUpdate) {
		thisUpdate = base.ThisUpdate
	}
	// Valid until well after the next scheduled complete CRL and delta.
	nextUpdate := thisUpdate.Add(min(2*g.set.RegenerateEvery, g.set.Validity))
	if !g.iss.Cert.NotAfter.IsZero() && nextUpdate.After(g.iss.Cert.NotAfter) {
		nextUpdate = g.iss.Cert.NotAfter.UTC().Truncate(time.Second)
	}
	out := &CRL{Name: DeltaFileName(g.iss.Name, base.Partition), Issuer: g.iss.Name, Partition: base.Partition,
		ThisUpdate: thisUpdate, NextUpdate: nextUpdate, BaseNumber: base.Number}
	return g.build(ctx, out, func(fn func(RevokedEntry) error) error {
		return g.deltas.RevokedSince(ctx, g.iss.Name, base.Partition, base.ThisUpdate.Add(-deltaOverlap), fn)
	})
}

// addDeltaExtensions adds to c's extensions the deltaCRLIndicator of a
// delta CRL (critical, RFC 5280 §5.2.4), or the freshestCRL naming the
// delta of a complete CRL when deltas are on (non-critical, §5.2.6).
func (g *Generator) addDeltaExtensions(b *cryptobyte.Builder, c *CRL) {
	switch {
	case c.BaseNumber != nil:
		addExtension(b, oidDeltaCRLIndicator, true, func(b *cryptobyte.Builder) { b.AddASN1BigInt(c.BaseNumber) })
	case g.deltas != nil:
		addExtension(b, oidFreshestCRL, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CRLDistributionPoints
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // DistributionPoint
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // distributionPoint
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // fullName
							b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { // uniformResourceIdentifier
								b.AddBytes([]byte(DeltaURL(g.set.BaseURL, g.iss.Name, c.Partition)))
							})
						})
					})
				})
			})
		})
	}
}
