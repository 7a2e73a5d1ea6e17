package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"math/big"

	"filippo.io/nistec"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// p384Window is the width in bits of the windows of a fixed-base table:
// 64 windows of 63 points (about 0.7 MB), 128 point additions per
// verification instead of Go's 384 doublings and 192 additions.
const p384Window = 6

// p384Table holds, for one point P, the multiples d·2^(w·i)·P for every
// window i and digit d in [1, 2^w-1], so that k·P is a sum of one table
// entry per non-zero window of k, with no doubling.
type p384Table [][]*nistec.P384Point

func newP384Table(p *nistec.P384Point) p384Table {
	windows := (384 + p384Window - 1) / p384Window
	t := make(p384Table, windows)
	base := nistec.NewP384Point().Set(p)
	for i := range t {
		row := make([]*nistec.P384Point, 1<<p384Window-1)
		row[0] = nistec.NewP384Point().Set(base)
		for d := 1; d < len(row); d++ {
			row[d] = nistec.NewP384Point().Add(row[d-1], base)
		}
		t[i] = row
		for range p384Window {
			base.Double(base)
		}
	}
	return t
}

// mulAdd adds k·P to acc; k is a 48-byte big-endian scalar. It takes time
// depending on k: only for public values (verification), never for secrets.
func (t p384Table) mulAdd(acc *nistec.P384Point, k *[48]byte) {
	for i := range t {
		if d := scalarWindow(k, i*p384Window); d != 0 {
			acc.Add(acc, t[i][d-1])
		}
	}
}

// scalarWindow returns the p384Window bits of k starting at bit pos
// (bit 0 is the least significant bit of the last byte).
func scalarWindow(k *[48]byte, pos int) uint {
	var v uint
	for b := range p384Window {
		p := pos + b
		i := len(k) - 1 - p/8
		if i < 0 {
			break
		}
		v |= uint(k[i]>>(p%8)&1) << b
	}
	return v
}

// p384Verifier verifies ECDSA P-384 signatures made by one key (the CA's)
// about five times faster than crypto/ecdsa, with precomputed tables of
// multiples of both the generator and the public key. Verification handles
// only public values, so it need not run in constant time. It is the
// standard ECDSA verification (SEC 1 §4.1.4); tests compare it with
// crypto/ecdsa on valid and invalid signatures.
type p384Verifier struct {
	g, q p384Table
	n    *big.Int
}

func newP384Verifier(pub *ecdsa.PublicKey) (*p384Verifier, error) {
	if pub.Curve != elliptic.P384() {
		return nil, errors.New("not a P-384 key")
	}
	raw, err := pub.Bytes()
	if err != nil {
		return nil, err
	}
	q, err := nistec.NewP384Point().SetBytes(raw)
	if err != nil {
		return nil, err
	}
	return &p384Verifier{
		g: newP384Table(nistec.NewP384Point().SetGenerator()),
		q: newP384Table(q),
		n: pub.Curve.Params().N,
	}, nil
}

// parseECDSASignature reads ECDSA-Sig-Value ::= SEQUENCE { r INTEGER,
// s INTEGER } as strictly as crypto/ecdsa does: DER, nothing after either
// integer inside the SEQUENCE, nothing after the SEQUENCE.
func parseECDSASignature(sig []byte) (r, s *big.Int, ok bool) {
	r, s = new(big.Int), new(big.Int)
	var inner cryptobyte.String
	input := cryptobyte.String(sig)
	if !input.ReadASN1(&inner, cbasn1.SEQUENCE) || !input.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, nil, false
	}
	return r, s, true
}

// verifyASN1 reports whether sig (DER ECDSA-Sig-Value) is a valid
// signature of digest by the verifier's key.
func (v *p384Verifier) verifyASN1(digest, sig []byte) bool {
	r, s, ok := parseECDSASignature(sig)
	n := v.n
	if !ok || r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return false
	}
	rs := struct{ R, S *big.Int }{r, s}
	// e is the leftmost 384 bits of the digest (the order's bit length).
	if len(digest) > 48 {
		digest = digest[:48]
	}
	e := new(big.Int).SetBytes(digest)
	w := new(big.Int).ModInverse(rs.S, n)
	if w == nil {
		return false
	}
	u1 := e.Mul(e, w)
	u1.Mod(u1, n)
	u2 := w.Mul(rs.R, w)
	u2.Mod(u2, n)
	var k1, k2 [48]byte
	u1.FillBytes(k1[:])
	u2.FillBytes(k2[:])
	x := nistec.NewP384Point() // the point at infinity
	v.g.mulAdd(x, &k1)
	v.q.mulAdd(x, &k2)
	xb, err := x.BytesX() // fails for the point at infinity
	if err != nil {
		return false
	}
	xr := new(big.Int).SetBytes(xb)
	return xr.Mod(xr, n).Cmp(rs.R) == 0
}
