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

// TestTokenConfigSoftHSMFiles: the files are resolved; a user PIN from the
// environment has no file, and a security officer PIN sharing its file
// loses it too.
func TestTokenConfigSoftHSMFiles(t *testing.T) {
	resolve := func(p string) string { return "/data/" + p }
	h := TokenConfig{PINFile: "pin", SoftHSM: &SoftHSMConfig{TokenDir: "tokens", Conf: "softhsm2.conf", SOPINFile: "so-pin"}}
	want := SoftHSMFiles{TokenDir: "/data/tokens", Conf: "/data/softhsm2.conf", SOPINFile: "/data/so-pin", PINFile: "/data/pin"}
	if got := h.SoftHSMFiles(resolve); got != want {
		t.Fatalf("SoftHSMFiles() = %+v, want %+v", got, want)
	}
	h.PINEnv = "PIN"
	want.PINFile = ""
	if got := h.SoftHSMFiles(resolve); got != want {
		t.Fatalf("PIN from the environment: %+v, want %+v", got, want)
	}
	h.SoftHSM.SOPINFile = "pin"
	want.SOPINFile = ""
	if got := h.SoftHSMFiles(resolve); got != want {
		t.Fatalf("shared PIN file, PIN from the environment: %+v, want %+v", got, want)
	}
}
