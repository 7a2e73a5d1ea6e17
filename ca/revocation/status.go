package revocation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/auth"
)

// ErrRefused is wrapped by the errors of Checker.Check for a certificate
// this deployment's records refuse: not issued here, revoked, expired or
// not yet valid. Other errors mean the records could not be read.
var ErrRefused = errors.New("certificate refused")

// Certificates is what the checker reads: the issued certificate with a
// serial and its revocation (the store implements it).
type Certificates interface {
	// GetCertificate returns the issued certificate with that serial
	// (lower-case hex) with its revocation, or an error wrapping
	// ca.ErrNotFound.
	GetCertificate(ctx context.Context, serial string) (*ca.CertificateRecord, error)
}

// Status is what this deployment knows about a certificate now.
type Status struct {
	// Known: this deployment issued this very certificate.
	Known bool
	// CA and Profile it was issued by and under (when Known).
	CA, Profile string
	// KeyOnToken: its key was generated on the service's token (keyInHSM:
	// the certificate names a credential), not certified from a CSR.
	KeyOnToken bool
	// Revoked, RevokedAt and Reason come from the revocation records.
	Revoked   bool
	RevokedAt time.Time
	Reason    Reason
	// KeyBlocked: its key was reported compromised (a certificate with it
	// was revoked for keyCompromise). Such a certificate is refused even
	// before its own revocation is recorded.
	KeyBlocked bool
}

// Checker answers, from this deployment's own records, whether a
// certificate may be used now: the one rule every client-certificate path
// (API, CSC, mobile-ID phone endpoints, OIDC login) applies. Answers are
// kept for at most MaxAge, the bound within which every instance sees a
// revocation (revocation.pollEvery). It is safe for concurrent use.
type Checker struct {
	certs  Certificates
	maxAge time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cached // by serial (serialKey form)
	// forgets counts the Forget calls: a look-up that was under way
	// during one may have read the status from before the revocation, so
	// its answer is not kept.
	forgets uint64
}

type cached struct {
	der     [32]byte // SHA-256 of the certificate the answer is about
	st      Status
	expires time.Time
}

// maxCached bounds the checker's memory; the cache is emptied when full.
const maxCached = 100_000

// NewChecker returns a Checker over certs whose answers are reused for at
// most maxAge (0: never reused). now is the clock (time.Now when nil).
func NewChecker(certs Certificates, maxAge time.Duration, now func() time.Time) *Checker {
	if now == nil {
		now = time.Now
	}
	return &Checker{certs: certs, maxAge: maxAge, now: now, cache: map[string]cached{}}
}

// Status returns what the records say about cert.
func (c *Checker) Status(ctx context.Context, cert *x509.Certificate) (Status, error) {
	sum := sha256.Sum256(cert.Raw)
	key := serialKey(cert)
	now := c.now()
	var forgets uint64
	if c.maxAge > 0 {
		c.mu.Lock()
		e, ok := c.cache[key]
		forgets = c.forgets
		c.mu.Unlock()
		if ok && e.der == sum && now.Before(e.expires) {
			return e.st, nil
		}
	}
	st, err := c.lookup(ctx, cert)
	if err != nil {
		return Status{}, err
	}
	if c.maxAge > 0 {
		c.mu.Lock()
		if c.forgets == forgets { // else a revocation may have been recorded since the look-up read
			if len(c.cache) >= maxCached {
				clear(c.cache)
			}
			c.cache[key] = cached{der: sum, st: st, expires: now.Add(c.maxAge)}
		}
		c.mu.Unlock()
	}
	return st, nil
}

// Forget drops what the checker remembers about the certificate with that
// serial (lower-case hex, as the store keys it): the revocation Service
// calls it for every revocation it records or learns of, so this process
// sees a revocation at once and others within maxAge.
func (c *Checker) Forget(serial string) {
	c.mu.Lock()
	delete(c.cache, serial)
	c.forgets++
	c.mu.Unlock()
}

// serialKey is the store's form of cert's serial: lower-case hex of its
// bytes, "" for a missing or non-positive serial.
func serialKey(cert *x509.Certificate) string {
	if cert.SerialNumber == nil || cert.SerialNumber.Sign() <= 0 {
		return ""
	}
	return hex.EncodeToString(cert.SerialNumber.Bytes())
}

func (c *Checker) lookup(ctx context.Context, cert *x509.Certificate) (Status, error) {
	key := serialKey(cert)
	if key == "" {
		return Status{}, nil
	}
	rec, err := c.certs.GetCertificate(ctx, key)
	if errors.Is(err, ca.ErrNotFound) {
		return Status{}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("reading the status of certificate %x: %w", cert.SerialNumber, err)
	}
	if !bytes.Equal(rec.DER, cert.Raw) {
		return Status{}, nil // same serial, another certificate: not ours
	}
	return Status{Known: true, CA: rec.CA, Profile: rec.Profile, KeyOnToken: rec.CredentialID != "",
		Revoked: rec.Revoked, RevokedAt: rec.RevokedAt, Reason: Reason(rec.RevocationReason), KeyBlocked: rec.KeyBlocked}, nil
}

// Check refuses cert (an error wrapping ErrRefused, naming the reason)
// unless it is within its validity now, was issued by this deployment, is
// not revoked and its key was not reported compromised.
func (c *Checker) Check(ctx context.Context, cert *x509.Certificate) error {
	if now := c.now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("%w: certificate %x is expired or not yet valid (valid %s to %s)", ErrRefused, cert.SerialNumber,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	st, err := c.Status(ctx, cert)
	if err != nil {
		return err
	}
	switch {
	case !st.Known:
		return fmt.Errorf("%w: certificate %x was not issued by this deployment", ErrRefused, cert.SerialNumber)
	case st.Revoked:
		return fmt.Errorf("%w: certificate %x is revoked (%s, since %s)", ErrRefused, cert.SerialNumber, st.Reason, st.RevokedAt.UTC().Format(time.RFC3339))
	case st.KeyBlocked:
		return fmt.Errorf("%w: the key of certificate %x was reported compromised", ErrRefused, cert.SerialNumber)
	}
	return nil
}

// CheckClientChain checks the leaf of a verified client certificate chain
// (Check) for authentication (auth.Options.CheckCertificate): a refusal
// wraps auth.ErrCertificateRefused as well as ErrRefused.
func (c *Checker) CheckClientChain(ctx context.Context, chain []*x509.Certificate) error {
	err := c.Check(ctx, chain[0])
	if errors.Is(err, ErrRefused) {
		return fmt.Errorf("%w: %w", auth.ErrCertificateRefused, err)
	}
	return err
}
