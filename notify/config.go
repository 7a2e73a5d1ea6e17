package notify

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Events a notification may be about: the audit actions that concern a
// citizen, and EventExpiring, the reminder that a certificate is about to
// expire.
const (
	EventIssue       = "certificate.issue"
	EventRenew       = "certificate.renew"
	EventRevoke      = "certificate.revoke"
	EventPINSet      = "credential.pin.set"
	EventPINChange   = "credential.pin.change"
	EventPINLocked   = "credential.pin.locked"
	EventPINReset    = "credential.pin.reset"
	EventPINActivate = "credential.pin.activate"
	EventLogin       = "oidc.login"
	EventDenyAll     = "oidc.login.deny-all"
	EventSign        = "document.sign"
	EventHashSign    = "hash.sign"
	EventExpiring    = "certificate.expiring"
)

// AllEvents are the events notify.events may name.
var AllEvents = []string{EventIssue, EventRenew, EventRevoke, EventPINSet, EventPINChange, EventPINLocked,
	EventPINReset, EventPINActivate, EventLogin, EventDenyAll, EventSign, EventHashSign, EventExpiring}

// DefaultEvents are the security-relevant events, told by default: all
// but the signatures (document.sign, hash.sign), whose volume is the
// holder's own doing.
var DefaultEvents = []string{EventIssue, EventRenew, EventRevoke, EventPINSet, EventPINChange, EventPINLocked,
	EventPINReset, EventPINActivate, EventLogin, EventDenyAll, EventExpiring}

// Defaults of the notify section.
const (
	DefaultTimeout = 10 * time.Second
	DefaultBatch   = 500
	maxBatch       = 10000
)

// DefaultExpiryReminders are the reminder windows before a certificate
// expires: 30 and 7 days.
var DefaultExpiryReminders = []time.Duration{720 * time.Hour, 168 * time.Hour}

// Config is thiqa.yaml's notify section: whether citizens are told, at
// the government's notification gateway, what happens to their digital
// ID. Off by default; nothing runs then.
type Config struct {
	// Enabled turns the notifications on.
	Enabled bool `yaml:"enabled"`
	// Webhook is where they are delivered.
	Webhook WebhookConfig `yaml:"webhook"`
	// Events are what is told (default DefaultEvents); see AllEvents.
	Events []string `yaml:"events,omitempty"`
	// ExpiryReminders are how long before a certificate's expiry its holder
	// is reminded, once per window (default 720h and 168h).
	ExpiryReminders []time.Duration `yaml:"expiryReminders,omitempty"`
	// Batch bounds the audit records read, and the notifications sent,
	// per round (default 500).
	Batch int `yaml:"batch,omitempty"`
}

// WebhookConfig is the notification gateway's endpoint.
type WebhookConfig struct {
	// URL receives one POST per notification: https, or http to a
	// loopback address.
	URL string `yaml:"url"`
	// SecretFile holds the HMAC-SHA256 key of the X-Thiqa-Signature
	// header (mode 0600; relative to the data folder). A running notifier
	// takes up a new key written to it (Options.SecretFile).
	SecretFile string `yaml:"secretFile"`
	// Timeout bounds one request (default 10s).
	Timeout time.Duration `yaml:"timeout,omitempty"`
}

