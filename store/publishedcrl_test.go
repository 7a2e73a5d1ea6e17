package store_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

func fakeCRL(name string, number int64, base *big.Int, der string) *crl.CRL {
	now := time.Now().UTC().Truncate(time.Second)
	return &crl.CRL{Name: name, Issuer: "citizen", Partition: 1, Number: big.NewInt(number), ThisUpdate: now,
		NextUpdate: now.Add(time.Hour), Entries: int(number), BaseNumber: base, DER: []byte(der)}
}

func TestPublishedCRLs(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, d.NewConfig(t)).PublishedCRLs()
			if heads, err := st.PublishedHeads(ctx, "citizen"); err != nil || len(heads) != 0 {
				t.Fatalf("heads of an empty store: %v %v", heads, err)
			}
			if p, err := st.PublishedCRL(ctx, "citizen", 1, nil); p != nil || err != nil {
				t.Fatalf("pair of an empty store: %v %v", p, err)
			}
			serveFrom := time.Unix(1_700_000_000, 123456789).UTC()
			pair := &crl.Published{Issuer: "citizen", Partition: 1, Fingerprint: "fp1", ServeFrom: serveFrom,
				Complete: fakeCRL("citizen-1.crl", 9, nil, "complete 9")}
			pair.Delta = fakeCRL("citizen-1-delta.crl", 10, pair.Complete.Number, "delta 10")
			if err := st.SavePublished(ctx, pair); err != nil {
				t.Fatal(err)
			}
			heads, err := st.PublishedHeads(ctx, "citizen")
			if err != nil || len(heads) != 1 {
				t.Fatalf("heads: %v %v", heads, err)
			}
			h := heads[0]
			if h.Fingerprint != "fp1" || !h.ServeFrom.Equal(serveFrom) || h.Complete.Number.Int64() != 9 || h.Complete.DER != nil ||
				h.Complete.Name != "citizen-1.crl" || !h.Complete.ThisUpdate.Equal(pair.Complete.ThisUpdate) || h.Complete.Entries != 9 ||
				h.Delta == nil || h.Delta.Number.Int64() != 10 || h.Delta.BaseNumber.Int64() != 9 || h.Delta.DER != nil || h.Delta.Name != "citizen-1-delta.crl" {
				t.Fatalf("head %+v complete %+v delta %+v", h, h.Complete, h.Delta)
			}
			full, err := st.PublishedCRL(ctx, "citizen", 1, nil)
			if err != nil || string(full.Complete.DER) != "complete 9" || string(full.Delta.DER) != "delta 10" {
				t.Fatalf("pair: %+v %v", full, err)
			}
			full, err = st.PublishedCRL(ctx, "citizen", 1, big.NewInt(9))
			if err != nil || full.Complete.DER != nil || string(full.Delta.DER) != "delta 10" {
				t.Fatalf("pair without the complete DER held: %+v %v", full, err)
			}
			// Never back: an older pair, or the same, is refused.
			older := &crl.Published{Issuer: "citizen", Partition: 1, Fingerprint: "fp1", ServeFrom: serveFrom, Complete: fakeCRL("citizen-1.crl", 8, nil, "complete 8")}
			for _, p := range []*crl.Published{older, pair} {
				if err := st.SavePublished(ctx, p); !errors.Is(err, crl.ErrNotNewer) {
					t.Fatalf("saving pair %v: %v, want ErrNotNewer", p.Complete.Number, err)
				}
			}
			// A delta of another base, or not newer, is refused; a newer
			// one of the stored base replaces the delta.
			if err := st.SaveDelta(ctx, fakeCRL("citizen-1-delta.crl", 11, big.NewInt(8), "delta 11"), serveFrom); !errors.Is(err, crl.ErrNotNewer) {
				t.Fatalf("delta of another base: %v", err)
			}
			if err := st.SaveDelta(ctx, fakeCRL("citizen-1-delta.crl", 10, big.NewInt(9), "delta 10"), serveFrom); !errors.Is(err, crl.ErrNotNewer) {
				t.Fatalf("same delta again: %v", err)
			}
			later := serveFrom.Add(time.Minute)
			if err := st.SaveDelta(ctx, fakeCRL("citizen-1-delta.crl", 11, big.NewInt(9), "delta 11"), later); err != nil {
				t.Fatal(err)
			}
			full, err = st.PublishedCRL(ctx, "citizen", 1, nil)
			if err != nil || string(full.Complete.DER) != "complete 9" || string(full.Delta.DER) != "delta 11" || !full.ServeFrom.Equal(later) {
				t.Fatalf("after the new delta: %+v %v", full, err)
			}
			// Numbers order as numbers (10 after 9, up to 2^160-1), and a
			// complete CRL without a delta replaces a pair with one.
			big160 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))
			top := &crl.Published{Issuer: "citizen", Partition: 1, Fingerprint: "fp2", ServeFrom: later, Complete: fakeCRL("citizen-1.crl", 12, nil, "complete top")}
			top.Complete.Number = big160
			if err := st.SavePublished(ctx, top); err != nil {
				t.Fatal(err)
			}
			full, err = st.PublishedCRL(ctx, "citizen", 1, nil)
			if err != nil || full.Complete.Number.Cmp(big160) != 0 || full.Delta != nil || full.Fingerprint != "fp2" {
				t.Fatalf("after a complete CRL alone: %+v %v", full, err)
			}
			if other, err := st.PublishedHeads(ctx, "other"); err != nil || len(other) != 0 {
				t.Fatalf("another CA's heads: %v %v", other, err)
			}
		})
	}
}

