// Package client calls the signing API of a Thiqa server over HTTP, for a
// caller that holds no token of its own: a citizen's remote signature of a
// PDF (POST /api/v1/sign, authorised by the API token and the signing PIN)
// and the long-term extension of a signed PDF (POST /api/v1/extend). A
// refusal is a *RefusedError carrying the status and the problem's detail.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/archive"
	"github.com/thiqa/thiqa/verify/report"
)

// Client is a Thiqa server as its API's callers see it.
type Client struct {
	// Base is the server's base URL (e.g. http://127.0.0.1:8080) and Token
	// the caller's API token, sent as a bearer token.
	Base, Token string
	// HTTP does the requests; nil is http.DefaultClient.
	HTTP *http.Client
}

// RefusedError is a server's refusal (4xx or 5xx) of one document.
type RefusedError struct {
	// Status is the HTTP status and Detail the problem's detail (or the
	// body when it was no problem).
	Status int
	Detail string
}

// Error says the document was refused, with the status and the detail.
func (e *RefusedError) Error() string { return fmt.Sprintf("refused (%d): %s", e.Status, e.Detail) }

// HTTPStatus is the status of the refusal (422: the server judged the
// document, and the archive job skips it).
func (e *RefusedError) HTTPStatus() int { return e.Status }

// SignRequest is one remote signature of a PDF.
type SignRequest struct {
	// Credential is the credential ID of the citizen's signing key, PIN
	// the signing PIN that authorises this one signature and Level the
	// PAdES level (B-B, B-T, B-LT or B-LTA).
	Credential, PIN, Level string
	// Options are the document options as the API's query parameters
	// (reason, visible, rect …); nil when none.
	Options url.Values
	// Image is the PNG shown in a visible signature, sent as a multipart
	// part before the document; nil when none.
	Image []byte
	// Document is the PDF to sign and Size its length in bytes.
	Document io.Reader
	Size     int64
}

// Signed is what the server said of a signature it made.
type Signed struct {
	// Size is the length of the signed PDF, Digest the document digest
	// the server reports and Warnings its warnings (e.g. a visible
	// signature drawn without an Arabic font).
	Size     int64
	Digest   string
	Warnings []string
}

// Sign asks the server to sign req.Document and copies the signed PDF into
// the writer that create returns; create is called only once the server
// has accepted.
func (c *Client) Sign(ctx context.Context, req SignRequest, create func() (io.Writer, error)) (*Signed, error) {
	q := url.Values{}
	for k, v := range req.Options {
		q[k] = v
	}
	q.Set("level", req.Level)
	q.Set("credential", req.Credential)
	body, ctype, size := req.Document, "application/pdf", req.Size
	if req.Image != nil {
		body, ctype, size = multipartBody(req.Document, req.Image)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/api/v1/sign", q), body)
	if err != nil {
		return nil, err // a *url.Error naming the address
	}
	hr.ContentLength = size
	hr.Header.Set("Content-Type", ctype)
	hr.Header.Set(signing.PINHeader, req.PIN)
	resp, err := c.do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p problem.Details
		return nil, refused(resp, 64<<10, &p, &p)
	}
	out, err := create()
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(out, resp.Body)
	if err != nil {
		return nil, fmt.Errorf("receiving the signed document: %w", err)
	}
	return &Signed{Size: n, Digest: resp.Header.Get(signing.DigestHeader), Warnings: resp.Header.Values(signing.WarningHeader)}, nil
}

// Extend extends the signed PDF in (size bytes) to level through the
// server (force: even when a signature does not verify) into out; the
// warnings of the reply (no revocation data for …) are the missing list.
func (c *Client) Extend(ctx context.Context, level signer.Level, force bool, in io.Reader, size int64, out io.Writer) ([]string, error) {
	q := url.Values{"level": {level.String()}}
	if force {
		q.Set("force", "true")
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/api/v1/extend", q), in)
	if err != nil {
		return nil, err // a *url.Error naming the address
	}
	hr.ContentLength = size
	hr.Header.Set("Content-Type", "application/pdf")
	resp, err := c.do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p struct {
			problem.Details
			Report *report.Report `json:"report"`
		}
		return nil, refused(resp, 1<<20, &p, &p.Details)
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return nil, fmt.Errorf("receiving the extended document: %w", err)
	}
	return resp.Header.Values(signing.WarningHeader), nil
}

// Extender is Extend as the archive job's extender.
func (c *Client) Extender(level signer.Level, force bool) archive.Extender {
	return func(ctx context.Context, in *os.File, size int64, out io.Writer) ([]string, error) {
		return c.Extend(ctx, level, force, in, size, out)
	}
}

// url is the address of path on the server with the query q.
func (c *Client) url(path string, q url.Values) string {
	return strings.TrimRight(c.Base, "/") + path + "?" + q.Encode()
}

// do sends r with the bearer token.
func (c *Client) do(r *http.Request) (*http.Response, error) {
	r.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(r)
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", c.Base, err)
	}
	return resp, nil
}

// refused reads up to limit bytes of a refusal into into (a problem body
// whose details are d) and returns the *RefusedError.
func refused(resp *http.Response, limit int64, into any, d *problem.Details) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	if json.Unmarshal(raw, into) == nil && d.Detail != "" {
		return &RefusedError{Status: resp.StatusCode, Detail: d.Detail}
	}
	return &RefusedError{Status: resp.StatusCode, Detail: strings.TrimSpace(string(raw))}
}

// multipartBody streams the PDF in part "document" after the PNG in part
// "image" (a visible signature's request); the size is unknown (-1).
func multipartBody(pdf io.Reader, png []byte) (io.Reader, string, int64) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			iw, err := mw.CreateFormFile("image", "image.png")
			if err != nil {
				return err
			}
			if _, err := iw.Write(png); err != nil {
				return err
			}
			dw, err := mw.CreateFormFile("document", "document.pdf")
			if err != nil {
				return err
			}
			if _, err := io.Copy(dw, pdf); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType(), -1
}
