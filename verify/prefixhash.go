package verify

import (
	"crypto"
	"encoding"
	"hash"
)

// maxPrefixStates bounds the hash states a document keeps per algorithm.
const maxPrefixStates = 1024

// prefixHashes keeps, per hash algorithm, the state of the hash after the
// first bytes of the file, for the signatures of one document. Every
// ByteRange starts with the file's first bytes up to the signature's
// /Contents, so without it 256 signatures over a 64 MiB file hashed 16 GiB
// (15 s of CPU for one upload); with it each byte of that prefix is hashed
// once.
type prefixHashes struct {
	states map[crypto.Hash][]prefixState
}

// prefixState is a marshalled hash state after the file's first off bytes.
type prefixState struct {
	off   int64
	state []byte
}

// resume sets d to the longest saved state of h no longer than n bytes and
// returns its length (0 when there is none or d cannot be restored).
func (p *prefixHashes) resume(h crypto.Hash, d hash.Hash, n int64) int64 {
	u, ok := d.(encoding.BinaryUnmarshaler)
	if !ok {
		return 0
	}
	best := prefixState{}
	for _, s := range p.states[h] {
		if s.off <= n && s.off > best.off {
			best = s
		}
	}
	if best.off == 0 || u.UnmarshalBinary(best.state) != nil {
		d.Reset()
		return 0
	}
	return best.off
}

// save records d, the state of h after the file's first off bytes.
func (p *prefixHashes) save(h crypto.Hash, d hash.Hash, off int64) {
	m, ok := d.(encoding.BinaryMarshaler)
	if !ok || len(p.states[h]) >= maxPrefixStates {
		return
	}
	for _, s := range p.states[h] {
		if s.off == off {
			return
		}
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return
	}
	if p.states == nil {
		p.states = map[crypto.Hash][]prefixState{}
	}
	p.states[h] = append(p.states[h], prefixState{off: off, state: st})
}
