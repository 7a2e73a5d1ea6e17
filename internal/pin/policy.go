package pin

import (
	"fmt"
	"unicode/utf8"
)

// CheckPolicy reports whether pin may be set as a new PIN: valid UTF-8,
// MinLength to MaxLength characters, and, unless AllowTrivial, neither one
// character repeated (111111) nor a run of consecutive characters up or
// down (123456, 654321, abcdef). The error wraps ErrPolicy, names the rule
// broken and never contains the PIN. Every path that sets a PIN (Set,
// Change, Activate) checks it before anything is counted or stored.
func (m *Manager) CheckPolicy(pin string) error {
	return m.params.CheckPolicy(pin)
}

// CheckPolicy is Manager.CheckPolicy for these parameters.
func (p Params) CheckPolicy(pin string) error {
	if !utf8.ValidString(pin) {
		return fmt.Errorf("%w: not valid UTF-8", ErrPolicy)
	}
	n := utf8.RuneCountInString(pin)
	if n < p.MinLength || n > p.MaxLength {
		return fmt.Errorf("%w: length must be %d to %d characters", ErrPolicy, p.MinLength, p.MaxLength)
	}
	if !p.AllowTrivial && trivial(pin) {
		return fmt.Errorf("%w: a PIN must not be one character repeated, nor digits or letters in order up or down", ErrPolicy)
	}
	return nil
}

// trivial reports whether s is one character repeated or consecutive
// characters with a constant step of +1 or -1 (digits and letters alike).
func trivial(s string) bool {
	rs := []rune(s)
	if len(rs) < 2 {
		return true
	}
	step := rs[1] - rs[0]
	if step < -1 || step > 1 {
		return false
	}
	for i := 2; i < len(rs); i++ {
		if rs[i]-rs[i-1] != step {
			return false
		}
	}
	return true
}
