package crl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/problem"
)

// Refusals of CheckImported and of an ImportedStore, typed so callers
// decide without reading messages.
var (
	// ErrMalformed: not a CRL, or not one this server may publish.
	ErrMalformed = errors.New("not a publishable CRL")
	// ErrWrongIssuer: the CRL is not signed by the issuer's key, or names
	// another issuer.
	ErrWrongIssuer = errors.New("CRL is not the issuer's")
	// ErrNotYetValid: thisUpdate is in the future.
	ErrNotYetValid = errors.New("CRL is not valid yet")
	// ErrLapsed: nextUpdate has passed.
	ErrLapsed = errors.New("CRL has passed its nextUpdate")
	// ErrNotNewer: an imported CRL with this number (or a later one) is
	// already published.
	ErrNotNewer = errors.New("CRL is not newer than the one published")
	// ErrNoImported: no CRL was imported for the issuer.
	ErrNoImported = errors.New("no CRL imported")
	// ErrNotApplied: the CRL was loaded and is served, but
	// ImportedOptions.OnLoad failed on it (it is told again at the next
	// Load).
	ErrNotApplied = errors.New("CRL loaded but not applied")
)

// ImportedCRL is a CRL signed elsewhere (the offline root's, in its key
// ceremony) that the online servers publish as it is.
type ImportedCRL struct {
	// Issuer names the CA ("root"); the CRL is served as {Issuer}.crl.
	Issuer string
	// Number is the CRL number (nil when the CRL has none).
	Number *big.Int
	// ThisUpdate and NextUpdate are the CRL's, in UTC.
	ThisUpdate, NextUpdate time.Time
	// Entries counts the revoked certificates listed.
	Entries int
	// DER is the CRL exactly as signed.
	DER []byte
	// ImportedAt is when it was imported (zero: not known); the nodes of
	// a cluster switch to it ImportedOptions.SwitchAfter later.
	ImportedAt time.Time
}

