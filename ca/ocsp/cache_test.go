package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	xocsp "golang.org/x/crypto/ocsp"
	"gopkg.in/yaml.v3"
)

func entry(st State, at time.Time) *Entry {
	return &Entry{DER: []byte{1}, State: st, ThisUpdate: at, NextUpdate: at.Add(24 * time.Hour)}
}

// checkShards asserts every shard's map and clock agree and stay in bounds.
func checkShards(t *testing.T, c *Cache) {
	t.Helper()
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		if len(s.m) != len(s.slots) || len(s.slots) > s.limit {
			t.Fatalf("shard %d: map %d, slots %d, limit %d", i, len(s.m), len(s.slots), s.limit)
		}
		for k, j := range s.m {
			if s.slots[j].key != k {
				t.Fatalf("shard %d: index of %v points at %v", i, k, s.slots[j].key)
			}
		}
		total += len(s.slots)
	}
	if total != c.Len() || total > c.Cap() {
		t.Fatalf("entries %d, Len %d, Cap %d", total, c.Len(), c.Cap())
	}
}

func TestCacheCapacityUnderConcurrentPuts(t *testing.T) {
	const capacity, workers, each = 1000, 8, 5000
	c := NewCache(capacity)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range each {
				serial := new(big.Int).SetUint64(rng.Uint64())
				if !c.Put("citizen", crypto.SHA1, serial, entry(Good, time.Now())) {
					t.Errorf("put %d refused", i)
				}
				c.Get("citizen", crypto.SHA1, serial)
				if n := c.Len(); n > capacity {
					t.Errorf("Len %d above capacity", n)
				}
			}
		})
	}
	wg.Wait()
	checkShards(t, c)
	if c.Len() != capacity || !c.Full() {
		t.Fatalf("Len %d, Full %v after %d distinct puts", c.Len(), c.Full(), workers*each)
	}
	if got := c.Evictions(); got != workers*each-capacity {
		t.Fatalf("evictions %d, want %d", got, workers*each-capacity)
	}
}

func TestCacheEvictsUnreadFirst(t *testing.T) {
	c := NewCache(2 * cacheShards)                              // two entries per shard
	a, b, d := big.NewInt(64), big.NewInt(128), big.NewInt(192) // same shard
	now := time.Now()
	c.Put("citizen", crypto.SHA1, a, entry(Good, now))
	c.Put("citizen", crypto.SHA1, b, entry(Good, now))
	if c.Full() || c.Evictions() != 0 {
		t.Fatal("cache full before any eviction")
	}
	if _, ok := c.Get("citizen", crypto.SHA1, a); !ok {
		t.Fatal("a missing")
	}
	c.Put("citizen", crypto.SHA1, d, entry(Good, now))
	if _, ok := c.Get("citizen", crypto.SHA1, b); ok {
		t.Fatal("the unread entry b survived")
	}
	for _, s := range []*big.Int{a, d} {
		if _, ok := c.Get("citizen", crypto.SHA1, s); !ok {
			t.Fatalf("%v evicted", s)
		}
	}
	if c.Evictions() != 1 || c.Len() != 2 || !c.Full() {
		t.Fatalf("evictions %d, Len %d, Full %v", c.Evictions(), c.Len(), c.Full())
	}
	// Replacing a present entry neither grows nor evicts; an older one is refused.
	if !c.Put("citizen", crypto.SHA1, a, entry(Good, now.Add(time.Second))) || c.Put("citizen", crypto.SHA1, a, entry(Good, now)) {
		t.Fatal("newer refused or older accepted")
	}
	if c.Evictions() != 1 || c.Len() != 2 {
		t.Fatalf("replace changed size: evictions %d, Len %d", c.Evictions(), c.Len())
	}
	checkShards(t, c)
}

