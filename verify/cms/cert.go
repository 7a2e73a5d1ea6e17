package cms

import (
	"crypto/x509"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ParseCertificate parses a DER certificate like x509.ParseCertificate but
// also accepts a negative serial number (which Go refuses and some deployed
// CAs issued): the certificate is parsed with the serial's absolute value
// and then given back its original raw bytes and serial, so signatures and
// hashes still cover the bytes as issued.
func ParseCertificate(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err == nil || !strings.Contains(err.Error(), "negative serial") {
		return c, err
	}
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
	if !body.ReadASN1Integer(serial) || serial.Sign() >= 0 {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if hasVersion {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(version) })
			}
			b.AddASN1BigInt(new(big.Int).Neg(serial))
			b.AddBytes(body)
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
	return c2, nil
}