// ParseCRL accepts one CRL as DER or as a PEM "X509 CRL" block.
func ParseCRL(raw []byte) (*x509.RevocationList, []byte, error) {
	der := raw
	if blk, rest := pem.Decode(raw); blk != nil {
		if blk.Type != "X509 CRL" || strings.TrimSpace(string(rest)) != "" {
			return nil, nil, fmt.Errorf("%w: want exactly one PEM \"X509 CRL\" block", ErrMalformed)
		}
		der = blk.Bytes
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return rl, der, nil
}

// CheckImported checks a CRL signed elsewhere before it is published for
// issuer (named name): its signature verifies with the issuer's key, it
// names the issuer, it has a nextUpdate, and now lies in [thisUpdate,
// nextUpdate). Refusals wrap ErrMalformed, ErrWrongIssuer, ErrNotYetValid
// or ErrLapsed.
func CheckImported(name string, raw []byte, issuer *x509.Certificate, now time.Time) (*ImportedCRL, error) {
	rl, der, err := ParseCRL(raw)
	if err != nil {
		return nil, err
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("%w: the signature does not verify with the key of %s (%s): %v", ErrWrongIssuer, name, issuer.Subject, err)
	}
	if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
		return nil, fmt.Errorf("%w: it names issuer %s, not %s", ErrWrongIssuer, rl.Issuer, issuer.Subject)
	}
	if rl.NextUpdate.IsZero() {
		return nil, fmt.Errorf("%w: it has no nextUpdate", ErrMalformed)
	}
	if !rl.NextUpdate.After(rl.ThisUpdate) {
		return nil, fmt.Errorf("%w: nextUpdate %s is not after thisUpdate %s", ErrMalformed, stamp(rl.NextUpdate), stamp(rl.ThisUpdate))
	}
	switch {
	case now.Before(rl.ThisUpdate):
		return nil, fmt.Errorf("%w: its thisUpdate is %s (now %s): import it then", ErrNotYetValid, stamp(rl.ThisUpdate), stamp(now))
	case !now.Before(rl.NextUpdate):
		return nil, fmt.Errorf("%w: its nextUpdate was %s (now %s): have the root sign a new one", ErrLapsed, stamp(rl.NextUpdate), stamp(now))
	}
	return &ImportedCRL{Issuer: name, Number: rl.Number, ThisUpdate: rl.ThisUpdate.UTC(), NextUpdate: rl.NextUpdate.UTC(),
		Entries: len(rl.RevokedCertificateEntries), DER: der}, nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// NewerThan reports whether c may replace old: a higher CRL number when
// both have one, else a later thisUpdate.
func (c *ImportedCRL) NewerThan(old *ImportedCRL) bool {
	if c.Number != nil && old.Number != nil {
		return c.Number.Cmp(old.Number) > 0
	}
	return c.ThisUpdate.After(old.ThisUpdate)
}

// ImportedStore keeps the imported CRLs, one per issuer, where every
// instance reads them (package store implements it).
type ImportedStore interface {
	// SaveImportedCRL records c as the issuer's CRL unless the one kept is
	// the same (nothing changes) or may not be replaced by it
	// (!c.NewerThan(kept): an error wrapping ErrNotNewer).
	SaveImportedCRL(ctx context.Context, c *ImportedCRL, by string, at time.Time) error
	// ImportedCRL returns the issuer's CRL or an error wrapping ErrNoImported.
	ImportedCRL(ctx context.Context, issuer string) (*ImportedCRL, error)
}

// Imported publishes the CRL imported for one issuer (the offline root):
// it reads it from the store, checks its signature again, and serves it
// until its nextUpdate. It reloads on a schedule, so an import reaches
// every running instance.
type Imported struct {
	name        string
	issuer      *x509.Certificate
	store       ImportedStore
	log         *slog.Logger
	now         func() time.Time
	maxAge      time.Duration
	warnBefore  time.Duration
	switchAfter time.Duration
	onLoad      func(context.Context, *x509.RevocationList) error
	onNone      func(context.Context)
	onBad       func(context.Context, error)
	// retry is the DER of the CRL OnLoad failed on: the next Load that
	// finds it again tells OnLoad again.
	retry []byte

	mu   sync.RWMutex
	cur  *ImportedCRL
	etag string
	// pending are the CRLs loaded while cur was served, oldest first, each
	// served from its from on (its ImportedAt plus switchAfter, at the
	// latest switchAfter after this node loaded it), or the newest as soon
	// as cur lapses. A CRL imported within switchAfter of the one before
	// waits behind it: the nodes that read only the first switch to it at
	// its time, and so do those that read both.
	pending []pendingCRL
}

// pendingCRL is a CRL an Imported serves from its switch time on.
type pendingCRL struct {
	c    *ImportedCRL
	etag string
	from time.Time
}

// ImportedOptions tunes an Imported.
type ImportedOptions struct {
	// MaxAge bounds the HTTP max-age (default 5 minutes, never past nextUpdate).
	MaxAge time.Duration
	// WarnBefore is how long before nextUpdate Warning speaks (default 14 days).
	WarnBefore time.Duration
	// Logger receives loads and failures (discarded when nil).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SwitchAfter, for the nodes of a cluster, is how long after its
	// import a newer CRL replaces the one served: longer than the reload
	// interval (Run), so that every node has read it by then and all
	// switch at once, and a fetch through the load balancer never gets an
	// older CRL after a newer one. Zero (one node) serves it when loaded.
	// A node that serves none yet serves the CRL it loads at once.
	SwitchAfter time.Duration
	// OnLoad, when set, is told of each CRL loaded (at the first Load and
	// whenever a reload finds another one, served at once or staged until
	// its switch time), after its signature verified: the CA refuses at
	// once to issue from the issuing CAs it revokes. When it fails, Load
	// returns its error and the next Load tells it of the same CRL again.
	OnLoad func(context.Context, *x509.RevocationList) error
	// OnNone, when set, is told when a Load finds no CRL imported.
	OnNone func(context.Context)
	// OnBad, when set, is told (with why) when a Load finds a stored CRL
	// other than the one served that cannot be parsed or does not verify
	// (a damaged or edited row): it is neither served nor told to OnLoad,
	// and what it says is unknown. Told again at each Load until replaced.
	OnBad func(context.Context, error)
}

// NewImported returns the publisher of the CRL imported for issuer (its
// certificate) under name ("root": served as root.crl).
func NewImported(name string, issuer *x509.Certificate, st ImportedStore, o ImportedOptions) *Imported {
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * time.Minute
	}
	if o.WarnBefore <= 0 {
		o.WarnBefore = 14 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Imported{name: name, issuer: issuer, store: st, log: o.Logger, now: o.Now, maxAge: o.MaxAge, warnBefore: o.WarnBefore,
		switchAfter: max(o.SwitchAfter, 0), onLoad: o.OnLoad, onNone: o.OnNone, onBad: o.OnBad}
}

// Load reads the issuer's CRL from the store. A CRL whose signature no
// longer verifies (the database was written around the import) is not
// served. It returns ErrNoImported (wrapped) when there is none, and
// ErrNotApplied (wrapped) when the CRL is served but OnLoad failed on it.
func (i *Imported) Load(ctx context.Context) error {
	c, err := i.store.ImportedCRL(ctx, i.name)
	if errors.Is(err, ErrNoImported) && i.onNone != nil {
		i.onNone(ctx)
	}
	if err != nil {
		return err
	}
	i.mu.RLock()
	same := i.cur != nil && bytes.Equal(i.cur.DER, c.DER)
	for _, p := range i.pending {
		same = same || bytes.Equal(p.c.DER, c.DER)
	}
	retry := i.retry != nil && bytes.Equal(i.retry, c.DER)
	i.mu.RUnlock()
	if same {
		i.promote()
		if retry {
			rl, _, err := ParseCRL(c.DER)
			if err != nil {
				return err
			}
			return i.tell(ctx, rl, c.DER)
		}
		return nil
	}
	rl, _, err := ParseCRL(c.DER)
	if err == nil {
		if verr := rl.CheckSignatureFrom(i.issuer); verr != nil {
			err = fmt.Errorf("%w: the stored CRL of %s does not verify: %v", ErrWrongIssuer, i.name, verr)
		}
	}
	if err != nil {
		if i.onBad != nil {
			i.onBad(ctx, err)
		}
		return err
	}
	sum := sha256.Sum256(c.DER)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	now := i.now()
	from := c.ImportedAt.Add(i.switchAfter)
	// imported_at is the importing machine's clock: one ahead of this
	// node's must not hold the new CRL (it may revoke an issuing CA) back
	// for longer than SwitchAfter from now.
	if latest := now.Add(i.switchAfter); from.After(latest) {
		from = latest
	}
	i.mu.Lock()
	// Staged only while the CRL served is current: one that lapsed gives
	// way at once.
	staged := i.cur != nil && i.switchAfter > 0 && !c.ImportedAt.IsZero() && now.Before(from) && now.Before(i.cur.NextUpdate)
	if staged {
		// One due no earlier than this one would never be served.
		i.pending = slices.DeleteFunc(i.pending, func(p pendingCRL) bool { return !p.from.Before(from) })
		i.pending = append(i.pending, pendingCRL{c: c, etag: etag, from: from})
	} else {
		i.cur, i.etag, i.pending = c, etag, nil
	}
	i.mu.Unlock()
	if err := i.tell(ctx, rl, c.DER); err != nil {
		return err
	}
	if staged {
		i.log.InfoContext(ctx, "imported CRL loaded, served from its switch time", "crl", i.name+".crl", "number", numberText(c.Number),
			"serveFrom", from.UTC())
		return nil
	}
	i.log.InfoContext(ctx, "imported CRL loaded", "crl", i.name+".crl", "number", numberText(c.Number),
		"thisUpdate", c.ThisUpdate, "nextUpdate", c.NextUpdate)
	return nil
}

// tell gives OnLoad the CRL rl (its DER der); when it fails, the next Load
// of the same CRL tells it again.
func (i *Imported) tell(ctx context.Context, rl *x509.RevocationList, der []byte) error {
	if i.onLoad == nil {
		return nil
	}
	err := i.onLoad(ctx, rl)
	i.mu.Lock()
	if err != nil {
		i.retry = der
	} else {
		i.retry = nil
	}
	i.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: imported CRL of %s (retried at the next reload): %w", ErrNotApplied, i.name, err)
	}
	return nil
}

