package timestamp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
)

// SerialCounter names the store counter of token serials: one for the life
// of the TSA, whatever its unit keys and instances.
const SerialCounter = "tsa"

// AuditLog is the audit log as the TSA service needs it (*audit.Log): the
// collective records of its tokens and the records of its renewals.
type AuditLog interface {
	Grouper
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// ServiceOptions are the parts a Service is built from.
type ServiceOptions struct {
	// Units finds, certifies and renews the unit; required.
	Units *Units
	// Config is the TSA profile every unit's Authority applies.
	Config Config
	// Clock, Serials and Audit serve every unit's Authority: the clock
	// discipline, the serial allocator (over SerialCounter) and the log
	// that records each token and each renewal. Required.
	Clock   ClockChecker
	Serials SerialAllocator
	Audit   AuditLog
	// Identify names the requester of an HTTP request for the token
	// record; nil records none.
	Identify func(*http.Request) string
	// RenewBefore is how long before its certificate expires a unit is
	// replaced.
	RenewBefore time.Duration
	// Actor renews the unit in the audit log (cmd/thiqa: "thiqa-serve").
	Actor string
	// Renewals coordinates renewal between the instances that share this
	// TSA's store, token and data folder: one renews a unit due, the
	// others adopt the unit it made. Nil: this instance renews alone.
	Renewals UnitRenewals
	// Logger receives structured logs; discarded when nil.
	Logger *slog.Logger
	// Registerer receives the TSA metrics: each renewal's Authority takes
	// over the series of the one it replaces. None when nil.
	Registerer prometheus.Registerer
	// Now returns the current time; time.Now when nil (tests set it).
	Now func() time.Time
	// Status says whether a unit certificate was revoked: the unit a
	// renewal replaced (Units.PreviousPath) signs after a restart before
	// the new unit's notBefore only when Status knows it as issued and
	// not revoked. Nil: it never does.
	Status UnitStatus
	// Issuers says whether the root revoked the issuing CA that certified
	// a unit (*ca.RevokedIssuers): such a unit signs nothing, each refusal
	// is answered 503 systemFailure, and the unit is due for renewal at once
	// (it succeeds once the CA is rolled over). Nil: never.
	Issuers IssuerStatus
	// ClockRecords reads the audit log (store.DB): at start, when the
	// log's last timestamp.clock record is a loss with no return after it
	// (the previous process stopped while the clock was still lost, or
	// crashed while it was lost or its return settled),
	// the service's first clock record says so (previousLossUnreturned).
	// Nil: the log is not read.
	ClockRecords audit.RecordFinder
}

// generation is one unit's Authority and handler.
type generation struct {
	unit    *Unit
	auth    *Authority
	handler http.Handler
	metrics *collectorSet
	// previous is the generation this one replaced, nil when none: it
	// serves while the clock is before unit's notBefore (serving).
	previous *generation
}

// Service is the TSA as `thiqa serve` runs it: it serves RFC 3161 with the
// current unit and renews the unit (a new key, a new certificate) before
// its certificate expires, swapping the unit in without a pause. It is safe
// for concurrent use.
type Service struct {
	o   ServiceOptions
	log *slog.Logger

	cur atomic.Pointer[generation]
	// budget bounds the recorded refusals of every unit (refusal.go): a
	// renewal does not give a flood a new budget.
	budget *refusalBudget

	mu        sync.Mutex // serialises renewals
	noRenewal string     // serial of a unit that renewal cannot improve on
	holder    string     // names this instance in its claims to renew (Renewals)

	// kick asks RenewLoop for a check now (a unit just revoked).
	kick chan struct{}
	// revokedRetry is RenewLoop's first wait after a failed renewal of a
	// revoked unit (the const revokedRetry; tests shorten it).
	revokedRetry time.Duration

	// closeSerials closes the serial allocator the service made itself
	// (NewServiceFromConfig); nil otherwise.
	closeSerials func()
}

// Close records a return of the clock in sync that had not yet held for
// a minute (see auditedClock.stop), and stops the background work of the
// serial allocator the service made (NewServiceFromConfig), so that
// nothing reserves serials in the store once it is closed. Requests after
// Close still work. An allocator passed in ServiceOptions is the caller's
// to close.
func (s *Service) Close() {
	if c, ok := s.o.Clock.(*auditedClock); ok {
		c.stop(context.Background())
	}
	if s.closeSerials != nil {
		s.closeSerials()
	}
}

// NewService loads the unit (an error wrapping fs.ErrNotExist when there is
// none yet), replaces it first when its certificate has expired, and
// renews it when it is due; a failed renewal of a unit still valid is
// logged and retried by RenewLoop.
func NewService(ctx context.Context, o ServiceOptions) (*Service, error) {
	if o.Units == nil || o.Clock == nil || o.Serials == nil || o.Audit == nil {
		return nil, errors.New("timestamp: Units, Clock, Serials and Audit are required")
	}
	holder, err := newHolder()
	if err != nil {
		return nil, err
	}
	s := &Service{o: o, log: o.Logger, holder: holder, kick: make(chan struct{}, 1), revokedRetry: revokedRetry, budget: newRefusalBudget(o.Now)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// Every unit's Authority checks the clock through it: its changes of
	// state are recorded (ActionClock).
	ac := newAuditedClock(o.Clock, o.Audit, s.log)
	if o.ClockRecords != nil {
		ac.findUnreturnedLoss(ctx, o.ClockRecords)
	}
	s.o.Clock = ac
	unit, err := o.Units.Load(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if now.After(unit.Cert.NotAfter) {
		// The expired unit never signs again: renew before serving.
		s.log.Warn("the TSA unit certificate has expired; renewing before serving", "notAfter", unit.Cert.NotAfter)
		next, err := s.replaceExpired(ctx, unit, now)
		if err != nil {
			return nil, fmt.Errorf("the TSA unit certificate expired on %s and renewing it failed: %w", unit.Cert.NotAfter.UTC().Format(time.RFC3339), err)
		}
		unit = next
	}
	if prev := s.previousUnit(ctx, unit); prev != nil {
		// Installed first, it is the one unit replaces: it signs while
		// the clock is before unit's notBefore (serving).
		if err := s.install(prev); err != nil {
			return nil, err
		}
	}
	if err := s.install(unit); err != nil {
		return nil, err
	}
	if err := s.RenewIfDue(ctx, now); err != nil {
		s.logRenewFailure(err)
	}
	unit = s.Unit()
	s.log.Info("TSA unit ready", "key", unit.Key.URI, "serial", hex.EncodeToString(unit.Cert.SerialNumber.Bytes()),
		"notAfter", unit.Cert.NotAfter, "clock", o.Config.Clock.Source)
	return s, nil
}

// now is the service's clock (ServiceOptions.Now).
func (s *Service) now() time.Time {
	if s.o.Now != nil {
		return s.o.Now()
	}
	return time.Now()
}

// previousUnit returns the unit that unit replaced when unit is not valid
// yet (a restart just after a renewal, with the clock a little behind the
// CA's) and that one can sign now; nil otherwise, logged: the service then
// is not ready until unit is valid, as before.
func (s *Service) previousUnit(ctx context.Context, unit *Unit) *Unit {
	now := s.now()
	if !now.Before(unit.Cert.NotBefore) {
		return nil
	}
	prev, err := s.o.Units.LoadPrevious(ctx, unit.Cert, now)
	if err == nil {
		// It may have been replaced because it was revoked (its key
		// compromised, its time not trusted): a revoked unit never signs.
		err = s.notRevoked(ctx, prev.Cert)
	}
	if err != nil {
		s.log.Error("the TSA unit certificate is not valid yet and no previous unit can sign: no tokens until it is",
			"notBefore", unit.Cert.NotBefore.UTC().Format(time.RFC3339), "err", err)
		return nil
	}
	s.log.Warn("the TSA unit certificate is not valid yet: the unit it replaced signs until it is",
		"notBefore", unit.Cert.NotBefore, "previous", hex.EncodeToString(prev.Cert.SerialNumber.Bytes()), "previousNotAfter", prev.Cert.NotAfter)
	return prev
}

// collectorSet is a prometheus.Registerer that keeps the collectors of one
// Authority, so that a renewed unit's Authority can take over the metric
// names of the one it replaces.
type collectorSet struct{ cs []prometheus.Collector }

// Register keeps col.
func (c *collectorSet) Register(col prometheus.Collector) error {
	c.cs = append(c.cs, col)
	return nil
}

// MustRegister keeps cs.
func (c *collectorSet) MustRegister(cs ...prometheus.Collector) { c.cs = append(c.cs, cs...) }

// Unregister does nothing: a generation's collectors are dropped whole.
func (c *collectorSet) Unregister(prometheus.Collector) bool { return false }

// maxNotYetValid is how far ahead of this node's clock the notBefore of a
// new unit may be for it to be taken while the unit it replaces signs (a
// restart or an adoption just after a renewal by a node or CA whose clock
// is a little ahead). Clocks kept in sync differ by far less: a unit
// further ahead was certified by a clock that is wrong, and is refused as
// any unit not valid yet is (ErrUnitCertificateNotYetValid), rather than
// silently leaving the old unit to sign until it expires.
const maxNotYetValid = 5 * time.Minute

// install makes an Authority for unit and swaps it in; the metrics move to it.
func (s *Service) install(unit *Unit) error {
	g := &generation{unit: unit, metrics: &collectorSet{}}
	rec, err := NewAuditRecorder(s.o.Audit, hex.EncodeToString(unit.Cert.SerialNumber.Bytes()))
	if err != nil {
		return err
	}
	refusals, clientRefusals, err := newRefusals(s.o.Audit, hex.EncodeToString(unit.Cert.SerialNumber.Bytes()))
	if err != nil {
		return err
	}
	// A unit not valid yet is taken only while the one it replaces is
	// valid, and only when its notBefore is at most maxNotYetValid ahead:
	// the one replaced signs until then (serving).
	prev := s.cur.Load()
	now := s.now()
	replacedValid := prev != nil && !now.Before(prev.unit.Cert.NotBefore) && now.Before(prev.unit.Cert.NotAfter) &&
		unit.Cert.NotBefore.Sub(now) <= maxNotYetValid
	a, err := newAuthority(s.o.Config, Options{
		Certificate: unit.Cert, Chain: unit.Chain, Signer: unit.Key.Signer, Serials: s.o.Serials,
		Recorder: rec, Clock: s.o.Clock, Logger: s.o.Logger, Registerer: g.metrics, Now: s.o.Now,
		Issuers: s.o.Issuers, Refusals: refusals, ClientRefusals: clientRefusals, budget: s.budget,
	}, replacedValid)
	if err != nil {
		return err
	}
	g.auth, g.handler = a, a.Handler(s.o.Identify)
	if prev != nil {
		// It keeps serving while this node's clock is before the new
		// unit's notBefore (a backward step just after the renewal).
		kept := *prev
		kept.previous = nil
		g.previous = &kept
	}
	old := s.cur.Swap(g)
	if s.o.Registerer == nil {
		return nil
	}
	if old != nil {
		for _, c := range old.metrics.cs {
			s.o.Registerer.Unregister(c)
		}
	}
	for _, c := range g.metrics.cs {
		if err := s.o.Registerer.Register(c); err != nil {
			return fmt.Errorf("registering TSA metrics: %w", err)
		}
	}
	return nil
}

// Unit returns the unit in use now (nil before one is installed).
func (s *Service) Unit() *Unit {
	if g := s.cur.Load(); g != nil {
		return g.unit
	}
	return nil
}

// authority returns the Authority of the unit in use now (renewal swaps
// it), nil before one is installed.
func (s *Service) authority() *Authority {
	if g := s.serving(); g != nil {
		return g.auth
	}
	return nil
}

// serving returns the generation that signs now: the current one, or
// while the clock is before its unit's notBefore (a backward clock step
// just after a renewal) the one it replaced when that one is valid now,
// so that no token has a genTime before its signer's validity, and it is
// not revoked. Nil before a unit is installed.
func (s *Service) serving() *generation {
	g := s.cur.Load()
	if g == nil || g.previous == nil {
		return g
	}
	now := s.now()
	if p := g.previous; now.Before(g.unit.Cert.NotBefore) && !now.Before(p.unit.Cert.NotBefore) && now.Before(p.unit.Cert.NotAfter) && !p.auth.revoked.Load() {
		return p
	}
	return g
}

// ServeHTTP answers RFC 3161 requests (POST /tsa) with the current unit
// (serving).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serving().handler.ServeHTTP(w, r)
}

// Register serves POST /tsa. It is public and hot, so it is handed to raw,
// which must route the prefix "/tsa" before mux sees the request (the
// handler checks the method and media type itself); any other path under
// the prefix goes on to mux.
func (s *Service) Register(mux http.Handler, raw func(prefix string, h http.Handler)) {
	raw("/tsa", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tsa" {
			mux.ServeHTTP(w, r)
			return
		}
		s.ServeHTTP(w, r)
	}))
}

