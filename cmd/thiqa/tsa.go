package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/clock"
)

// tsaSerialCounter names the store counter of token serials: one for the
// life of the TSA, whatever its unit keys and instances.
const tsaSerialCounter = "tsa"

// tsaActionIssue is the audit action of every token.
const tsaActionIssue = "timestamp.issue"

// tsaUnit is the TSA unit in use: its key on the token and its certificate.
type tsaUnit struct {
	key   *hsm.Signer
	cert  *x509.Certificate
	chain []*x509.Certificate // issuing CA first, without the root
}

// tsaUnitPath and tsaChainPath are where the unit certificate and its
// issuing CA certificate live (PEM).
func tsaUnitPath(cfg *config.Config) string {
	return filepath.Join(cfg.Resolve(cfg.TSA.CertDir), "unit.pem")
}

func tsaChainPath(cfg *config.Config) string {
	return filepath.Join(cfg.Resolve(cfg.TSA.CertDir), "chain.pem")
}

// readCertsPEM reads one or more PEM certificates.
func readCertsPEM(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, raw = pem.Decode(raw)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: unexpected PEM block %q", path, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 || strings.TrimSpace(string(raw)) != "" {
		return nil, fmt.Errorf("%s: want PEM certificates only", path)
	}
	return out, nil
}

// writeFileAtomic replaces path with data (a temporary file renamed over it).
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadTSAUnit reads the unit certificate and chain from the data folder and
// finds the key on the token whose public key the certificate carries: the
// configured label or one of its renewals ("<label>-<time>"). It returns an
// error wrapping os.ErrNotExist when there is no unit certificate yet.
func loadTSAUnit(ctx context.Context, cfg *config.Config, tok *hsm.Token) (*tsaUnit, error) {
	certs, err := readCertsPEM(tsaUnitPath(cfg))
	if err != nil {
		return nil, fmt.Errorf("TSA unit certificate: %w", err)
	}
	chain, err := readCertsPEM(tsaChainPath(cfg))
	if err != nil {
		return nil, fmt.Errorf("TSA unit chain: %w", err)
	}
	base, err := keyLabel(cfg, cfg.TSA.Key)
	if err != nil {
		return nil, err
	}
	keys, err := tok.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	cert := certs[0]
	for _, k := range keys {
		if k.Label != base && !strings.HasPrefix(k.Label, base+"-") {
			continue
		}
		s, err := tok.FindKey(ctx, k.Label)
		if err != nil {
			return nil, fmt.Errorf("finding key %q: %w", k.Label, err)
		}
		if pub, ok := publicOf(s); ok && pub.Equal(cert.PublicKey) {
			s.UseSessionCopies() // signs every token: see hsm/sessioncopy.go
			return &tsaUnit{key: s, cert: cert, chain: chain}, nil
		}
	}
	return nil, fmt.Errorf("the token holds no key %s (or renewal of it) matching %s", cfg.TSA.Key, tsaUnitPath(cfg))
}

// tsaSubject is the unit certificate's subject as the CA's request fields.
func tsaSubject(c config.TSAConfig) map[string]string {
	s := map[string]string{
		policies.FieldCommonName:       c.CommonName,
		policies.FieldOrganizationName: c.Organization,
		policies.FieldCountry:          c.Country,
	}
	if c.OrganizationIdentifier != "" {
		s[policies.FieldOrganizationIdentifier] = c.OrganizationIdentifier
	}
	return s
}

