package path

import (
	"bytes"
	"crypto/x509"
	"sync"
)

// nameMemo remembers the prepared form of every name one validation (and
// the revocation-issuer validations nested in it) compares: path building
// matches each certificate's issuer against every candidate's subject, so
// the same few names are compared hundreds of times. Two names with
// prepared forms are equal exactly when fastNameEqual says so; the others
// go through nameEqual. Safe for concurrent use.
type nameMemo struct {
	mu sync.Mutex
	m  map[string]preparedName
}

// preparedName is a name reduced to what fastNameEqual compares; ok is
// false for names it does not handle.
type preparedName struct {
	key string
	ok  bool
}

func newNameMemo() *nameMemo { return &nameMemo{m: map[string]preparedName{}} }

// equal is nameEqual, remembered.
func (m *nameMemo) equal(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if m == nil {
		return nameEqual(a, b)
	}
	pa, pb := m.prepared(a), m.prepared(b)
	if pa.ok && pb.ok {
		return pa.key == pb.key
	}
	return nameEqual(a, b)
}

// selfIssued is selfIssued, remembered.
func (m *nameMemo) selfIssued(c *x509.Certificate) bool { return m.equal(c.RawIssuer, c.RawSubject) }

func (m *nameMemo) prepared(der []byte) preparedName {
	m.mu.Lock()
	p, ok := m.m[string(der)]
	m.mu.Unlock()
	if ok {
		return p
	}
	p = prepareName(der)
	m.mu.Lock()
	if len(m.m) >= maxMemoNames {
		clear(m.m)
	}
	m.m[string(der)] = p
	m.mu.Unlock()
	return p
}

// maxMemoNames bounds a memo fed by hostile certificate pools.
const maxMemoNames = 4096

// prepareName encodes the RDNs of a name that fastNameEqual handles as
// length-prefixed OID and folded value pairs: equal encodings, equal names.
func prepareName(der []byte) preparedName {
	seq, ok := rdnSequence(der)
	if !ok {
		return preparedName{}
	}
	var b []byte
	for !seq.Empty() {
		oid, val, ok := readSingleRDN(&seq)
		if !ok {
			return preparedName{}
		}
		b = appendLenPrefixed(b, oid)
		start := len(b)
		b = append(b, 0, 0, 0, 0) // length of the folded value, filled below
		i := 0
		for {
			c, more := nextFolded(val, &i)
			if !more {
				break
			}
			b = append(b, c)
		}
		n := len(b) - start - 4
		b[start], b[start+1], b[start+2], b[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	}
	return preparedName{key: string(b), ok: true}
}

func appendLenPrefixed(b, v []byte) []byte {
	n := len(v)
	return append(append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n)), v...)
}
