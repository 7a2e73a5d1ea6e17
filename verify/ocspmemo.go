package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"sync"

	"golang.org/x/crypto/ocsp"
)

// ocspMemo remembers parsed and signature-checked OCSP responses, so each
// response is verified once per certificate for the Verifier's lifetime
// (the result depends only on the response, the certificate and its
// issuer). Bounded in results and in bytes: a full memo is emptied, and a
// response larger than ocspMemoMaxResponse is checked every time, never
// kept. The bytes matter because the memo outlives the request: a public
// verifier is sent documents whose DSS holds megabytes of anything in
// place of OCSP responses, and a memo bounded only in entries kept
// thousands of them (gigabytes) alive between requests. Safe for
// concurrent use.
type ocspMemo struct {
	mu sync.Mutex
	// m maps a response's DER to its entry: looking up by string(der)
	// directly copies nothing.
	m map[string]*ocspEntry
	n int
	// bytes is what the entries of m keep alive: each key, and the
	// entry's own copy of the DER that its parsed responses refer to.
	bytes int
}

// ocspEntry is one response's DER, copied once for the memo (a parsed
// response refers to the bytes it was parsed from: parsed from the
// caller's, it would keep alive the whole buffer they were cut from, a
// signature's CMS or more), and its results, one per certificate and
// issuer it was checked for (usually one). der never changes.
type ocspEntry struct {
	der     []byte
	results []ocspResult
}

// ocspMemoSize bounds the OCSP memo (results, over all responses).
const ocspMemoSize = 4096

// ocspMemoBytes bounds the bytes the OCSP memo keeps alive; real
// responses are a few KB, so it holds thousands of them.
const ocspMemoBytes = 16 << 20

// ocspMemoMaxResponse is the largest response the memo keeps (one with a
// responder certificate chain is a few KB).
const ocspMemoMaxResponse = 64 << 10

type ocspResult struct {
	serial *big.Int
	issuer [32]byte // SHA-256 of the issuer certificate's DER (not its DER: nothing of the caller's is kept)
	resp   *ocsp.Response
	err    error
}

func (rd *revocationData) parseOCSP(der []byte, c, issuer *x509.Certificate) (*ocsp.Response, error) {
	if rd.memo == nil {
		rd.memo = &ocspMemo{}
	}
	if len(der) == 0 || len(der) > ocspMemoMaxResponse {
		return ocsp.ParseResponseForCert(der, c, issuer)
	}
	issuerKey := sha256.Sum256(issuer.Raw)
	m := rd.memo
	m.mu.Lock()
	e := m.m[string(der)]
	if e != nil {
		for _, r := range e.results {
			if r.serial.Cmp(c.SerialNumber) == 0 && r.issuer == issuerKey {
				m.mu.Unlock()
				return r.resp, r.err
			}
		}
	}
	m.mu.Unlock()
	// Parse the memo's own copy of der (the entry's, when there is one),
	// so that the response kept refers to nothing of the caller's.
	owned := bytes.Clone(der)
	if e != nil {
		owned = e.der
	}
	resp, err := ocsp.ParseResponseForCert(owned, c, issuer)
	m.mu.Lock()
	defer m.mu.Unlock()
	e = m.m[string(der)]
	cost := 0
	switch {
	case e == nil:
		cost = 2 * len(der) // the key, and the entry's copy
	case &e.der[0] != &owned[0]:
		cost = len(der) // another caller made the entry meanwhile: this result keeps its own copy
	}
	if m.m == nil || m.n >= ocspMemoSize || m.bytes+cost > ocspMemoBytes {
		m.m, m.n, m.bytes = map[string]*ocspEntry{}, 0, 0
		e, cost = nil, 2*len(der)
	}
	if e == nil {
		e = &ocspEntry{der: owned}
		m.m[string(der)] = e
	}
	e.results = append(e.results, ocspResult{serial: c.SerialNumber, issuer: issuerKey, resp: resp, err: err})
	m.n++
	m.bytes += cost
	return resp, err
}
