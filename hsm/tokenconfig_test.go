package hsm

import (
	"strings"
	"testing"
)

// TestTokenConfigValidate: module, label, a PIN source and complete
// SoftHSM2 files are required; the problems name the hsm keys.
func TestTokenConfigValidate(t *testing.T) {
	good := TokenConfig{Module: DefaultSoftHSMModule, TokenLabel: "thiqa", PINEnv: "PIN"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	err := TokenConfig{TokenLabel: strings.Repeat("x", 33), PoolSize: -1, SoftHSM: &SoftHSMConfig{Conf: "a"}}.Validate()
	for _, want := range []string{"hsm.module", "hsm.tokenLabel", "hsm: one of pinFile or pinEnv", "hsm.poolSize", "hsm.softhsm"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
}
