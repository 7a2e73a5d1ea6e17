package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// Signer is a private key on the token. It implements crypto.Signer for
// ECDSA (ASN.1 DER signatures, like crypto/ecdsa), RSA PKCS#1 v1.5 and
// RSA-PSS (opts of type *rsa.PSSOptions). It is safe for concurrent use and
// keeps working across token recoveries.
type Signer struct {
	t     *Token
	label string
	id    []byte
	kt    KeyType
	pub   crypto.PublicKey
	uri   string
	m     atomic.Pointer[signerMetrics] // nil: metrics off

	obj atomic.Pointer[keyHandle] // private key handle, per generation

	sessionCopy atomic.Bool // sign with a session copy (UseSessionCopies)

	// Prebuilt mechanisms (read-only, shared by all calls).
	mechECDSA []*pkcs11.Mechanism
	mechPKCS1 []*pkcs11.Mechanism
	mechPSS   [4][]*pkcs11.Mechanism // salt = hash length; index by hashIndex
	orderLen  int                    // ECDSA: byte length of the group order
}

type keyHandle struct {
	gen uint64
	h   pkcs11.ObjectHandle
}

// newSigner builds a Signer for the key (label, id) whose private handle
// priv is valid in session s. kt 0 means "read it from the token".
func (t *Token) newSigner(s *session, label string, id []byte, kt KeyType, priv pkcs11.ObjectHandle) (*Signer, error) {
	pub, got, err := t.readPublic(s, label, id, priv)
	if err != nil {
		return nil, err
	}
	if kt != 0 && got != kt {
		return nil, fmt.Errorf("hsm: key %q is %s, expected %s", label, got, kt)
	}
	sg := &Signer{
		t: t, label: label, id: append([]byte(nil), id...), kt: got, pub: pub,
		uri: t.keyURI(label, id),
	}
	if t.m != nil {
		name := label
		if t.keyMet != nil {
			name = t.keyMet(label)
		}
		sg.m.Store(t.m.forKey(name))
	}
	sg.obj.Store(&keyHandle{gen: s.gen, h: priv})
	if got.IsRSA() {
		sg.mechPKCS1 = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
		for i, h := range pssHashes {
			sg.mechPSS[i] = pssMechanism(h, h.Size())
		}
	} else {
		sg.mechECDSA = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
		sg.orderLen = (pub.(*ecdsa.PublicKey).Curve.Params().N.BitLen() + 7) / 8
	}
	return sg, nil
}

// SetMetricLabel makes the key's signatures count under the "key" label
// name in the HSM metrics from now on, e.g. the certificate profile of a
// citizen's key ("citizen-signing"). Labels must come from a small fixed
// set and never identify a person or a credential: metrics are not a
// place for personal data, and one series per citizen would not scale.
func (sg *Signer) SetMetricLabel(name string) {
	if sg.t.m != nil {
		sg.m.Store(sg.t.m.forKey(name))
	}
}

// Public returns the *ecdsa.PublicKey or *rsa.PublicKey read from the token.
func (sg *Signer) Public() crypto.PublicKey { return sg.pub }

// Label returns the key's CKA_LABEL.
func (sg *Signer) Label() string { return sg.label }

// ID returns a copy of the key's CKA_ID.
func (sg *Signer) ID() []byte { return append([]byte(nil), sg.id...) }

// URI returns the RFC 7512 URI naming the private key.
func (sg *Signer) URI() string { return sg.uri }

// KeyType returns the key's algorithm and size.
func (sg *Signer) KeyType() KeyType { return sg.kt }

// Sign signs digest (the hash of the message, as crypto.Signer requires).
// The random source is ignored: the token draws its own randomness.
//
// ECDSA keys return an ASN.1 DER signature. RSA keys sign PKCS#1 v1.5 with
// SHA-224/256/384/512 DigestInfo, or RSA-PSS when opts is *rsa.PSSOptions:
// MGF1 with the same hash, salt as long as the hash for
// PSSSaltLengthEqualsHash and PSSSaltLengthAuto (which Go's verifier
// accepts), or the explicit length given. SHA-1 is refused.
func (sg *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return sg.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with a context: the signature waits for a session and
// for the token until ctx's deadline or the call timeout, whichever comes
// first (Sign: the call timeout). When it ends so, the error wraps
// ErrTimeout and is marked as an outage (outage.Is), or wraps
// context.Canceled, unmarked, when the caller cancelled ctx.
func (sg *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	start := time.Now()
	sig, err := sg.sign(ctx, digest, opts)
	if m := sg.m.Load(); m != nil {
		m.duration.Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
			m.ok.Inc()
		case errors.Is(err, errVerify):
			m.verifyFailed.Inc()
		default:
			m.failed.Inc()
		}
	}
	return sig, err
}

var errVerify = errors.New("signature does not verify with the key's public key")

