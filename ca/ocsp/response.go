package ocsp

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/thiqa/thiqa/internal/sigalg"
)

// State is a certificate's status as OCSP reports it.
type State int

// The three OCSP certificate statuses (RFC 6960 §2.2).
const (
	Unknown State = iota // never issued by this CA: the default, never "good"
	Good
	Revoked
)

// String implements fmt.Stringer.
func (s State) String() string {
	switch s {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	}
	return "unknown"
}

// Status is what the store knows of one serial.
type Status struct {
	State     State
	RevokedAt time.Time // when State is Revoked
	// Reason is the RFC 5280 CRLReason code; 0 (unspecified) is omitted from
	// the response, as on the CRL.
	Reason int
}

var oidNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// Pre-encoded error responses (OCSPResponse with only responseStatus).
var (
	respMalformed    = []byte{0x30, 0x03, 0x0a, 0x01, 0x01}
	respInternal     = []byte{0x30, 0x03, 0x0a, 0x01, 0x02}
	respTryLater     = []byte{0x30, 0x03, 0x0a, 0x01, 0x03}
	respUnauthorized = []byte{0x30, 0x03, 0x0a, 0x01, 0x06}
)

// ResponderCert is a delegated OCSP responder: a certificate of the
// ocsp-responder profile (EKU OCSPSigning, id-pkix-ocsp-nocheck) issued by
// the CA it answers for, and its key.
type ResponderCert struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// signing is a ResponderCert prepared for signing.
type signing struct {
	cert  *x509.Certificate
	key   crypto.Signer
	alg   sigalg.Algorithm
	keyID []byte // SHA-1 of the responder's public key: ResponderID byKey
	// previous is the responder this one replaced (RenewDue), nil when
	// none: it signs while the clock is before cert's notBefore (forSign).
	previous *signing
	// revoked is set once cert is known to be revoked (Responder.Revoked,
	// Issuer.Revoked): it signs nothing more, and RenewDue replaces it.
	// Shared by the copies RenewDue keeps as previous.
	revoked *atomic.Bool
	// health is the key's last signature (Ready), shared likewise.
	health *keyHealth
}

// at returns the responder to sign with at now: s, or while now is before
// s's notBefore (a backward clock step just after a renewal) the responder
// it replaced when that one is valid at now, so that producedAt is never
// before the signer's validity. A revoked previous responder is never
// taken.
func (s *signing) at(now time.Time) *signing {
	if p := s.previous; p != nil && now.Before(s.cert.NotBefore) && !now.Before(p.cert.NotBefore) && now.Before(p.cert.NotAfter) && !p.revoked.Load() {
		return p
	}
	return s
}

func newSigning(rc ResponderCert, ca *x509.Certificate) (*signing, error) {
	if rc.Cert == nil || rc.Signer == nil {
		return nil, fmt.Errorf("responder certificate and signer are required")
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pk, ok := rc.Signer.Public().(equaler); !ok || !pk.Equal(rc.Cert.PublicKey) {
		return nil, fmt.Errorf("responder signer does not match its certificate")
	}
	if err := rc.Cert.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("responder certificate not issued by %s: %w", ca.Subject, err)
	}
	hasEKU := false
	for _, u := range rc.Cert.ExtKeyUsage {
		hasEKU = hasEKU || u == x509.ExtKeyUsageOCSPSigning
	}
	if !hasEKU {
		return nil, fmt.Errorf("responder certificate lacks the OCSPSigning EKU")
	}
	noCheck := false
	for _, e := range rc.Cert.Extensions {
		noCheck = noCheck || e.Id.Equal(oidNoCheck)
	}
	if !noCheck {
		// RFC 6960 §4.2.2.2.1: without it clients would ask for the
		// responder certificate's own status.
		return nil, fmt.Errorf("responder certificate lacks id-pkix-ocsp-nocheck")
	}
	alg, err := sigalg.For(rc.Cert.PublicKey)
	if err != nil {
		return nil, err
	}
	keyBits, err := publicKeyBits(rc.Cert)
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(keyBits)
	return &signing{cert: rc.Cert, key: rc.Signer, alg: alg, keyID: h[:], revoked: new(atomic.Bool), health: &keyHealth{}}, nil
}

func publicKeyBits(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		Alg asn1.RawValue
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	return spki.Key.Bytes, nil
}

// single is one SingleResponse to encode.
type single struct {
	certID     []byte // CertID DER
	status     Status
	thisUpdate time.Time
	nextUpdate time.Time
}

// buildCertID encodes a CertID for a serial of the CA whose hashes are given.
func buildCertID(h crypto.Hash, nameHash, keyHash []byte, serial *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(hashOID(h))
			b.AddASN1NULL()
		})
		b.AddASN1OctetString(nameHash)
		b.AddASN1OctetString(keyHash)
		b.AddASN1BigInt(serial)
	})
	return b.BytesOrPanic() // cannot fail: every input is well-formed
}

// sign builds and signs a successful OCSPResponse (basic response, byKey
// responder ID, the responder certificate included).
func (s *signing) sign(singles []single, nonce []byte, producedAt time.Time) ([]byte, error) {
	var tb cryptobyte.Builder
	tb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(s.keyID)
		})
		b.AddASN1GeneralizedTime(producedAt.UTC().Truncate(time.Second))
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, sr := range singles {
				addSingle(b, sr)
			}
		})
		if nonce != nil {
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidNonce)
						b.AddASN1OctetString(nonce)
					})
				})
			})
		}
	})
	tbs, err := tb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding ResponseData: %w", err)
	}
	sig, err := s.alg.Sign(s.key, tbs)
	if err != nil {
		return nil, fmt.Errorf("signing OCSP response: %w", err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Enum(0) // successful
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidBasicOCSP)
				b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddBytes(tbs)
						s.alg.AddAlgorithmIdentifier(b)
						b.AddASN1BitString(sig)
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(s.cert.Raw) })
						})
					})
				})
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding OCSPResponse: %w", err)
	}
	return der, nil
}

func addSingle(b *cryptobyte.Builder, sr single) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(sr.certID)
		switch sr.status.State {
		case Good:
			b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(*cryptobyte.Builder) {})
		case Revoked:
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1GeneralizedTime(sr.status.RevokedAt.UTC().Truncate(time.Second))
				if sr.status.Reason != 0 {
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1Enum(int64(sr.status.Reason))
					})
				}
			})
		default:
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(*cryptobyte.Builder) {})
		}
		b.AddASN1GeneralizedTime(sr.thisUpdate.UTC().Truncate(time.Second))
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1GeneralizedTime(sr.nextUpdate.UTC().Truncate(time.Second))
		})
	})
}
