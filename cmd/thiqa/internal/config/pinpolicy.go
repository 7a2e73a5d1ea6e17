package config

import (
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
)

// PINPolicyConfig is the policy of the PINs citizens choose (signing PINs
// in signing.pinPolicy, mobile-ID login PINs in identity.pinPolicy) and of
// the activation codes with which they set them after an enrolment or a
// reset. It is checked wherever a PIN is set. Zero values stand for the
// defaults.
type PINPolicyConfig struct {
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

// DefaultPINPolicy returns the defaults written by `thiqa config default`.
func DefaultPINPolicy() PINPolicyConfig {
	p := pin.DefaultParams()
	return PINPolicyConfig{MinLength: p.MinLength, MaxLength: p.MaxLength, MaxFailures: p.MaxFailures, ActivationCodeLifetime: p.ActivationLifetime}
}

// Apply returns p with the policy's values (zero ones keep p's).
func (c PINPolicyConfig) Apply(p pin.Params) pin.Params {
	if c.MinLength != 0 {
		p.MinLength = c.MinLength
	}
	if c.MaxLength != 0 {
		p.MaxLength = c.MaxLength
	}
	if c.MaxFailures != 0 {
		p.MaxFailures = c.MaxFailures
	}
	if c.ActivationCodeLifetime != 0 {
		p.ActivationLifetime = c.ActivationCodeLifetime
	}
	p.AllowTrivial = c.AllowTrivial
	return p
}

// validate checks the policy; key names it in the errors.
func (c PINPolicyConfig) validate(key string) []string {
	p := c.Apply(pin.DefaultParams())
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
	return errs
}
