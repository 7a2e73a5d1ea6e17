package ocsp

import (
	"context"
	"crypto"
	"math/big"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// TestNegativeSerialIsNotPositive: a request for serial -7 is not answered
// from serial 7's cached response.
func TestNegativeSerialIsNotPositive(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	cache := NewCache(1000)
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}}, src, cache, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PresignAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	req, err := NewRequest(p.ca, big.NewInt(-7), crypto.SHA1, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := r.Respond(context.Background(), req)
	parsed, err := xocsp.ParseResponse(der, p.ca)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.SerialNumber.Cmp(big.NewInt(-7)) != 0 {
		t.Errorf("answered -7 with serial %v's response", parsed.SerialNumber)
	}
}

// TestRevokedForOneHashIsRevokedForAll: once a revoked response is cached
// for one CertID hash, the good entries of the other hashes are misses.
func TestRevokedForOneHashIsRevokedForAll(t *testing.T) {
	c := NewCache(1000)
	x := big.NewInt(9)
	now := time.Now()
	c.Put("citizen", crypto.SHA1, x, entry(Good, now))
	c.Put("citizen", crypto.SHA256, x, entry(Good, now))
	c.Put("citizen", crypto.SHA1, x, entry(Revoked, now.Add(time.Second)))
	if e, ok := c.Get("citizen", crypto.SHA256, x); ok && e.State == Good {
		t.Errorf("serial remembered as revoked (RevokedLen %d) but SHA256 still serves good", c.RevokedLen())
	}
}

// TestRevocationCutShortAnswersRevoked: Revoked() stops at the first
// failing hash (here a cancelled context); the other hashes must not keep
// answering good.
func TestRevocationCutShortAnswersRevoked(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 9, Status{State: Good})
	set := testSettings(t)
	set.MaxConcurrentSigns = 1
	set.PresignWorkers = 1
	cache := NewCache(1000)
	r, err := New(set, []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}}, src, cache, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := big.NewInt(9)
	is := r.issuers["citizen"]
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if _, err := r.signStatus(context.Background(), is, h, x, Status{State: Good}, sigMiss); err != nil {
			t.Fatal(err)
		}
	}
	src.set("citizen", 9, Status{State: Revoked, RevokedAt: time.Now(), Reason: 1})
	// Simulate: the revocation API's ctx is cancelled after the SHA1 re-sign.
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := r.signStatus(ctx, is, crypto.SHA1, x, Status{State: Revoked, RevokedAt: time.Now(), Reason: 1}, sigRevoked); err != nil {
		t.Fatal(err)
	}
	cancel()
	r.sem <- struct{}{} // an on-demand signature in flight
	err = r.Revoked(ctx, "citizen", x)
	<-r.sem
	if err == nil {
		t.Fatal("Revoked with a cancelled context and no signing slot succeeded")
	}
	req, _ := NewRequest(p.ca, x, crypto.SHA256, nil)
	der, _ := r.Respond(context.Background(), req)
	parsed, err := xocsp.ParseResponse(der, p.ca)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Status == xocsp.Good {
		t.Errorf("SHA256 request for a revoked (and cache-marked revoked) serial answered good")
	}
}