// certifyTSAKey obtains the tsa-unit certificate for key from the CA (stored
// and audited like every certificate) and writes unit.pem and chain.pem. A
// key the store already certified (init interrupted after issuance) gets its
// existing certificate back instead of a second one.
func certifyTSAKey(ctx context.Context, p *platform, authority *ca.Authority, key *hsm.Signer, actor string) (*tsaUnit, error) {
	cfg := p.cfg
	caName := cfg.TSA.CAOrDefault()
	caCert, ok := authority.CACertificate(caName)
	if !ok {
		return nil, fmt.Errorf("the CA has no issuing CA %q", caName)
	}
	var cert *x509.Certificate
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding the unit public key: %w", err)
	}
	store := p.db.Certificates(nil)
	serial, err := store.FindIssued(ctx, policies.ProfileTSAUnit, sha256.Sum256(spki), time.Now())
	if err != nil {
		return nil, fmt.Errorf("looking for an issued unit certificate: %w", err)
	}
	if serial != "" {
		rec, err := store.GetCertificate(ctx, serial)
		if err != nil {
			return nil, fmt.Errorf("reading unit certificate %s: %w", serial, err)
		}
		if cert, err = x509.ParseCertificate(rec.DER); err != nil {
			return nil, fmt.Errorf("parsing stored unit certificate %s: %w", serial, err)
		}
	} else {
		got, err := authority.Issue(ctx, ca.Request{
			Profile: policies.ProfileTSAUnit, CA: caName, Subject: tsaSubject(cfg.TSA),
			PublicKey: key.Public(), KeyGeneratedByService: true, CredentialID: key.Label(), RequestedBy: actor,
		})
		if err != nil {
			return nil, fmt.Errorf("issuing the TSA unit certificate: %w", err)
		}
		cert = got.Certificate
	}
	if err := os.MkdirAll(cfg.Resolve(cfg.TSA.CertDir), 0o755); err != nil {
		return nil, fmt.Errorf("creating the TSA certificate folder: %w", err)
	}
	// The chain first, so that unit.pem never names an issuer chain.pem lacks.
	if err := writeFileAtomic(tsaChainPath(cfg), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", tsaChainPath(cfg), err)
	}
	if err := writeFileAtomic(tsaUnitPath(cfg), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", tsaUnitPath(cfg), err)
	}
	key.UseSessionCopies()
	return &tsaUnit{key: key, cert: cert, chain: []*x509.Certificate{caCert}}, nil
}

// initTSA makes sure the TSA unit key exists on the token and has its
// tsa-unit certificate from the tsa CA in the data folder. What exists is
// kept.
func initTSA(ctx context.Context, p *platform, out io.Writer) error {
	cfg := p.cfg
	if !cfg.TSA.Enabled() {
		return nil
	}
	unit, err := loadTSAUnit(ctx, cfg, p.token)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if unit == nil {
		kt, err := hsm.ParseKeyType(cfg.TSA.KeyTypeOrDefault())
		if err != nil {
			return err
		}
		key, generated, err := ensureKey(ctx, cfg, p.token, cfg.TSA.Key, kt)
		if err != nil {
			return err
		}
		if generated {
			if err := auditKeyGenerated(ctx, p.audit, key); err != nil {
				return err
			}
		}
		authority, err := openAuthority(ctx, p, nil)
		if err != nil {
			return fmt.Errorf("opening the CA: %w", err)
		}
		if unit, err = certifyTSAKey(ctx, p, authority, key, "thiqa-init"); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "  TSA unit          %s  %s\n", unit.key.URI(), tsaUnitPath(cfg))
	return nil
}

// tsaClock builds the clock-discipline check the configuration names.
func tsaClock(tc config.TSAConfig, logger *slog.Logger) (timestamp.ClockChecker, error) {
	cc := tc.Timestamp.Clock
	switch cc.Source {
	case config.ClockStaticOutOfSync:
		logger.Warn("TSA clock declared OUT OF SYNC (tsa.clock.source: static-out-of-sync): every time-stamp request is refused with timeNotAvailable")
		return timestamp.NewStaticChecker(false), nil
	case config.ClockKernel:
		maxErr := cc.MaxError
		if maxErr == 0 {
			maxErr = tc.Timestamp.Accuracy
		}
		if maxErr == 0 {
			maxErr = time.Second
		}
		k, err := clock.NewKernel(maxErr)
		if err != nil {
			return nil, err
		}
		interval, maxAge := cc.Interval, cc.MaxAge
		if interval == 0 {
			interval = time.Second
		}
		if maxAge == 0 {
			maxAge = 5 * interval
		}
		return timestamp.NewCachedChecker(k, interval, maxAge)
	case config.ClockStatic:
		logger.Warn("TSA CLOCK DISCIPLINE IS DISABLED (tsa.clock.source: static): the clock is declared in sync without any check. " +
			"DEVELOPMENT ONLY: EN 319 421 requires a checked clock; set tsa.clock.source to chrony or kernel in production")
	}
	return tc.Timestamp.NewClockChecker()
}

