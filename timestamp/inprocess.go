package timestamp

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/url"
)

// InProcessClient asks a Service in the same process for time-stamp
// tokens: the signer's TimestampClient when the signature time-stamps come
// from this server's own TSA. It sends the unit in use at each call (a
// renewal swaps it) the request Client would send (SHA-256 or another
// accepted imprint, a 128-bit nonce, certReq, no policy) through
// Authority.Issue: the token is the one the TSA would have put in its HTTP
// reply, recorded in the audit log before it is signed exactly as for an
// HTTP request; only the HTTP round trip and the reply envelope are saved.
type InProcessClient struct {
	svc       *Service
	requester string
}

// NewInProcessClient returns a client of svc whose tokens are recorded as
// requested by requester.
func NewInProcessClient(svc *Service, requester string) *InProcessClient {
	return &InProcessClient{svc: svc, requester: requester}
}

// Timestamp returns a DER time-stamp token (a CMS ContentInfo) for digest,
// the hash (by hash) of the data. A refusal is a *StatusError.
func (c *InProcessClient) Timestamp(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error) {
	_, der, err := newRequest(digest, hash, nil, true)
	if err != nil {
		return nil, fmt.Errorf("own TSA: %w", err)
	}
	a := c.svc.authority()
	if a == nil {
		return nil, errors.New("own TSA: no unit installed")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tok, err := a.Issue(ctx, der, c.requester)
	if err != nil {
		return nil, fmt.Errorf("own TSA: %w", err)
	}
	return tok, nil
}

// OwnClient returns an in-process client of svc, its tokens recorded as
// requested by requester, when tsaURL names this server's own /tsa
// (publicBaseURL's scheme and host, path /tsa, no query) and svc is wired;
// nil otherwise (another TSA, or no TSA here): the caller then keeps its
// HTTP client.
func OwnClient(svc *Service, publicBaseURL, tsaURL, requester string) *InProcessClient {
	if svc == nil {
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
	return NewInProcessClient(svc, requester)
}
