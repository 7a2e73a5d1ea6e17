package pin

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PolicyConfig is the serialisable policy of the PINs citizens choose
// (thiqa.yaml's signing.pinPolicy for signing PINs, identity.pinPolicy for
// mobile-ID login PINs) and of the activation codes with which they set
// them after an enrolment or a reset. It is checked wherever a PIN is set.
// Zero values stand for the defaults; Apply turns it into Params.
type PolicyConfig struct {
	// MinLength and MaxLength bound a PIN's length in characters (default 6 and 64).
	MinLength int `yaml:"minLength"`
	MaxLength int `yaml:"maxLength"`
	// MaxFailures is the count of consecutive wrong PINs that locks a
	// credential, and of wrong activation codes that void a code (default 5).
	MaxFailures int `yaml:"maxFailures"`
	// AllowTrivial accepts PINs such as 111111, 123456 or 654321 (refused by default).
	AllowTrivial bool `yaml:"allowTrivial,omitempty"`
	// ActivationCodeLifetime is how long a one-time activation code stays
	// usable (default 72h, at most 90 days).
	ActivationCodeLifetime time.Duration `yaml:"activationCodeLifetime"`
}

// DefaultPolicy returns the policy of DefaultParams, as `thiqa config
// default` writes it.
func DefaultPolicy() PolicyConfig {
	p := DefaultParams()
	return PolicyConfig{MinLength: p.MinLength, MaxLength: p.MaxLength, MaxFailures: p.MaxFailures, ActivationCodeLifetime: p.ActivationLifetime}
}

// Apply returns p with the policy's values (zero ones keep p's).
func (c PolicyConfig) Apply(p Params) Params {
	p.MinLength = cmp.Or(c.MinLength, p.MinLength)
	p.MaxLength = cmp.Or(c.MaxLength, p.MaxLength)
	p.MaxFailures = cmp.Or(c.MaxFailures, p.MaxFailures)
	p.ActivationLifetime = cmp.Or(c.ActivationCodeLifetime, p.ActivationLifetime)
	p.AllowTrivial = c.AllowTrivial
	return p
}

// Validate checks the policy; key is where it sits in the configuration
// (signing.pinPolicy), which every problem names.
func (c PolicyConfig) Validate(key string) error {
	p := c.Apply(DefaultParams())
	var errs []string
	if p.MinLength < 4 || p.MaxLength < p.MinLength || p.MaxLength > 1024 {
		errs = append(errs, fmt.Sprintf("%s: minLength %d and maxLength %d: want 4 <= minLength <= maxLength <= 1024", key, p.MinLength, p.MaxLength))
	}
	if p.MaxFailures < 1 || p.MaxFailures > 20 {
		errs = append(errs, fmt.Sprintf("%s.maxFailures: want 1 to 20, got %d", key, p.MaxFailures))
	}
	if p.ActivationLifetime < time.Minute || p.ActivationLifetime > 90*24*time.Hour {
		errs = append(errs, fmt.Sprintf("%s.activationCodeLifetime: want 1m to 2160h, got %s", key, p.ActivationLifetime))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// HashConfig is the serialisable argon2id cost of PIN hashing (thiqa.yaml's
// identity.pin). Zero values keep the defaults.
type HashConfig struct {
	// Time is the number of passes (default 2).
	Time uint32 `yaml:"time"`
	// MemoryKiB is the memory per hash (default 19456, OWASP's 19 MiB).
	MemoryKiB uint32 `yaml:"memoryKiB"`
	// MaxConcurrent bounds hashes computed at once (default 2).
	MaxConcurrent int `yaml:"maxConcurrent"`
}

// DefaultHash returns the cost of DefaultParams.
func DefaultHash() HashConfig {
	p := DefaultParams()
	return HashConfig{Time: p.Time, MemoryKiB: p.MemoryKiB, MaxConcurrent: p.MaxConcurrent}
}

// Apply returns p with the configured cost (zero values keep p's).
func (c HashConfig) Apply(p Params) Params {
	p.Time = cmp.Or(c.Time, p.Time)
	p.MemoryKiB = cmp.Or(c.MemoryKiB, p.MemoryKiB)
	p.MaxConcurrent = cmp.Or(c.MaxConcurrent, p.MaxConcurrent)
	return p
}