func (sg *Signer) sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, fmt.Errorf("hsm: signing with key %q: no signer options (hash) given", sg.label)
	}
	var (
		mech  []*pkcs11.Mechanism
		input []byte
		pss   *rsa.PSSOptions
		salt  int
	)
	hash := opts.HashFunc()
	if hash != 0 && len(digest) != hash.Size() {
		return nil, fmt.Errorf("hsm: signing with key %q: digest is %d bytes, %v needs %d", sg.label, len(digest), hash, hash.Size())
	}
	if !sg.kt.IsRSA() {
		if len(digest) == 0 {
			return nil, fmt.Errorf("hsm: signing with key %q: empty digest", sg.label)
		}
		if _, ok := opts.(*rsa.PSSOptions); ok {
			return nil, fmt.Errorf("hsm: signing with key %q: RSA-PSS options for an EC key", sg.label)
		}
		mech, input = sg.mechECDSA, digest
		if len(input) > sg.orderLen { // truncate like crypto/ecdsa
			input = input[:sg.orderLen]
		}
	} else {
		hi := hashIndex(hash)
		if hi < 0 {
			return nil, fmt.Errorf("hsm: signing with key %q: hash %v not allowed (SHA-224, SHA-256, SHA-384 or SHA-512)", sg.label, hash)
		}
		if o, ok := opts.(*rsa.PSSOptions); ok {
			pss = o
			salt = o.SaltLength
			switch {
			case salt == rsa.PSSSaltLengthAuto || salt == rsa.PSSSaltLengthEqualsHash:
				salt = hash.Size()
				mech = sg.mechPSS[hi]
			case salt > 0 && salt <= (sg.pub.(*rsa.PublicKey).N.BitLen()+6)/8-hash.Size()-2:
				mech = pssMechanism(hash, salt)
			default:
				return nil, fmt.Errorf("hsm: signing with key %q: PSS salt length %d out of range", sg.label, o.SaltLength)
			}
			input = digest
		} else {
			mech = sg.mechPKCS1
			prefix := digestInfoPrefix[hi]
			input = make([]byte, len(prefix)+len(digest))
			copy(input, prefix)
			copy(input[len(prefix):], digest)
		}
	}

	var sig []byte
	err := sg.t.do(ctx, func(s *session) error {
		if h := sg.t.testHookSign; h != nil {
			h(s)
		}
		obj, err := sg.handle(s)
		if err != nil {
			return err
		}
		if obj, err = sg.t.signingHandle(s, sg, obj); err != nil {
			return err
		}
		if err := sg.t.p.SignInit(s.h, mech, obj); err != nil {
			return err
		}
		sig, err = sg.t.p.Sign(s.h, input)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: signing with key %q: %w", sg.label, err)
	}
	if !sg.kt.IsRSA() {
		if sig, err = ecdsaDER(sig); err != nil {
			return nil, fmt.Errorf("hsm: signing with key %q: %w", sg.label, err)
		}
	}
	if sg.t.verify {
		var ok bool
		switch pub := sg.pub.(type) {
		case *ecdsa.PublicKey:
			ok = ecdsa.VerifyASN1(pub, digest, sig)
		case *rsa.PublicKey:
			if pss != nil {
				ok = rsa.VerifyPSS(pub, hash, digest, sig, &rsa.PSSOptions{SaltLength: salt, Hash: hash}) == nil
			} else {
				ok = rsa.VerifyPKCS1v15(pub, hash, digest, sig) == nil
			}
		}
		if !ok {
			sg.t.log.Error("hsm signature failed verification", "key", sg.label)
			return nil, fmt.Errorf("hsm: signing with key %q: %w", sg.label, errVerify)
		}
	}
	return sig, nil
}

// handle returns the private key handle valid in s's generation, finding
// it again after a recovery (handles may change when the library restarts).
func (sg *Signer) handle(s *session) (pkcs11.ObjectHandle, error) {
	if kh := sg.obj.Load(); kh.gen == s.gen {
		return kh.h, nil
	}
	h, err := findPrivate(sg.t.p, s, sg.label, sg.id)
	if err != nil {
		return 0, err
	}
	sg.obj.Store(&keyHandle{gen: s.gen, h: h})
	return h, nil
}

// Hashes allowed for RSA, in hashIndex order.
var pssHashes = [4]crypto.Hash{crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512}

func hashIndex(h crypto.Hash) int {
	switch h {
	case crypto.SHA224:
		return 0
	case crypto.SHA256:
		return 1
	case crypto.SHA384:
		return 2
	case crypto.SHA512:
		return 3
	}
	return -1
}

// DER DigestInfo prefixes (RFC 8017, section 9.2, note 1), by hashIndex.
var digestInfoPrefix = [4][]byte{
	{0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

func pssMechanism(h crypto.Hash, salt int) []*pkcs11.Mechanism {
	var mh, mgf uint
	switch h {
	case crypto.SHA224:
		mh, mgf = pkcs11.CKM_SHA224, pkcs11.CKG_MGF1_SHA224
	case crypto.SHA256:
		mh, mgf = pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256
	case crypto.SHA384:
		mh, mgf = pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384
	case crypto.SHA512:
		mh, mgf = pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512
	}
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(mh, mgf, uint(salt)))}
}

// ecdsaDER turns the PKCS#11 signature r||s into ASN.1 DER
// SEQUENCE { INTEGER r, INTEGER s }, in one allocation.
func ecdsaDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 || len(raw) > 248 {
		return nil, fmt.Errorf("token returned a %d-byte ECDSA signature", len(raw))
	}
	r, s := trimInt(raw[:len(raw)/2]), trimInt(raw[len(raw)/2:])
	rl, sl := intLen(r), intLen(s)
	body := 2 + rl + 2 + sl // r, s ≤ 124 bytes: short-form INTEGER lengths, body < 256
	out := make([]byte, 0, 3+body)
	out = append(out, 0x30)
	if body >= 0x80 {
		out = append(out, 0x81)
	}
	out = append(out, byte(body))
	out = appendInt(out, r, rl)
	out = appendInt(out, s, sl)
	return out, nil
}

func trimInt(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// intLen is the content length of the DER INTEGER for unsigned b.
func intLen(b []byte) int {
	if b[0]&0x80 != 0 {
		return len(b) + 1
	}
	return len(b)
}

func appendInt(out, b []byte, n int) []byte {
	out = append(out, 0x02, byte(n))
	if n > len(b) {
		out = append(out, 0)
	}
	return append(out, b...)
}