// Ready backs /readyz: the clock is in sync and the unit certificate valid.
func (s *Service) Ready(context.Context) error {
	a := s.authority()
	if a == nil {
		return errors.New("timestamp: no TSA unit installed")
	}
	return a.Ready()
}

// due reports whether unit should be replaced at now.
func (s *Service) due(unit *Unit, now time.Time) bool {
	return unit.Cert.NotAfter.Sub(now) < s.o.RenewBefore
}

// replaceExpired replaces the expired unit before the service serves: it
// waits while another instance renews it, and follows the renewals made
// while this instance was down until it has a unit that has not expired.
func (s *Service) replaceExpired(ctx context.Context, unit *Unit, now time.Time) (*Unit, error) {
	for adopted := 0; adopted < maxAdoptions; {
		next, how, err := s.replace(ctx, unit, now)
		switch {
		case err != nil:
			return nil, err
		case how == renewedPending:
			t := time.NewTimer(claimRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("waiting for another instance to renew the TSA unit: %w", ctx.Err())
			case <-t.C:
			}
			now = time.Now()
		case how == renewedHere || !now.After(next.Cert.NotAfter):
			return next, nil
		default: // adopted a unit that expired too: follow its renewal
			unit = next
			adopted++
		}
	}
	return nil, fmt.Errorf("the TSA unit was renewed more than %d times since this instance last ran, and every renewal has expired", maxAdoptions)
}