// promote serves the CRL loaded while another was served once its switch
// time has come, or at once when the one served has lapsed (a lapsed CRL
// is served as none: 404 and /readyz failing).
func (i *Imported) promote() {
	now := i.now()
	due := func() int { // the pending CRL to serve now, -1: none
		if len(i.pending) > 0 && (i.cur == nil || !now.Before(i.cur.NextUpdate)) {
			return len(i.pending) - 1
		}
		k := -1
		for j, p := range i.pending {
			if !now.Before(p.from) {
				k = j
			}
		}
		return k
	}
	i.mu.RLock()
	k := due()
	i.mu.RUnlock()
	if k < 0 {
		return
	}
	i.mu.Lock()
	if k = due(); k >= 0 {
		p := i.pending[k]
		i.cur, i.etag, i.pending = p.c, p.etag, slices.Clone(i.pending[k+1:])
	}
	i.mu.Unlock()
}

// served returns the CRL served now and its ETag, switching to the one
// loaded last when its time has come.
func (i *Imported) served() (*ImportedCRL, string) {
	i.promote()
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.cur, i.etag
}

func numberText(n *big.Int) string {
	if n == nil {
		return "none"
	}
	return n.String()
}

// Run reloads every interval until ctx ends; failures are logged.
func (i *Imported) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			switch err := i.Load(ctx); {
			case errors.Is(err, ErrNotApplied):
				i.log.ErrorContext(ctx, "the imported CRL is served but could not be applied", "crl", i.name+".crl", "err", err)
			case err != nil && !errors.Is(err, ErrNoImported):
				i.log.ErrorContext(ctx, "reloading the imported CRL failed", "crl", i.name+".crl", "err", err)
			}
		}
	}
}

