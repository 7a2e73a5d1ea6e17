package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/url"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// inProcessRequester is the requester the TSA records for the signing
// service's own time-stamps: what requesterOf names a request that came
// through inProcessTransport (no credentials, remote address "in-process"),
// so the token records read as they did when the call went over HTTP.
const inProcessRequester = "addr:in-process"

// ownTSA is the signer's TimestampClient when signing.tsaURL is this
// server's own /tsa: it asks the TSA's current Authority in process,
// through Authority.Issue, with the request timestamp.Client would send
// (SHA-256 imprint, 128-bit nonce, certReq, no policy). The token is the
// one the TSA would have put in its HTTP reply, recorded in the audit log
// before it is signed exactly as for an HTTP request; only the HTTP round
// trip and the reply envelope are saved.
type ownTSA struct {
	tsa *tsaService
}

// Timestamp implements signer.TimestampClient.
func (t *ownTSA) Timestamp(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error) {
	oid, ok := tsp.OIDFromHash(hash)
	if !ok || !hash.Available() {
		return nil, fmt.Errorf("own TSA: hash %v not supported", hash)
	}
	if len(digest) != hash.Size() {
		return nil, fmt.Errorf("own TSA: %v digest must be %d bytes, got %d", hash, hash.Size(), len(digest))
	}
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, fmt.Errorf("own TSA: nonce: %w", err)
	}
	nb[0] |= 0x01 // never zero
	req := tsp.Request{
		MessageImprint: tsp.MessageImprint{HashAlgorithm: oid, HashedMessage: digest},
		Nonce:          new(big.Int).SetBytes(nb[:]), CertReq: true,
	}
	der, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("own TSA: encoding the request: %w", err)
	}
	g := t.tsa.cur.Load() // the unit in use now (renewal swaps it)
	if g == nil {
		return nil, fmt.Errorf("own TSA: no unit installed")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tok, err := g.auth.Issue(ctx, der, inProcessRequester)
	if err != nil {
		return nil, fmt.Errorf("own TSA: %w", err)
	}
	return tok, nil
}

// ownTSAFor returns the in-process TSA when tsaURL names this server's own
// /tsa (publicBaseURL's scheme and host, path /tsa) and the TSA service of
// this server has been wired (sv.tsa); nil otherwise (another TSA, or no
// TSA here), and the HTTP client is used.
func ownTSAFor(sv *serving, publicBaseURL, tsaURL string) *ownTSA {
	if sv == nil || sv.tsa == nil {
		return nil
	}
	base, err := url.Parse(publicBaseURL)
	if err != nil {
		return nil
	}
	u, err := url.Parse(tsaURL)
	if err != nil || u.Host != base.Host || u.Scheme != base.Scheme || u.Path != "/tsa" || u.RawQuery != "" {
		return nil
	}
	return &ownTSA{tsa: sv.tsa}
}
