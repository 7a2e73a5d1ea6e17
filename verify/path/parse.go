package path

import (
	"crypto/dsa" //nolint:staticcheck // DSA parameter inheritance (PKITS)
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ParseCertificate parses a DER certificate like x509.ParseCertificate but
// tolerates two defects Go refuses and deployed CAs produced: a negative
// serial number, and a CRL distribution points extension Go cannot read
// (nameRelativeToCRLIssuer, cRLIssuer-only points). The certificate is
// parsed from a repaired copy and then given back its original raw bytes,
// serial and extensions, so signatures and hashes still cover the bytes as
// issued and this package reads the distribution points itself.
func ParseCertificate(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err == nil {
		return c, nil
	}
	msg := err.Error()
	fixSerial := strings.Contains(msg, "negative serial")
	dropCRLDP := strings.Contains(msg, "CRL distribution point")
	dsaNoParams := strings.Contains(msg, "invalid DSA parameters")
	if !fixSerial && !dropCRLDP && !dsaNoParams {
		return nil, err
	}
	var origSPKI []byte
	var dsaY *big.Int
	in := cryptobyte.String(der)
	var cert, tbsFull cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&tbsFull, cbasn1.SEQUENCE) {
		return nil, err
	}
	tbs := tbsFull
	var body cryptobyte.String
	if !tbs.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil, err
	}
	var version cryptobyte.String
	var hasVersion bool
	if !body.ReadOptionalASN1(&version, &hasVersion, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, err
	}
	serial := new(big.Int)
	if !body.ReadASN1Integer(serial) {
		return nil, err
	}
	var origExts []pkix.Extension
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if hasVersion {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(version) })
			}
			b.AddASN1BigInt(new(big.Int).Abs(serial))
			for field := 0; !body.Empty(); field++ {
				var el cryptobyte.String
				var tag cbasn1.Tag
				if !body.ReadAnyASN1Element(&el, &tag) {
					b.SetError(err)
					return
				}
				if field == 4 && dsaNoParams {
					// A DSA key whose parameters are inherited from the issuer
					// (RFC 5280 §6.1.4 (f)): parse with placeholder parameters.
					origSPKI = el
					spki := el
					var seq, alg, oid, bits cryptobyte.String
					if !spki.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&alg, cbasn1.SEQUENCE) ||
						!alg.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) || !seq.ReadASN1BitStringAsBytes((*[]byte)(&bits)) {
						b.SetError(err)
						return
					}
					y := new(big.Int)
					yb := cryptobyte.String(bits)
					if !yb.ReadASN1Integer(y) {
						b.SetError(err)
						return
					}
					dsaY = y
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(oid)
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1BigInt(big.NewInt(1))
								b.AddASN1BigInt(big.NewInt(1))
								b.AddASN1BigInt(big.NewInt(1))
							})
						})
						b.AddASN1BitString(bits)
					})
					continue
				}
				if tag != cbasn1.Tag(3).ContextSpecific().Constructed() || !dropCRLDP {
					b.AddBytes(el)
					continue
				}
				var wrapper, exts cryptobyte.String
				el.ReadASN1(&wrapper, tag)
				wrapper.ReadASN1(&exts, cbasn1.SEQUENCE)
				b.AddASN1(tag, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for !exts.Empty() {
							var ext cryptobyte.String
							if !exts.ReadASN1Element(&ext, cbasn1.SEQUENCE) {
								return
							}
							var e pkix.Extension
							if _, perr := asn1.Unmarshal(ext, &e); perr == nil && e.Id.Equal(oidCRLDP) {
								origExts = append(origExts, e)
								continue
							}
							b.AddBytes(ext)
						}
					})
				})
			}
		})
		b.AddBytes(cert)
	})
	fixed, berr := b.Bytes()
	if berr != nil {
		return nil, err
	}
	c2, err2 := x509.ParseCertificate(fixed)
	if err2 != nil {
		return nil, err
	}
	c2.Raw = der
	c2.RawTBSCertificate = tbsFull
	c2.SerialNumber = serial
	c2.Extensions = append(c2.Extensions, origExts...)
	if dsaY != nil {
		c2.RawSubjectPublicKeyInfo = origSPKI
		c2.PublicKey = &dsa.PublicKey{Y: dsaY} // parameters inherited during path validation
	}
	return c2, nil
}