// RenewIfDue replaces the unit with a new key and certificate when its
// certificate ends within RenewBefore, and records the renewal (or its
// failure) in the audit log. With Renewals, only the instance that wins
// the claim renews; the others adopt its unit (at this check when the
// renewal is done, else at a later one) and record nothing.
//
// A unit whose certificate was revoked (Revoked, or the store's status
// read at each check: ServiceOptions.Status) is due at once, whatever its
// expiry: it signs nothing more, and the new unit has a new key.
func (s *Service) RenewIfDue(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkRevoked(ctx)
	for range maxAdoptions {
		done, err := s.renewIfDue(ctx, now)
		if done || err != nil {
			return err
		}
	}
	return nil
}

// renewIfDue is one step of RenewIfDue: done is false when it adopted a
// unit that may itself be due.
func (s *Service) renewIfDue(ctx context.Context, now time.Time) (done bool, err error) {
	g := s.cur.Load()
	if g == nil {
		return true, nil
	}
	unit, revoked := g.unit, g.auth.revoked.Load()
	// A unit whose issuing CA the root revoked is due at once too: the
	// renewal fails while the CA issues nothing, and certifies a new unit
	// from the next generation once the CA is rolled over.
	issuerRevoked := g.auth.issuerRevoked() != nil
	if !revoked && !issuerRevoked && !s.due(unit, now) {
		return true, nil
	}
	serial := hex.EncodeToString(unit.Cert.SerialNumber.Bytes())
	if serial == s.noRenewal && !revoked && !issuerRevoked && now.Before(unit.Cert.NotAfter) {
		return true, nil
	}
	reason := ""
	switch {
	case revoked:
		reason = RenewReasonRevoked
	case issuerRevoked:
		reason = RefuseReasonIssuerRevoked
	}
	next, how, err := s.replace(ctx, unit, now)
	if err == nil && how == renewedPending {
		return true, nil // another instance renews it: adopted at a later check
	}
	if err == nil && how == renewedAdopted {
		if err := s.install(next); err != nil {
			return true, err
		}
		newSerial := hex.EncodeToString(next.Cert.SerialNumber.Bytes())
		s.log.Info("TSA unit adopted: another instance renewed it", "previous", serial, "serial", newSerial, "key", next.Key.URI, "notAfter", next.Cert.NotAfter,
			"previousRevoked", revoked)
		if s.due(next, next.Cert.NotBefore) {
			s.noRenewal = newSerial // due when it was made: as the instance that made it decided
		}
		return false, nil
	}
	if err != nil {
		details := map[string]any{"error": err.Error()}
		if reason != "" {
			details["reason"] = reason
		}
		_, _ = s.o.Audit.Append(ctx, audit.Entry{
			Actor: s.o.Actor, Action: ActionRenewUnit, Object: serial, Outcome: audit.OutcomeFailure,
			Details: details,
		})
		return true, err
	}
	newSerial := hex.EncodeToString(next.Cert.SerialNumber.Bytes())
	details := map[string]any{"previous": serial, "key": next.Key.URI, "notAfter": next.Cert.NotAfter}
	if reason != "" {
		details["reason"] = reason
	}
	if _, err := s.o.Audit.Append(ctx, audit.Entry{
		Actor: s.o.Actor, Action: ActionRenewUnit, Object: newSerial, Outcome: audit.OutcomeSuccess,
		Details: details,
	}); err != nil {
		return true, fmt.Errorf("writing audit record: %w", err)
	}
	if err := s.install(next); err != nil {
		return true, err
	}
	if revoked {
		s.log.Warn("TSA unit renewed: its certificate was revoked; the new unit has a new key", "previous", serial, "serial", newSerial, "key", next.Key.URI, "notAfter", next.Cert.NotAfter)
	} else if issuerRevoked {
		s.log.Warn("TSA unit renewed: its issuing CA was revoked by the root; the new unit is certified by a CA that is not", "previous", serial, "serial", newSerial,
			"issuer", next.Cert.Issuer.String(), "key", next.Key.URI, "notAfter", next.Cert.NotAfter)
	} else {
		s.log.Info("TSA unit renewed", "previous", serial, "serial", newSerial, "key", next.Key.URI, "notAfter", next.Cert.NotAfter)
	}
	if s.due(next, now) {
		s.noRenewal = newSerial
		s.log.Warn("tsa.renewBefore exceeds the tsa-unit certificate lifetime: the new unit is due for renewal at once; not renewing it again before it expires",
			"renewBefore", s.o.RenewBefore.String(), "notAfter", next.Cert.NotAfter)
	}
	return true, nil
}

