package pin

import (
	"strings"
	"testing"
	"time"
)

// TestPolicyConfig: the default policy is DefaultParams'; zero values keep
// the defaults; each bad bound is refused under the given key.
func TestPolicyConfig(t *testing.T) {
	d := DefaultParams()
	if p := DefaultPolicy().Apply(d); p.MinLength != d.MinLength || p.MaxFailures != d.MaxFailures || p.ActivationLifetime != d.ActivationLifetime {
		t.Fatalf("default policy applied: %+v", p)
	}
	if p := (PolicyConfig{MinLength: 8, AllowTrivial: true}).Apply(d); p.MinLength != 8 || p.MaxLength != d.MaxLength || !p.AllowTrivial {
		t.Fatalf("applied: %+v", p)
	}
	if err := (PolicyConfig{}).Validate("k"); err != nil {
		t.Fatal(err)
	}
	for want, c := range map[string]PolicyConfig{
		"k: minLength 2":                 {MinLength: 2},
		"k.maxFailures":                  {MaxFailures: 21},
		"k.activationCodeLifetime: want": {ActivationCodeLifetime: time.Second},
	} {
		if err := c.Validate("k"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", c, err, want)
		}
	}
	if p := (HashConfig{MemoryKiB: 64}).Apply(d); p.MemoryKiB != 64 || p.Time != d.Time || DefaultHash().Apply(Params{}).MaxConcurrent != d.MaxConcurrent {
		t.Fatalf("hash cost applied: %+v", p)
	}
}