// Current returns the CRL served, if any (lapsed or not).
func (i *Imported) Current() (*ImportedCRL, bool) {
	c, _ := i.served()
	return c, c != nil
}

// NextUpdate returns the nextUpdate (Unix time) of the CRL loaded, 0
// while there is none (the gauge of RegisterRootMetrics for an imported
// root CRL).
func (i *Imported) NextUpdate() float64 {
	if c, ok := i.Current(); ok {
		return float64(c.NextUpdate.Unix())
	}
	return 0
}

// Ready is an error while there is no CRL to publish: none imported, or
// the one imported has passed its nextUpdate.
func (i *Imported) Ready(context.Context) error {
	c, ok := i.Current()
	now := i.now()
	switch {
	case !ok:
		return fmt.Errorf("%w for %s: sign one in the key ceremony (thiqa ca crl) and import it (thiqa ca crl import)", ErrNoImported, i.name)
	case !now.Before(c.NextUpdate):
		return fmt.Errorf("%w: the %s CRL lapsed at %s: sign a new one in the key ceremony and import it", ErrLapsed, i.name, stamp(c.NextUpdate))
	}
	return nil
}

// Warning is non-empty within WarnBefore of the CRL's nextUpdate.
func (i *Imported) Warning() string {
	c, ok := i.Current()
	if !ok {
		return ""
	}
	left := c.NextUpdate.Sub(i.now())
	if left <= 0 || left > i.warnBefore {
		return ""
	}
	return fmt.Sprintf("the %s CRL lapses at %s (in %d days): hold the key ceremony, sign a new one (thiqa ca crl) and import it (thiqa ca crl import)",
		i.name, stamp(c.NextUpdate), int(left.Hours()/24))
}

// ServeHTTP serves GET/HEAD /crl/{name}.crl until the CRL's nextUpdate,
// with the headers the Publisher sets; 404 when there is none to serve.
func (i *Imported) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Error(w, http.StatusMethodNotAllowed, "CRLs are fetched with GET")
		return
	}
	c, etag := i.served()
	now := i.now()
	if c == nil || !now.Before(c.NextUpdate) {
		problem.Error(w, http.StatusNotFound, "no current CRL of "+i.name)
		return
	}
	maxAge := min(c.NextUpdate.Sub(now), i.maxAge)
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	h.Set("Expires", now.Add(maxAge).UTC().Format(http.TimeFormat))
	http.ServeContent(w, r, i.name+".crl", c.ThisUpdate, bytes.NewReader(c.DER))
}
