package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Headers of a delivery.
const (
	HeaderSignature   = "X-Thiqa-Signature"
	HeaderTimestamp   = "X-Thiqa-Timestamp"
	HeaderIdempotency = "Idempotency-Key"
)

// ErrRefused is a notification the gateway refused for good (a 4xx status
// but 408 and 429): it is skipped, logged and counted.
var ErrRefused = errors.New("notify: the gateway refused the notification")

// errUnavailable is a delivery to try again: the gateway unreachable, too
// slow, or answering 5xx, 408, 429 or anything else not 2xx.
var errUnavailable = errors.New("notify: the gateway is unavailable")

// Sign returns the X-Thiqa-Signature value of body sent at timestamp (Unix
// seconds, as in X-Thiqa-Timestamp): "sha256=" and the hex HMAC-SHA256,
// keyed with the shared secret, of the timestamp, a full stop and the
// body. The gateway recomputes it, compares in constant time, and refuses a
// timestamp far from its clock (a replay).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhook posts notifications to the gateway.
type webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// newHTTPClient is the gateway's client: bounded by timeout, following no
// redirect (it could lead elsewhere, or to plain http).
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// post sends n once: nil when the gateway took it (2xx), an error wrapping
// ErrRefused when it refused it for good, errUnavailable otherwise.
func (w *webhook) post(ctx context.Context, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("%w: encoding %s: %w", ErrRefused, n.ID, err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotency, n.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, whose query may carry a token
		}
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests:
		return fmt.Errorf("%w: status %d", ErrRefused, s)
	default:
		return fmt.Errorf("%w: status %d", errUnavailable, s)
	}
}