func TestCacheDefaultAndTinyCapacity(t *testing.T) {
	if c := NewCache(0); c.Cap() != DefaultCacheEntries {
		t.Fatalf("default cap %d", c.Cap())
	}
	c := NewCache(3) // only shards 0..2 hold anything
	if !c.Put("citizen", crypto.SHA1, big.NewInt(1), entry(Good, time.Now())) {
		t.Fatal("shard 1 refused")
	}
	if c.Put("citizen", crypto.SHA1, big.NewInt(5), entry(Good, time.Now())) || c.Len() != 1 {
		t.Fatal("a shard without room stored an entry")
	}
	// A shard without room still remembers a revocation.
	c.Put("citizen", crypto.SHA1, big.NewInt(5), entry(Revoked, time.Now()))
	if c.RevokedLen() != 1 {
		t.Fatal("revocation forgotten in a shard without room")
	}
}

func TestCacheRevokedSurvivesEviction(t *testing.T) {
	c := NewCache(1000)
	x := big.NewInt(4242)
	now := time.Now()
	c.Put("citizen", crypto.SHA1, x, entry(Good, now))
	if !c.Put("citizen", crypto.SHA1, x, entry(Revoked, now)) {
		t.Fatal("revoked did not replace good")
	}
	for i := range 20000 { // fill: x's shard evicts it
		c.Put("citizen", crypto.SHA1, big.NewInt(int64(100000+i)), entry(Good, now))
	}
	if _, ok := c.Get("citizen", crypto.SHA1, x); ok {
		t.Fatal("revoked entry not evicted; the test proves nothing")
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		if c.Put("citizen", h, x, entry(Good, now.Add(time.Hour))) {
			t.Fatalf("%s: good stored for a serial once revoked", h)
		}
	}
	if _, ok := c.Get("citizen", crypto.SHA1, x); ok {
		t.Fatal("good entry present")
	}
	// Another issuer's certificate with the same serial is not affected.
	if !c.Put("organisation", crypto.SHA1, x, entry(Good, now)) {
		t.Fatal("revocation leaked to another issuer")
	}
	if !c.Put("citizen", crypto.SHA1, x, entry(Revoked, now.Add(time.Hour))) {
		t.Fatal("a fresh revoked response refused")
	}
	if c.RevokedLen() != 1 {
		t.Fatalf("RevokedLen %d", c.RevokedLen())
	}
	checkShards(t, c)
}

func TestCacheEntriesConfig(t *testing.T) {
	for n, want := range map[int]int{0: DefaultCacheEntries, 1000: 1000, 10_000_000: 10_000_000} {
		s, err := Config{CacheEntries: n}.Validate()
		if err != nil || s.CacheEntries != want {
			t.Errorf("cacheEntries %d: %d, %v", n, s.CacheEntries, err)
		}
	}
	for _, n := range []int{-1, 1, 999, 100_000_001} {
		if _, err := (Config{CacheEntries: n}).Validate(); err == nil {
			t.Errorf("cacheEntries %d accepted", n)
		}
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("validity: 24h\ncacheEntries: 5000\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil || c.CacheEntries != 5000 {
		t.Fatalf("decode: %v %+v", err, c)
	}
	dec = yaml.NewDecoder(strings.NewReader("cacheEntry: 5000\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil {
		t.Fatal("misspelt key accepted")
	}
}

func newServer(t *testing.T, r *Responder) string {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

func post(t *testing.T, url string, req []byte) []byte {
	t.Helper()
	resp, err := http.Post(url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return body
}

func TestRevokedAnsweredAfterEviction(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	cache := NewCache(1000)
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}}, src, cache, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, r)
	ctx := context.Background()
	if err := r.PresignAll(ctx); err != nil {
		t.Fatal(err)
	}
	is := r.issuers["citizen"]
	x := big.NewInt(7)
	src.set("citizen", 7, Status{State: Revoked, RevokedAt: time.Now(), Reason: 1})
	if err := r.Revoked(ctx, "citizen", x); err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		cache.Put("citizen", crypto.SHA1, big.NewInt(int64(1000+i)), entry(Good, time.Now()))
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if _, ok := cache.Get("citizen", h, x); ok {
			t.Fatalf("%s: revoked response not evicted", h)
		}
	}
	// A job that read "good" just before the revocation finishes now.
	if _, err := r.signStatus(ctx, is, crypto.SHA1, x, Status{State: Good}, sigMiss); err != nil {
		t.Fatal(err)
	}
	if e, ok := cache.Get("citizen", crypto.SHA1, x); ok {
		t.Fatalf("stale %v response cached after the revoked one was evicted", e.State)
	}
	req, _ := NewRequest(p.ca, x, crypto.SHA1, nil)
	for range 2 { // on demand, then from the cache
		parsed, err := xocsp.ParseResponse(post(t, srv, req), p.ca)
		if err != nil || parsed.Status != xocsp.Revoked {
			t.Fatalf("%v %+v", err, parsed)
		}
	}
}