// logRenewFailure logs a failed renewal of a unit not revoked: it serves
// on until its certificate expires, unless its issuing CA is revoked.
func (s *Service) logRenewFailure(err error) {
	if g := s.cur.Load(); g != nil && g.auth.issuerRevoked() != nil {
		s.log.Error("renewing the TSA unit failed: its issuing CA is revoked by the root, so no time-stamps until the CA is rolled over and the unit renewed from the new generation (docs/operations.md, Key compromise of an issuing CA)", "err", err)
		return
	}
	s.log.Error("renewing the TSA unit failed; the current unit serves until its certificate expires", "err", err)
}

// renew has Units make and certify a new unit to replace old.
func (s *Service) renew(ctx context.Context, old *Unit, now time.Time) (*Unit, error) {
	s.log.Info("renewing the TSA unit", "old", hex.EncodeToString(old.Cert.SerialNumber.Bytes()), "oldNotAfter", old.Cert.NotAfter)
	return s.o.Units.Renew(ctx, now, s.o.Actor)
}

// RenewLoop checks for renewal every interval until ctx ends, and at once
// when Revoked finds the unit in use revoked; while that unit is not
// replaced yet (another instance renews it, or the renewal failed) it
// checks again every second, or after a failure revokedRetry, doubling
// at each failure in a row up to revokedRetryMax (an outage of the CA
// does not write a failure record every few seconds for hours).
func (s *Service) RenewLoop(ctx context.Context, interval time.Duration) {
	wait := interval
	failures := 0 // failed renewals of the revoked unit in a row
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.kick:
			t.Stop()
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := s.RenewIfDue(rctx, time.Now())
		cancel()
		wait = interval
		switch revoked := s.revokedInUse(); {
		case revoked && err != nil:
			wait = backoff(s.revokedRetry, failures)
			failures++
			s.log.Error("renewing the revoked TSA unit failed: no tokens until it is renewed; retrying", "retryIn", wait.String(), "failures", failures, "err", err)
		case revoked:
			wait = claimRetry // another instance renews it: adopted as soon as it is done
		case err != nil:
			failures = 0
			s.logRenewFailure(err)
		default:
			failures = 0
		}
	}
}
