package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/identity/activity"
)

// Defaults of Options.
const (
	DefaultLease    = 30 * time.Second
	DefaultPoll     = 2 * time.Second
	DefaultAttempts = 3
	// maxPause bounds the wait between rounds while the gateway is out.
	maxPause = time.Minute
	// expiryEvery is how often the reminders are looked for.
	expiryEvery = 24 * time.Hour
)

// Options configure a Notifier.
type Options struct {
	// Config is the notify section (its defaults filled by New).
	Config Config
	// Secret is the webhook's HMAC key (ReadSecret).
	Secret []byte
	// SecretFile, when set, is the file Secret was read from: the
	// notifier looks at it as each round starts (and at most every
	// SecretCheckEvery during a round) and, when it changed and then
	// stayed unchanged for SecretSettle, signs with the key it holds from
	// then on; a file that became unusable keeps the last good key
	// (checkSecret).
	SecretFile string
	Store      Store
	// Logger receives what happens; discarded when nil. It never sees
	// the secret.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Holder names this node in the lease (default: host name, process
	// ID and a random suffix).
	Holder string
	// Client posts to the gateway (default: one bounded by
	// Config.Webhook.Timeout, following no redirect).
	Client *http.Client
	// Now is the clock of the notifications and reminders (default
	// time.Now). The lease is not timed by it: the database times it by
	// its own clock, and the node by elapsed time (see claim).
	Now func() time.Time
	// Lease is how long a claim to deliver lasts unless renewed (default
	// 30s, or three times Config.Webhook.Timeout when that is longer: a
	// request is cut where the lease would lapse); Poll is the pause between rounds when there is nothing to do
	// (default 2s); Attempts bounds the tries of one notification per
	// round (default 3), Backoff the first pause between them (default
	// 200ms, doubled each time).
	Lease    time.Duration
	Poll     time.Duration
	Attempts int
	Backoff  time.Duration
}

// Notifier delivers the notifications: Run loops until its context ends.
type Notifier struct {
	cfg      Config
	store    Store
	hook     *webhook
	log      *slog.Logger
	m        *metrics
	holder   string
	now      func() time.Time
	lease    time.Duration
	poll     time.Duration
	attempts int
	backoff  time.Duration
	events   map[string]bool

	// Used by the loop alone.
	secret     *secretWatch // the secret file watched (nil: Options.SecretFile unset)
	leaseUntil time.Time    // when this node's lease lapses at the latest, on its monotonic clock (claim)
	lastExpiry time.Time    // when the last complete pass of the reminders began
	pass       *expiryPass  // the pass of the reminders under way, if any
}

// expiryPass is where a pass of the reminders stands: the window (an index
// into the sorted windows) and the last certificate reminded in it.
type expiryPass struct {
	started time.Time
	window  int
	after   Expiring
}

// New returns the notifier of o.
func New(o Options) (*Notifier, error) {
	cfg := o.Config.WithDefaults()
	cfg.Enabled = true
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("notify: a store is required")
	}
	if len(o.Secret) == 0 {
		return nil, fmt.Errorf("%w: no secret", ErrSecretFile)
	}
	n := &Notifier{cfg: cfg, store: o.Store, log: o.Logger, holder: o.Holder, now: o.Now,
		lease: o.Lease, poll: o.Poll, attempts: o.Attempts, backoff: o.Backoff, events: map[string]bool{}}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.holder == "" {
		host, _ := os.Hostname()
		var b [6]byte
		_, _ = rand.Read(b[:])
		n.holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if n.lease <= 0 {
		// Renewed when a third is gone, the lease still has two
		// timeouts to run when a request starts: it is never cut.
		n.lease = max(DefaultLease, 3*cfg.Webhook.Timeout)
	}
	if n.poll <= 0 {
		n.poll = DefaultPoll
	}
	if n.attempts <= 0 {
		n.attempts = DefaultAttempts
	}
	if n.backoff <= 0 {
		n.backoff = 200 * time.Millisecond
	}
	client := o.Client
	if client == nil {
		client = newHTTPClient(cfg.Webhook.Timeout)
	}
	n.hook = &webhook{url: cfg.Webhook.URL, secret: slices.Clone(o.Secret), client: client, now: n.now}
	if o.SecretFile != "" {
		// Never seen: the first round reads it (again), and whatever
		// changed since the caller read it is taken up then.
		n.secret = &secretWatch{path: o.SecretFile, every: SecretCheckEvery, settle: SecretSettle}
	}
	for _, e := range cfg.Events {
		n.events[e] = true
	}
	var err error
	if n.m, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	for _, e := range cfg.Events {
		n.m.delivered.WithLabelValues(e) // exported at zero: alerts can tell "none delivered" from "no series"
	}
	return n, nil
}