func TestPresignStopsWhenFull(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	for i := range 3000 {
		src.set("citizen", int64(i+1), Status{State: Good})
	}
	for i := range 300 {
		src.set("citizen", int64(10001+i), Status{State: Revoked, RevokedAt: time.Now().Add(-time.Hour), Reason: 1})
	}
	set, err := Config{CacheEntries: 1000}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	cache := NewCache(set.CacheEntries)
	r, err := New(set, []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}}, src, cache,
		slog.New(slog.NewTextHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, r)
	// Pre-signing stops at the first eviction of any shard: with 16 slots a
	// shard and the statuses in random order, that is after a few hundred.
	n, err := r.PresignIssuer(context.Background(), "citizen")
	if err != nil || n < 100 || n > 1500 || !cache.Full() || cache.Len() > 1000 {
		t.Fatalf("pre-signed %d of 3300, cached %d, full %v, err %v", n, cache.Len(), cache.Full(), err)
	}
	if c := strings.Count(logs.String(), "pre-signing stopped"); c != 1 {
		t.Fatalf("%d stop lines in %q", c, logs.String())
	}
	if got := counter(t, reg, "thiqa_ocsp_cache_evictions_total", nil); got != float64(cache.Evictions()) {
		t.Fatalf("evictions metric %v, cache %d", got, cache.Evictions())
	}
	if got := counter(t, reg, "thiqa_ocsp_cache_entries", nil); got != float64(cache.Len()) {
		t.Fatalf("entries metric %v, cache %d", got, cache.Len())
	}
	// Certificates left out are answered on demand, with their true status.
	checked := map[int]int{}
	for _, s := range []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008, 10009, 10010} {
		serial := big.NewInt(s)
		if _, ok := cache.Get("citizen", crypto.SHA1, serial); ok {
			continue
		}
		want := xocsp.Good
		if s > 10000 {
			want = xocsp.Revoked
		}
		before := counter(t, reg, "thiqa_ocsp_signatures_total", map[string]string{"reason": "cache_miss"})
		req, _ := NewRequest(p.ca, serial, crypto.SHA1, nil)
		parsed, err := xocsp.ParseResponse(post(t, srv, req), p.ca)
		if err != nil || parsed.Status != want || parsed.SerialNumber.Cmp(serial) != 0 {
			t.Fatalf("serial %d: %v %+v", s, err, parsed)
		}
		if after := counter(t, reg, "thiqa_ocsp_signatures_total", map[string]string{"reason": "cache_miss"}); after != before+1 {
			t.Fatalf("serial %d not signed on demand", s)
		}
		checked[want]++
	}
	if checked[xocsp.Good] == 0 || checked[xocsp.Revoked] == 0 {
		t.Fatalf("no uncached good or revoked serial among the probes: %v", checked)
	}
	// A refresh with a full cache signs nothing more.
	if n, err := r.PresignIssuer(context.Background(), "citizen"); err != nil || n != 0 {
		t.Fatalf("refresh of a full cache signed %d, err %v", n, err)
	}
	if cache.Len() > 1000 {
		t.Fatalf("cached %d", cache.Len())
	}
}
