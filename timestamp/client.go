package timestamp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	_ "crypto/sha256" // registers SHA-256 for HashByName
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for HashByName
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// StatusError is a time-stamp request the TSA did not grant.
type StatusError struct {
	Status tsp.StatusInfo
	// cause is, for a refusal by the TSA in this process, the error behind
	// a systemFailure (an outage stays visible to outage.Is).
	cause error
}

// Error implements the error interface.
func (e *StatusError) Error() string { return "time-stamp request refused: " + e.Status.String() }

// Unwrap returns the cause of a systemFailure of the TSA in this process
// (nil otherwise).
func (e *StatusError) Unwrap() error { return e.cause }

// ClientOptions tune a Client.
type ClientOptions struct {
	// HTTPClient is used for requests; a plain http.Client when nil.
	HTTPClient *http.Client
	// Timeout bounds one request; default 10 s.
	Timeout time.Duration
	// Policy is a TSA policy OID to request; empty asks for none.
	Policy string
	// NoCertReq leaves certReq false: the token then carries no certificates.
	NoCertReq bool
	// MaxResponseBytes bounds the reply; default 1 MiB.
	MaxResponseBytes int64
}

// Client asks an RFC 3161 TSA for time-stamp tokens over HTTP.
type Client struct {
	url     string
	http    *http.Client
	timeout time.Duration
	policy  asn1.ObjectIdentifier
	certReq bool
	maxResp int64
}

// NewClient returns a Client for the TSA at rawURL (http or https).
func NewClient(rawURL string, o ClientOptions) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("timestamp client: %q is not an http(s) URL", rawURL)
	}
	c := &Client{url: rawURL, http: o.HTTPClient, timeout: o.Timeout, certReq: !o.NoCertReq, maxResp: o.MaxResponseBytes}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.maxResp <= 0 {
		c.maxResp = 1 << 20
	}
	if o.Policy != "" {
		if c.policy, err = parseOID(o.Policy); err != nil {
			return nil, fmt.Errorf("timestamp client: policy: %w", err)
		}
	}
	return c, nil
}

// Timestamp requests a token for digest, the hash (by hash) of the data,
// and returns the DER time-stamp token (a CMS ContentInfo) after checking
// the response status, the nonce, the message imprint and the policy. It
// does not verify the token's signature or certificate path: relying
// parties do that (verify/).
func (c *Client) Timestamp(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error) {
	req, body, err := newRequest(digest, hash, c.policy, c.certReq)
	if err != nil {
		return nil, fmt.Errorf("timestamp client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("timestamp client: %w", err)
	}
	hreq.Header.Set("Content-Type", QueryContentType)
	hreq.Header.Set("Accept", ReplyContentType)
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("timestamp client: posting to %s: %w", c.url, err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hresp.Body, c.maxResp+1))
	if err != nil {
		return nil, fmt.Errorf("timestamp client: reading the reply: %w", err)
	}
	// A TSA whose database or key is down for now answers its
	// systemFailure with HTTP 503 (Thiqa's does): read it like a 200.
	if hresp.StatusCode != http.StatusOK && hresp.StatusCode != http.StatusServiceUnavailable {
		return nil, fmt.Errorf("timestamp client: %s answered HTTP %d", c.url, hresp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(hresp.Header.Get("Content-Type")); mt != ReplyContentType {
		return nil, fmt.Errorf("timestamp client: reply media type %q, want %s", mt, ReplyContentType)
	}
	if int64(len(raw)) > c.maxResp {
		return nil, fmt.Errorf("timestamp client: reply larger than %d bytes", c.maxResp)
	}
	return checkReply(raw, req)
}

// newRequest builds the DER TimeStampReq for digest (the hash, by hash, of
// the data) with a fresh 128-bit nonce, the policy (nil for none) and
// certReq.
func newRequest(digest []byte, hash crypto.Hash, policy asn1.ObjectIdentifier, certReq bool) (*tsp.Request, []byte, error) {
	oid, ok := tsp.OIDFromHash(hash)
	if !ok || !hash.Available() {
		return nil, nil, fmt.Errorf("hash %v not supported", hash)
	}
	if len(digest) != hash.Size() {
		return nil, nil, fmt.Errorf("%v digest must be %d bytes, got %d", hash, hash.Size(), len(digest))
	}
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, nil, fmt.Errorf("nonce: %w", err)
	}
	nb[0] |= 0x01 // never zero
	req := &tsp.Request{
		MessageImprint: tsp.MessageImprint{HashAlgorithm: oid, HashedMessage: digest},
		ReqPolicy:      policy, Nonce: new(big.Int).SetBytes(nb[:]), CertReq: certReq,
	}
	der, err := req.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the request: %w", err)
	}
	return req, der, nil
}

func checkReply(raw []byte, req *tsp.Request) ([]byte, error) {
	resp, err := tsp.ParseResponse(raw)
	if err != nil {
		return nil, fmt.Errorf("timestamp client: %w", err)
	}
	if resp.Status.Status != tsp.StatusGranted && resp.Status.Status != tsp.StatusGrantedWithMods {
		return nil, &StatusError{Status: resp.Status}
	}
	tok, err := tsp.ParseToken(resp.Token)
	if err != nil {
		return nil, fmt.Errorf("timestamp client: %w", err)
	}
	info := tok.Info
	switch {
	case info.Nonce == nil || info.Nonce.Cmp(req.Nonce) != 0:
		return nil, errors.New("timestamp client: the token does not echo the request's nonce")
	case !info.MessageImprint.HashAlgorithm.Equal(req.MessageImprint.HashAlgorithm) ||
		!bytes.Equal(info.MessageImprint.HashedMessage, req.MessageImprint.HashedMessage):
		return nil, errors.New("timestamp client: the token's message imprint differs from the request's")
	case req.ReqPolicy != nil && !info.Policy.Equal(req.ReqPolicy):
		return nil, fmt.Errorf("timestamp client: the token's policy %s is not the requested %s", info.Policy, req.ReqPolicy)
	case req.CertReq && len(tok.Certificates) == 0:
		return nil, errors.New("timestamp client: certificates were requested but the token carries none")
	}
	return resp.Token, nil
}

// clientHashes are the message imprint hashes HashByName knows.
var clientHashes = map[string]crypto.Hash{"sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}

// HashByName returns the message imprint hash named sha256, sha384 or
// sha512 (in any case); ok is false for any other name.
func HashByName(name string) (h crypto.Hash, ok bool) {
	h, ok = clientHashes[strings.ToLower(name)]
	return h, ok
}

// TimestampData hashes data (by hash) as it streams and requests a token
// over the digest (Timestamp).
func (c *Client) TimestampData(ctx context.Context, data io.Reader, hash crypto.Hash) ([]byte, error) {
	hw := hash.New()
	if _, err := io.Copy(hw, data); err != nil {
		return nil, fmt.Errorf("timestamp client: reading the data: %w", err)
	}
	return c.Timestamp(ctx, hw.Sum(nil), hash)
}