// Run delivers until ctx ends, then gives up its lease. A failing round
// (the gateway or the database out) is logged and tried again after a
// pause that doubles up to a minute.
func (n *Notifier) Run(ctx context.Context) {
	n.log.Info("notifications to citizens started", "url", logURL(n.cfg.Webhook.URL), "events", n.cfg.Events, "holder", n.holder,
		"fingerprint", Fingerprint(n.hook.secret))
	pause, failures := n.poll, 0
	for {
		busy, err := n.Round(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			failures++
			pause = min(n.poll<<min(failures, 10), maxPause)
			n.log.Warn("notifications delayed", "err", err, "retryIn", pause)
		case busy:
			failures, pause = 0, 0
		default:
			failures, pause = 0, n.poll
		}
		if pause > 0 || ctx.Err() != nil {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if err := n.store.ReleaseLease(rctx, n.holder); err != nil {
					n.log.Warn("releasing the notification lease", "err", err)
				}
				cancel()
				n.log.Info("notifications to citizens stopped")
				return
			case <-t.C:
			}
		}
	}
}

// Round claims the lease and, when this node holds it, delivers one batch
// of the audit log's notifications and, during the daily pass of the
// expiry reminders, one batch of those: a flood of reminders never holds
// up what happens meanwhile. busy says more may be waiting.
func (n *Notifier) Round(ctx context.Context) (busy bool, err error) {
	n.checkSecret(true) // on every node, holding the lease or not: a broken file is reported at once
	cursor, ok, err := n.claim(ctx)
	if err != nil || !ok {
		return false, err
	}
	busy, err = n.tail(ctx, cursor)
	if err != nil {
		return false, err
	}
	if !n.events[EventExpiring] || len(n.cfg.ExpiryReminders) == 0 {
		return busy, nil
	}
	if n.pass == nil && n.now().Sub(n.lastExpiry) >= expiryEvery {
		n.pass = &expiryPass{started: n.now()}
	}
	if n.pass != nil {
		more, err := n.remind(ctx)
		if err != nil {
			return false, err
		}
		busy = busy || more
	}
	return busy, nil
}

// claim claims (or renews) the lease and returns the cursor. The database
// times the lease by its own clock, from when it granted it; this node
// counts it from just before it asked, in elapsed time on its monotonic
// clock (time.Now's, never the wall clock of Options.Now, which may be
// minutes off the others' or stepped): the database's lease began no
// earlier, so this node's reckoning lapses no later than the database's.
func (n *Notifier) claim(ctx context.Context) (cursor int64, ok bool, err error) {
	asked := time.Now()
	ok, cursor, err = n.store.ClaimLease(ctx, n.holder, n.lease)
	if err != nil {
		return 0, false, fmt.Errorf("notify: claiming the lease: %w", err)
	}
	if ok {
		n.leaseUntil = asked.Add(n.lease)
	} else {
		n.leaseUntil = time.Time{}
		n.m.lag.Set(0) // the holder reports the lag
	}
	return cursor, ok, nil
}

// renew renews the lease when a third of it is gone, so that a long
// batch (a slow gateway) keeps it; ErrLeaseLost when another node took it,
// or may have: a lease that lapsed is not renewed (another node may have
// delivered past this batch meanwhile), the next round claims it afresh.
// A renewal that fails (the database out) stops the delivery too. The
// lease is timed as claim times it (monotonic, elapsed).
func (n *Notifier) renew(ctx context.Context) error {
	now := time.Now()
	if !now.Before(n.leaseUntil) {
		return ErrLeaseLost
	}
	if now.Before(n.leaseUntil.Add(-2 * n.lease / 3)) {
		return nil
	}
	if _, ok, err := n.claim(ctx); err != nil {
		return err
	} else if !ok {
		return ErrLeaseLost
	}
	return nil
}

// tail delivers the notifications of the audit records after cursor (one
// batch), and moves the cursor past what was delivered or refused for good.
func (n *Notifier) tail(ctx context.Context, cursor int64) (busy bool, err error) {
	recs, err := n.store.AuditAfter(ctx, cursor, n.cfg.Batch)
	if err != nil {
		return false, fmt.Errorf("notify: reading the audit log: %w", err)
	}
	head, herr := n.store.AuditHeadSeq(ctx)
	if herr != nil {
		n.log.Warn("reading the audit head", "err", herr)
	}
	setLag := func(done int64) {
		if herr == nil {
			n.m.lag.Set(float64(max(head-done, 0)))
		}
	}
	setLag(cursor)
	if len(recs) == 0 {
		return false, nil
	}
	if recs[0].Seq > cursor+1 {
		n.log.Warn("audit records after the notification cursor are no longer in the log (archived): their notifications are skipped",
			"cursor", cursor, "firstLive", recs[0].Seq, "skipped", recs[0].Seq-cursor-1)
	}
	items, err := n.build(ctx, recs)
	if err != nil {
		return false, err
	}
	done := cursor // every record up to done is dealt with
	advance := func() error {
		if done == cursor {
			return nil
		}
		if err := n.store.Advance(ctx, n.holder, done); err != nil {
			return fmt.Errorf("notify: moving the cursor to %d: %w", done, err)
		}
		cursor = done
		setLag(done)
		return nil
	}
	i := 0
	for _, rec := range recs {
		for ; i < len(items) && items[i].seq == rec.Seq; i++ {
			if err := n.deliver(ctx, items[i]); err != nil {
				return false, errors.Join(err, advance())
			}
		}
		done = rec.Seq
	}
	if err := advance(); err != nil {
		return false, err
	}
	return len(recs) == n.cfg.Batch, nil
}

