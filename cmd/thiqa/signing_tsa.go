package main

import (
	"context"
	"crypto"
	"net/url"

	"github.com/thiqa/thiqa/timestamp"
)

// inProcessRequester is the requester the TSA records for the signing
// service's own time-stamps: what requesterOf names a request that came
// through inprocess.Transport (no credentials, remote address "in-process"),
// so the token records read as they did when the call went over HTTP.
const inProcessRequester = "addr:in-process"

// tsaService is the TSA as `thiqa serve` wires it (serving.tsa).
type tsaService = timestamp.Service

// ownTSA is the signer's TimestampClient when signing.tsaURL is this
// server's own /tsa: the TSA's timestamp.InProcessClient, its tokens
// recorded as requested by inProcessRequester.
type ownTSA struct {
	tsa *tsaService
}

// Timestamp implements signer.TimestampClient.
func (t *ownTSA) Timestamp(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error) {
	return timestamp.NewInProcessClient(t.tsa, inProcessRequester).Timestamp(ctx, digest, hash)
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
