package verify

import (
	"crypto"
	"encoding"
	"errors"
	"fmt"
	"hash"
)

// maxPrefixStates bounds the hash states a document keeps per algorithm.
const maxPrefixStates = 1024

// prefixCheckpoints is how many states, spread evenly over the file, a
// first range leaves behind as it is hashed, besides the one at its end.
const prefixCheckpoints = 256

// errHashBudget is wrapped when a document's ByteRanges ask for more bytes
// to be hashed than hashBudget allows.
var errHashBudget = errors.New("the signatures of this document ask to hash too many bytes")

// hashBudget is the number of bytes the signatures of a document of size
// bytes may hash together. Honest documents hash the common prefix once per
// algorithm, each second range (inside its own revision) once and at most a
// checkpoint step more per signature: a few times the file. A document whose
// signatures all cover the same large tail from different starts would
// otherwise hash it once per signature.
func hashBudget(size int64) int64 {
	return 8*size + 16<<20
}

// prefixHashes keeps, per hash algorithm, the state of the hash after the
// first bytes of the file, for the signatures of one document. Every
// ByteRange starts with the file's first bytes up to the signature's
// /Contents, so without it 256 signatures over a 64 MiB file hashed 16 GiB
// (15 s of CPU for one upload); with it each byte of that prefix is hashed
// once. It also counts the bytes hashed against limit.
type prefixHashes struct {
	states map[crypto.Hash][]prefixState
	// step is the distance between checkpoints (0: only range ends).
	step int64
	// limit is the budget of bytes to hash (0: none); hashed what was spent.
	limit, hashed int64
}

// prefixState is a marshalled hash state after the file's first off bytes.
type prefixState struct {
	off   int64
	state []byte
}

// spend takes n bytes from the budget, or fails with errHashBudget.
func (p *prefixHashes) spend(n int64) error {
	if p.limit > 0 && p.hashed+n > p.limit {
		return fmt.Errorf("%w (more than %d bytes)", errHashBudget, p.limit)
	}
	p.hashed += n
	return nil
}

// newPrefixHashes prepares the hashing of a document of size bytes: a first
// range leaves a state every prefixCheckpoints-th of the file (at least a
// buffer apart), so a later, shorter range in any order resumes at most that
// far before its end, and the bytes hashed are bounded by hashBudget.
func newPrefixHashes(size int64) prefixHashes {
	return prefixHashes{
		step:  max(hashBufSize, (size+prefixCheckpoints-1)/prefixCheckpoints),
		limit: hashBudget(size),
	}
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