// collectorSet is a prometheus.Registerer that keeps the collectors of one
// Authority, so that a renewed unit's Authority can take over the metric
// names of the one it replaces.
type collectorSet struct{ cs []prometheus.Collector }

func (s *collectorSet) Register(c prometheus.Collector) error {
	s.cs = append(s.cs, c)
	return nil
}

func (s *collectorSet) MustRegister(cs ...prometheus.Collector) { s.cs = append(s.cs, cs...) }

func (s *collectorSet) Unregister(c prometheus.Collector) bool { return false }

// tsaGeneration is one unit's Authority and handler.
type tsaGeneration struct {
	unit    *tsaUnit
	auth    *timestamp.Authority
	handler http.Handler
	metrics *collectorSet
}

// tsaService serves POST /tsa with the current unit and renews the unit
// before its certificate expires.
type tsaService struct {
	p           *platform
	tcfg        timestamp.Config
	clock       timestamp.ClockChecker
	serials     *timestamp.BlockAllocator
	identify    func(*http.Request) string
	renewBefore time.Duration
	logger      *slog.Logger

	cur atomic.Pointer[tsaGeneration]

	mu        sync.Mutex // serialises renewals
	caOnce    *ca.Authority
	noRenewal string // serial of a unit that renewal cannot improve on
}

// build makes an Authority for unit and swaps it in; the metrics move to it.
func (s *tsaService) install(unit *tsaUnit) error {
	g := &tsaGeneration{unit: unit, metrics: &collectorSet{}}
	rec, err := newAuditRecorder(s.p.audit, hex.EncodeToString(unit.cert.SerialNumber.Bytes()))
	if err != nil {
		return err
	}
	a, err := timestamp.New(s.tcfg, timestamp.Options{
		Certificate: unit.cert, Chain: unit.chain, Signer: unit.key, Serials: s.serials,
		Recorder: rec, Clock: s.clock, Logger: s.logger, Registerer: g.metrics,
	})
	if err != nil {
		return err
	}
	g.auth, g.handler = a, a.Handler(s.identify)
	old := s.cur.Swap(g)
	if old != nil {
		for _, c := range old.metrics.cs {
			s.p.reg.Unregister(c)
		}
	}
	for _, c := range g.metrics.cs {
		if err := s.p.reg.Register(c); err != nil {
			return fmt.Errorf("registering TSA metrics: %w", err)
		}
	}
	return nil
}

// ServeHTTP answers with the current unit.
func (s *tsaService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cur.Load().handler.ServeHTTP(w, r)
}

// ready backs /readyz: the clock is in sync and the unit certificate valid.
func (s *tsaService) ready(context.Context) error { return s.cur.Load().auth.Ready() }

// due reports whether unit should be replaced at now.
func (s *tsaService) due(unit *tsaUnit, now time.Time) bool {
	return unit.cert.NotAfter.Sub(now) < s.renewBefore
}

