package crl

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"time"
)

// Shared publication: the nodes of a cluster (one database, one token)
// serve the same CRLs. Of the nodes whose publishers share a SharedStore,
// the one holding a CA's lock (SharedStore.Exclusive) signs that CA's
// CRLs when the newest stored ones are due, and stores them; every node
// reads the newest stored pair of each partition (its complete CRL and
// the delta relative to it) and switches to it at the pair's ServeFrom,
// set far enough ahead that every node has read it by then. So at any
// moment every node serves the same pair (up to their clocks' skew), each
// complete CRL is signed once per regenerateEvery, CRL numbers served
// never go back, and the delta served always names the complete CRL served
// with it as its base.

// Published is what one partition of a CA serves: its complete CRL and,
// with delta CRLs, the delta whose base is that complete CRL.
type Published struct {
	Issuer    string
	Partition int
	// Fingerprint names the generator settings the pair was made under
	// (issuer certificate, base URL, validity, schedule, deltas); a pair
	// made under other settings is due for regeneration.
	Fingerprint string
	// Complete is the complete CRL; its DER is nil when the store was asked
	// to leave it out (the reader holds it already).
	Complete *CRL
	// Delta is the delta CRL relative to Complete (BaseNumber equals
	// Complete.Number), nil without delta CRLs.
	Delta *CRL
	// ServeFrom is when the nodes start serving the pair.
	ServeFrom time.Time
}

// SharedStore keeps the CRLs the nodes sharing a database serve (package
// store implements it over PostgreSQL).
type SharedStore interface {
	// Exclusive runs fn while the lock named name is held, so that one
	// node at a time runs it. fn writes through the same store.
	Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) error
	// PublishedHeads returns the newest stored pair of each partition of
	// issuer, without their DER.
	PublishedHeads(ctx context.Context, issuer string) ([]*Published, error)
	// PublishedCRL returns the newest stored pair of one partition with
	// its DER, leaving out the complete CRL's when its number is
	// skipComplete (non-nil). It returns (nil, nil) when there is none.
	PublishedCRL(ctx context.Context, issuer string, partition int, skipComplete *big.Int) (*Published, error)
	// SavePublished stores p (complete and delta, with their DER) as its
	// partition's newest pair; a stored pair that is as new or newer is
	// kept and an error wrapping ErrNotNewer returned.
	SavePublished(ctx context.Context, p *Published) error
	// SaveDelta replaces the delta of the stored pair whose complete CRL is
	// delta's base, and its ServeFrom; when the stored complete CRL is
	// another one, or the stored delta is as new or newer, it changes
	// nothing and returns an error wrapping ErrNotNewer.
	SaveDelta(ctx context.Context, delta *CRL, serveFrom time.Time) error
}

// ShareOptions tunes a shared publication; zero values take the defaults.
type ShareOptions struct {
	// SyncEvery is how often a node reads the newest stored CRLs (1 s).
	SyncEvery time.Duration
	// SwitchDelay is how long after a pair is stored the nodes switch to
	// it (5 s); it must exceed SyncEvery by the time a read takes.
	SwitchDelay time.Duration
}

// fingerprint names the settings that shape g's CRLs besides their entries.
func (g *Generator) fingerprint() string {
	h := sha256.New()
	h.Write(g.iss.Cert.Raw)
	h.Write([]byte(g.set.BaseURL))
	var b [8 * 2]byte
	binary.BigEndian.PutUint64(b[:8], uint64(g.set.Validity))
	binary.BigEndian.PutUint64(b[8:], uint64(g.set.RegenerateEvery))
	h.Write(b[:])
	flags := []byte{0, 0}
	if g.deltas != nil {
		flags[0] = 1
	}
	if g.iss.CACerts {
		flags[1] = 1
	}
	h.Write(flags)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