// build returns the notifications of recs, in seq order.
func (n *Notifier) build(ctx context.Context, recs []activity.Record) ([]Notification, error) {
	var objects, logins []string
	for _, r := range recs {
		if n.events[r.Action] && r.Outcome == "success" {
			objects = append(objects, candidates(r)...)
			if activity.ShowsClient(r.Action) && r.Object != "" {
				logins = append(logins, r.Object)
			}
		}
	}
	if len(objects) == 0 {
		return nil, nil
	}
	owners, err := n.store.Owners(ctx, slices.Compact(slices.Sorted(slices.Values(objects))))
	if err != nil {
		return nil, fmt.Errorf("notify: the holders of certificates: %w", err)
	}
	var clients map[string]string
	if len(logins) > 0 {
		if clients, err = n.store.ClientNames(ctx, logins); err != nil {
			return nil, fmt.Errorf("notify: the names of the portals: %w", err)
		}
	}
	var out []Notification
	for _, r := range recs {
		if n.events[r.Action] {
			out = append(out, notifications(r, owners, clients)...)
		}
	}
	return out, nil
}

// deliver posts x, trying again with backoff while the gateway is
// unavailable, up to the attempts of a round. A refusal for good is
// logged and counted, and x skipped (nil). Each attempt holds the lease
// (renewed before it) and ends before the lease would lapse: a node never
// delivers once another may have taken the lease over.
func (n *Notifier) deliver(ctx context.Context, x Notification) error {
	pause := n.backoff
	for attempt := 1; ; attempt++ {
		if err := n.renew(ctx); err != nil {
			return fmt.Errorf("notify: delivering %s: %w", x.ID, err)
		}
		n.checkSecret(false) // a long round (a slow gateway) takes a new key up too
		actx, cancel := context.WithTimeout(ctx, time.Until(n.leaseUntil)-n.lease/10)
		err := n.hook.post(actx, x)
		cancel()
		switch {
		case err == nil:
			n.m.delivered.WithLabelValues(x.Event).Inc()
			return nil
		case errors.Is(err, ErrRefused):
			n.m.failures.WithLabelValues(failRefused).Inc()
			n.log.Error("the notification gateway refused a notification: skipped", "id", x.ID, "event", x.Event, "err", err)
			return nil
		}
		n.m.failures.WithLabelValues(failUnavailable).Inc()
		if attempt >= n.attempts || ctx.Err() != nil {
			return fmt.Errorf("notify: delivering %s: %w", x.ID, err)
		}
		n.log.Debug("retrying a notification", "id", x.ID, "attempt", attempt, "err", err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("notify: delivering %s: %w", x.ID, ctx.Err())
		case <-t.C:
		}
		pause *= 2
	}
}

// remind sends one batch of the expiry reminders due and says whether the
// pass has more to send. Window by window, smallest first, it takes the
// citizens' valid certificates expiring within it not yet reminded for it,
// after the last one this pass reminded (keyset: a window of a million
// certificates is read once, not once a batch). A certificate first seen
// inside a small window is reminded for that one and marked for the larger
// ones too (no "30 days" after "7 days").
func (n *Notifier) remind(ctx context.Context) (more bool, err error) {
	windows := slices.Sorted(slices.Values(n.cfg.ExpiryReminders))
	p := n.pass
	w := windows[p.window]
	var marks []string
	for _, x := range windows[p.window:] {
		marks = append(marks, windowName(x))
	}
	now := n.now()
	due, err := n.store.Expiring(ctx, now, now.Add(w), windowName(w), p.after, n.cfg.Batch)
	if err != nil {
		return false, fmt.Errorf("notify: the certificates expiring within %s: %w", w, err)
	}
	for _, x := range due {
		if err := n.deliver(ctx, reminder(x, w, now)); err != nil {
			return false, err
		}
		if err := n.store.Reminded(ctx, x.Serial, marks, now); err != nil {
			return false, fmt.Errorf("notify: recording the reminder of %s: %w", x.Serial, err)
		}
		p.after = x
	}
	if len(due) == n.cfg.Batch {
		return true, nil
	}
	p.window, p.after = p.window+1, Expiring{}
	if p.window < len(windows) {
		return true, nil
	}
	n.lastExpiry, n.pass = p.started, nil
	return false, nil
}

// logURL is the webhook URL as logged: without its query, which may carry
// a token of the gateway's.
func logURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}
