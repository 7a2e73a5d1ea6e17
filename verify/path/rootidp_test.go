package path

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// rootIDP is a critical issuingDistributionPoint with onlyContainsCACerts,
// naming the distribution point uri when it is not "".
func rootIDP(t *testing.T, uri string) []pkix.Extension {
	t.Helper()
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if uri != "" {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
				})
			})
		}
		b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return []pkix.Extension{{Id: oidIDP, Critical: true, Value: der}}
}

// TestRootCRLWithAndWithoutIDPDistributionPoint: Thiqa's root CRL named
// BASE/crl/root.crl in its issuingDistributionPoint until it named none
// (onlyContainsCACerts alone, for OpenSSL's -crl_check_all). The issuing
// CA certificate names BASE/crl/root.crl as its CRL distribution point;
// both forms are in its scope (RFC 5280 §6.3.3 (b)(2)(i)): a CRL signed
// before the change still counts, and a revocation on either is seen. A
// CRL naming another distribution point is out of scope, and one that
// covers end-entity certificates only does not cover the CA.
func TestRootCRLWithAndWithoutIDPDistributionPoint(t *testing.T) {
	const dp = "http://thiqa.example/crl/root.crl"
	now := time.Now().Truncate(time.Second)
	root := issue(t, nil, caTemplate("IDP Root", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	caTmpl := caTemplate("IDP CA", now.Add(-48*time.Hour), now.Add(48*time.Hour))
	caTmpl.CRLDistributionPoints = []string{dp}
	ica := issue(t, root, caTmpl)
	leaf := issue(t, ica, leafTemplate("IDP Leaf", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	caCRL := crlBy(t, ica, 1, nil, now.Add(-time.Hour))
	revoked := x509.RevocationListEntry{SerialNumber: ica.cert.SerialNumber, RevocationTime: now.Add(-2 * time.Hour), ReasonCode: 2}
	onlyUser, err := asn1.Marshal(struct {
		OnlyUser bool `asn1:"optional,tag:1"`
	}{true})
	if err != nil {
		t.Fatal(err)
	}
	const ok, isRevoked, tryLater = "ok", "revoked", "try later"
	for _, c := range []struct {
		name    string
		ext     []pkix.Extension
		entries []x509.RevocationListEntry
		want    string
	}{
		{"naming the CA's distribution point (before)", rootIDP(t, dp), nil, ok},
		{"naming the CA's distribution point (before), CA revoked", rootIDP(t, dp), []x509.RevocationListEntry{revoked}, isRevoked},
		{"naming no distribution point (now)", rootIDP(t, ""), nil, ok},
		{"naming no distribution point (now), CA revoked", rootIDP(t, ""), []x509.RevocationListEntry{revoked}, isRevoked},
		{"naming another distribution point", rootIDP(t, "http://other.example/crl/root.crl"), []x509.RevocationListEntry{revoked}, tryLater},
		{"end-entity certificates only", []pkix.Extension{{Id: oidIDP, Critical: true, Value: onlyUser}}, []x509.RevocationListEntry{revoked}, tryLater},
	} {
		t.Run(c.name, func(t *testing.T) {
			rootCRL := deltaCRL(t, root, 2, nil, now.Add(-time.Hour), c.ext, c.entries...)
			_, err := New(Options{Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{ica.cert}, At: now,
				Revocation: &CRLChecker{CRLs: []*x509.RevocationList{rootCRL, caCRL}}}).Validate(leaf.cert)
			got := ok
			if e, isErr := err.(*Error); isErr {
				switch e.Sub {
				case Revoked:
					got = isRevoked
				case TryLater:
					got = tryLater
				default:
					got = e.Error()
				}
			} else if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Fatalf("want %s, got %s (%v)", c.want, got, err)
			}
		})
	}
}