// countNumbers counts the CRL numbers one node takes.
type countNumbers struct {
	crl.NumberSource
	n atomic.Int64
}

func (c *countNumbers) NextCRLNumber(ctx context.Context, issuer string) (*big.Int, error) {
	c.n.Add(1)
	return c.NumberSource.NextCRLNumber(ctx, issuer)
}

// TestTwoNodesServeTheSameCRLs runs two CRL publishers over one PostgreSQL
// database, as two `thiqa serve` nodes do: they sign one complete CRL and
// one delta between them, serve the same bytes, and after a revocation
// serve the same delta, which applies to the complete CRL they serve.
func TestTwoNodesServeTheSameCRLs(t *testing.T) {
	var pg storetest.Dialect
	for _, d := range storetest.Dialects() {
		if d.Name == store.DriverPostgres {
			pg = d
		}
	}
	cfg := pg.NewConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set, err := crl.Config{BaseURL: "http://pki.example.com", Deltas: true, TriggerDelay: 20 * time.Millisecond}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	cert, key := testCA(t)
	type node struct {
		db   *store.DB
		pub  *crl.Publisher
		nums *countNumbers
	}
	var nodes []node
	for range 2 {
		db := storetest.Open(t, cfg)
		rs := db.Revocations()
		nums := &countNumbers{NumberSource: rs}
		g, err := crl.NewGenerator(set, crl.Issuer{Name: "citizen", Cert: cert, Signer: key}, nums, rs)
		if err != nil {
			t.Fatal(err)
		}
		p, err := crl.NewPublisher(set, nil, prometheus.NewRegistry(), g)
		if err != nil {
			t.Fatal(err)
		}
		p.Share(db.PublishedCRLs(), crl.ShareOptions{SyncEvery: 50 * time.Millisecond, SwitchDelay: 400 * time.Millisecond})
		nodes = append(nodes, node{db: db, pub: p, nums: nums})
	}
	done := make(chan struct{}, len(nodes))
	for _, n := range nodes {
		go func() { _ = n.pub.Run(ctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range nodes {
			<-done
		}
	}()
	der := func(n node, name string) []byte {
		c, ok := n.pub.Latest(name)
		if !ok {
			return nil
		}
		return c.DER
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	same := func() bool {
		a, b := der(nodes[0], "citizen.crl"), der(nodes[1], "citizen.crl")
		ad, bd := der(nodes[0], "citizen-delta.crl"), der(nodes[1], "citizen-delta.crl")
		return a != nil && ad != nil && bytes.Equal(a, b) && bytes.Equal(ad, bd)
	}
	waitUntil("both nodes serve the CRLs", same)
	time.Sleep(300 * time.Millisecond) // a second signer would have stored its pair by now
	if n := nodes[0].nums.n.Load() + nodes[1].nums.n.Load(); n != 2 {
		t.Fatalf("%d CRLs signed by two starting nodes, want 2 (one complete, one delta)", n)
	}

	// A certificate is revoked on one node; both learn of it (the API,
	// the poll) and trigger.
	serial := serialN(7)
	seedCert(t, nodes[0].db, serial, "citizen", "issued", 0)
	if _, err := nodes[0].db.Revocations().Revoke(ctx, store.SerialKey(serial), crl.ReasonKeyCompromise, "officer", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.pub.Trigger("citizen")
	}
	lists := func(n node) bool {
		d := der(n, "citizen-delta.crl")
		rl, err := x509.ParseRevocationList(d)
		return err == nil && len(rl.RevokedCertificateEntries) == 1 && rl.RevokedCertificateEntries[0].SerialNumber.Cmp(serial) == 0
	}
	waitUntil("both nodes serve a delta listing the revocation", func() bool { return lists(nodes[0]) && lists(nodes[1]) })
	time.Sleep(time.Second) // both triggered publications are done and served
	if !same() {
		t.Fatal("the nodes serve different CRLs")
	}
	complete, err := x509.ParseRevocationList(der(nodes[0], "citizen.crl"))
	if err != nil {
		t.Fatal(err)
	}
	delta, err := x509.ParseRevocationList(der(nodes[0], "citizen-delta.crl"))
	if err != nil {
		t.Fatal(err)
	}
	var base *big.Int
	for _, e := range delta.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 27}) {
			if _, err := asn1.Unmarshal(e.Value, &base); err != nil {
				t.Fatal(err)
			}
		}
	}
	if base == nil || base.Cmp(complete.Number) > 0 || complete.Number.Cmp(delta.Number) >= 0 {
		t.Fatalf("delta %v (base %v) does not apply to the complete CRL %v", delta.Number, base, complete.Number)
	}
}