// renewIfDue replaces the unit with a new key and certificate when its
// certificate ends within renewBefore. EN 319 421 §7.6: a unit key must
// not sign beyond its certificate's validity, so renewal is a new key
// certified afresh, never the old key re-certified.
func (s *tsaService) renewIfDue(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var unit *tsaUnit
	if g := s.cur.Load(); g != nil {
		unit = g.unit
	}
	if unit == nil || !s.due(unit, now) {
		return nil
	}
	serial := hex.EncodeToString(unit.cert.SerialNumber.Bytes())
	if serial == s.noRenewal && now.Before(unit.cert.NotAfter) {
		return nil
	}
	next, err := s.renew(ctx, unit, now)
	if err != nil {
		_, _ = s.p.audit.Append(ctx, audit.Entry{
			Actor: "thiqa-serve", Action: "tsa.unit.renew", Object: serial, Outcome: audit.OutcomeFailure,
			Details: map[string]any{"error": err.Error()},
		})
		return err
	}
	newSerial := hex.EncodeToString(next.cert.SerialNumber.Bytes())
	if _, err := s.p.audit.Append(ctx, audit.Entry{
		Actor: "thiqa-serve", Action: "tsa.unit.renew", Object: newSerial, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"previous": serial, "key": next.key.URI(), "notAfter": next.cert.NotAfter},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	if err := s.install(next); err != nil {
		return err
	}
	s.logger.Info("TSA unit renewed", "previous", serial, "serial", newSerial, "key", next.key.URI(), "notAfter", next.cert.NotAfter)
	if s.due(next, now) {
		s.noRenewal = newSerial
		s.logger.Warn("tsa.renewBefore exceeds the tsa-unit certificate lifetime: the new unit is due for renewal at once; not renewing it again before it expires",
			"renewBefore", s.renewBefore, "notAfter", next.cert.NotAfter)
	}
	return nil
}

// renew generates a new unit key and certifies it.
func (s *tsaService) renew(ctx context.Context, old *tsaUnit, now time.Time) (*tsaUnit, error) {
	cfg := s.p.cfg
	base, err := keyLabel(cfg, cfg.TSA.Key)
	if err != nil {
		return nil, err
	}
	if s.caOnce == nil {
		if s.caOnce, err = openAuthority(ctx, s.p, nil); err != nil {
			return nil, fmt.Errorf("opening the CA: %w", err)
		}
	}
	kt, err := hsm.ParseKeyType(cfg.TSA.KeyTypeOrDefault())
	if err != nil {
		return nil, err
	}
	label := base + "-" + now.UTC().Format("20060102T150405.000Z")
	key, err := s.p.token.GenerateKey(ctx, label, kt)
	if err != nil {
		return nil, fmt.Errorf("generating the new unit key: %w", err)
	}
	if err := auditKeyGenerated(ctx, s.p.audit, key); err != nil {
		return nil, err
	}
	s.logger.Info("renewing the TSA unit", "old", hex.EncodeToString(old.cert.SerialNumber.Bytes()), "oldNotAfter", old.cert.NotAfter, "key", key.URI())
	return certifyTSAKey(ctx, s.p, s.caOnce, key, "thiqa-serve")
}

// renewLoop checks for renewal until ctx ends.
func (s *tsaService) renewLoop(interval time.Duration) func(ctx context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			if err := s.renewIfDue(rctx, time.Now()); err != nil {
				s.logger.Error("renewing the TSA unit failed; the current unit serves until its certificate expires", "err", err)
			}
			cancel()
		}
	}
}

// wireTSA serves RFC 3161 at POST /tsa (public: the requester is the
// authenticated caller when credentials come along, else the remote
// address), adds the TSA to /readyz and keeps the unit renewed.
func wireTSA(ctx context.Context, p *platform, sv *serving) error {
	cfg := p.cfg
	if !cfg.TSA.Enabled() {
		return nil
	}
	logger := p.logger.With("service", "tsa")
	unit, err := loadTSAUnit(ctx, cfg, p.token)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: run `thiqa init --data %s`", err, cfg.Dir())
		}
		return err
	}
	clk, err := tsaClock(cfg.TSA, logger)
	if err != nil {
		return err
	}
	serials, err := timestamp.NewBlockAllocator(p.db.SerialBlocks(), tsaSerialCounter, cfg.TSA.SerialBlockSize)
	if err != nil {
		return err
	}
	renewBefore, err := cfg.TSA.RenewBeforeDuration()
	if err != nil {
		return err
	}
	s := &tsaService{
		p: p, tcfg: cfg.TSA.Timestamp, clock: clk, serials: serials, renewBefore: renewBefore, logger: logger,
		identify: requesterOf(p.authn),
	}
	now := time.Now()
	if now.After(unit.cert.NotAfter) {
		// The expired unit never signs again: renew before serving.
		logger.Warn("the TSA unit certificate has expired; renewing before serving", "notAfter", unit.cert.NotAfter)
		next, err := s.renew(ctx, unit, now)
		if err != nil {
			return fmt.Errorf("the TSA unit certificate expired on %s and renewing it failed: %w", unit.cert.NotAfter.UTC().Format(time.RFC3339), err)
		}
		unit = next
	}
	if err := s.install(unit); err != nil {
		return err
	}
	if err := s.renewIfDue(ctx, now); err != nil {
		logger.Error("renewing the TSA unit failed; the current unit serves until its certificate expires", "err", err)
	}
	interval := cfg.TSA.RenewCheckInterval
	if interval <= 0 {
		interval = time.Hour
	}
	sv.background = append(sv.background, s.renewLoop(interval))
	// POST /tsa is public and hot: it is routed before the mux (the
	// handler checks the method and media type itself); any other path
	// under the prefix goes on to the mux.
	mux := sv.mux
	sv.raw["/tsa"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tsa" {
			mux.ServeHTTP(w, r)
			return
		}
		s.ServeHTTP(w, r)
	})
	sv.ready["tsa"] = s.ready
	sv.tsa = s // the signing service time-stamps in process
	logger.Info("TSA unit ready", "key", s.cur.Load().unit.key.URI(), "serial", hex.EncodeToString(s.cur.Load().unit.cert.SerialNumber.Bytes()),
		"notAfter", s.cur.Load().unit.cert.NotAfter, "clock", cfg.TSA.Timestamp.Clock.Source)
	return nil
}