// WithDefaults returns c with its unset fields defaulted.
func (c Config) WithDefaults() Config {
	if c.Webhook.Timeout == 0 {
		c.Webhook.Timeout = DefaultTimeout
	}
	if c.Events == nil {
		c.Events = slices.Clone(DefaultEvents)
	}
	if c.ExpiryReminders == nil {
		c.ExpiryReminders = slices.Clone(DefaultExpiryReminders)
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	return c
}

// Validate checks the section (with its defaults) when it is enabled,
// naming the YAML key of the first problem of each field.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	c = c.WithDefaults()
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, "notify."+key+": "+fmt.Sprintf(format, args...))
	}
	if err := CheckURL(c.Webhook.URL); err != nil {
		bad("webhook.url", "%v", err)
	}
	if c.Webhook.SecretFile == "" {
		bad("webhook.secretFile", "required: the file holding the key that signs each notification")
	}
	if c.Webhook.Timeout < 0 || c.Webhook.Timeout > 5*time.Minute {
		bad("webhook.timeout", "want a duration from 1ms to 5m, got %s", c.Webhook.Timeout)
	}
	for i, e := range c.Events {
		if !slices.Contains(AllEvents, e) {
			bad(fmt.Sprintf("events[%d]", i), "unknown event %q (want one of %s)", e, strings.Join(AllEvents, ", "))
		}
	}
	for i, d := range c.ExpiryReminders {
		if d <= 0 || d > 10*365*24*time.Hour {
			bad(fmt.Sprintf("expiryReminders[%d]", i), "want a duration from 1s to 87600h, got %s", d)
		} else if d%time.Second != 0 {
			bad(fmt.Sprintf("expiryReminders[%d]", i), "want whole seconds, got %s", d)
		} else if slices.Index(c.ExpiryReminders, d) != i {
			bad(fmt.Sprintf("expiryReminders[%d]", i), "%s is listed twice", d)
		}
	}
	if c.Batch < 1 || c.Batch > maxBatch {
		bad("batch", "want 1 to %d, got %d", maxBatch, c.Batch)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// ErrInsecureURL is a webhook URL that would send citizens' notifications
// in the clear to another machine.
var ErrInsecureURL = errors.New("https is required, or http to a loopback address")

// CheckURL checks a webhook URL: absolute, https (http only to a loopback
// address: a proxy on the same machine), without user info or fragment.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("want an absolute https URL, got %q", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("want a URL without user info or fragment, got %q", raw)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return fmt.Errorf("%w, got %q", ErrInsecureURL, raw)
	}
	return nil
}

// loopback reports whether host is localhost or a loopback IP address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrSecretFile is a webhook secret that cannot be used: missing, empty,
// or readable by others than its owner.
var ErrSecretFile = errors.New("notify.webhook.secretFile")

// ReadSecret reads the webhook's HMAC key from path: a file of mode 0600
// (or stricter) holding at least 16 bytes, a trailing newline removed. The
// error names the key and the file, never the secret.
func ReadSecret(path string) ([]byte, error) {
	key, _, err := readSecret(path, false)
	return key, err
}

// readSecret is ReadSecret, also returning the file as it was when read.
// The mode is checked on the file opened, which is the file read: a file
// renamed over path meanwhile is never read unchecked. regularOnly (the
// running notifier's look) refuses a file that is not a regular one (a
// named pipe would block the loop) and opens it without waiting for a
// writer.
func readSecret(path string, regularOnly bool) ([]byte, os.FileInfo, error) {
	flag := os.O_RDONLY
	if regularOnly {
		flag |= syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSecretFile, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSecretFile, err)
	}
	if fi.IsDir() {
		return nil, nil, fmt.Errorf("%w: %s is a folder, not a file", ErrSecretFile, path)
	}
	if regularOnly && !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: %s is not a regular file (%s)", ErrSecretFile, path, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, fmt.Errorf("%w: %s is mode %04o: others may read it; chmod 0600 it", ErrSecretFile, path, fi.Mode().Perm())
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading %s: %w", ErrSecretFile, path, err)
	}
	if fi, err = f.Stat(); err != nil { // as read: a write meanwhile shows in its size or time
		return nil, nil, fmt.Errorf("%w: %w", ErrSecretFile, err)
	}
	secret := []byte(strings.TrimRight(string(raw), "\r\n"))
	if len(secret) < 16 {
		return nil, fi, fmt.Errorf("%w: %s holds %d bytes: want a key of at least 16", ErrSecretFile, path, len(secret))
	}
	return secret, fi, nil
}

// windowName names a reminder window in notification IDs and the
// database: whole hours as "720h", otherwise whole seconds as "90s".
func windowName(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