// requesterOf names the requester of a time-stamp: the authenticated caller
// when the request carries a bearer token or a client certificate that
// verify, otherwise the remote address.
func requesterOf(authn *auth.Authenticator) func(*http.Request) string {
	return func(r *http.Request) string {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr := "addr:" + host
		if authn == nil || (r.Header.Get("Authorization") == "" && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0)) {
			return addr
		}
		pr, err := authn.Authenticate(r)
		if err != nil {
			return addr + " (credentials refused)"
		}
		return pr.Method + ":" + pr.Subject
	}
}

// tsaAuditActor is the actor of the timestamp.issue records: the TSA
// itself; each token's requester is in its item.
const tsaAuditActor = "thiqa-tsa"

// auditRecorder records every token in the group-committing audit log
// (timestamp.Recorder): Record returns once the record holding the token
// is durable. The tokens of one audit batch share one hash-chained
// timestamp.issue record (audit.Group): actor thiqa-tsa, object the unit
// certificate's serial (hex), details
//
//	{"count":2,"items":[
//	  {"genTime":"2026-11-22T12:00:00.123Z","hashAlgorithm":"SHA-256","imprint":"<hex>",
//	   "policy":"0.4.0.2023.1.1","requester":"addr:192.0.2.7","serial":"1001"},
//	  {…}]}
type auditRecorder struct {
	group *audit.Group
	bufs  sync.Pool // *[]byte item buffers
}

// newAuditRecorder returns the recorder of the unit whose certificate
// serial is unit (hex).
func newAuditRecorder(log *audit.Log, unit string) (*auditRecorder, error) {
	g, err := log.Group(tsaAuditActor, tsaActionIssue, unit, audit.OutcomeSuccess)
	if err != nil {
		return nil, err
	}
	return &auditRecorder{group: g}, nil
}

// Record implements timestamp.Recorder.
func (r *auditRecorder) Record(ctx context.Context, rec timestamp.TokenRecord) error {
	bp, _ := r.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	item := appendTokenItem((*bp)[:0], rec)
	if _, err := r.group.Append(ctx, item); err != nil {
		// The item may still be queued: its buffer is not reused.
		return err
	}
	// Committed: the log has copied the item into the record.
	*bp = item
	r.bufs.Put(bp)
	return nil
}

// appendTokenItem encodes a token's audit item (keys in alphabetical order).
func appendTokenItem(b []byte, rec timestamp.TokenRecord) []byte {
	b = append(b, `{"genTime":"`...)
	b = rec.GenTime.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","hashAlgorithm":`...)
	b = audit.AppendJSONString(b, hashName(rec.HashAlgorithm))
	b = append(b, `,"imprint":"`...)
	b = hex.AppendEncode(b, rec.Imprint)
	b = append(b, `","policy":`...)
	b = audit.AppendJSONString(b, rec.Policy)
	b = append(b, `,"requester":`...)
	b = audit.AppendJSONString(b, rec.Requester)
	b = append(b, `,"serial":"`...)
	b = rec.Serial.Append(b, 10)
	return append(b, `"}`...)
}

// hashName is a hash's name for records and output.
func hashName(h crypto.Hash) string { return h.String() }
