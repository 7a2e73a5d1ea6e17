package hsm

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultSoftHSMModule is where Debian's softhsm2 package installs its module.
const DefaultSoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// TokenConfig is the serialisable description of a deployment's token
// (the hsm section of thiqa.yaml and of a ceremony folder's
// ceremony.yaml): the PKCS#11 module, the token and where its PIN is.
// File names are relative to the folder the configuration lives in; with
// the PIN read, it becomes a Config.
type TokenConfig struct {
	// Module is the path of the PKCS#11 library.
	Module string `yaml:"module"`
	// TokenLabel is the label of the token holding Thiqa's keys.
	TokenLabel string `yaml:"tokenLabel"`
	// PINFile is a file holding the user PIN (relative to the data folder).
	PINFile string `yaml:"pinFile"`
	// PINEnv names an environment variable holding the user PIN; it wins over PINFile.
	PINEnv string `yaml:"pinEnv"`
	// SoftHSM, when set, means Thiqa manages a SoftHSM2 token in the data
	// folder: `thiqa init` creates it.
	SoftHSM *SoftHSMConfig `yaml:"softhsm"`
	// PoolSize bounds the concurrent sessions (0: twice the CPUs).
	PoolSize int `yaml:"poolSize"`
	// VerifyAfterSign checks every signature with the public key before use.
	VerifyAfterSign bool `yaml:"verifyAfterSign"`
}

// SoftHSMFiles returns the files of the SoftHSM token the configuration
// manages (SoftHSM must be set), made absolute by resolve. The user PIN
// has no file when it comes from the environment (PINEnv).
func (h TokenConfig) SoftHSMFiles(resolve func(string) string) SoftHSMFiles {
	f := SoftHSMFiles{TokenDir: resolve(h.SoftHSM.TokenDir), Conf: resolve(h.SoftHSM.Conf),
		SOPINFile: resolve(h.SoftHSM.SOPINFile), PINFile: resolve(h.PINFile)}
	if h.PINEnv != "" {
		if f.SOPINFile == f.PINFile {
			f.SOPINFile = ""
		}
		f.PINFile = ""
	}
	return f
}

// SoftHSMConfig describes a SoftHSM2 token that lives in the data folder
// (relative names of SoftHSMFiles).
type SoftHSMConfig struct {
	// Conf is the SoftHSM2 configuration file (SOFTHSM2_CONF).
	Conf string `yaml:"conf"`
	// TokenDir is the folder holding the token files.
	TokenDir string `yaml:"tokenDir"`
	// SOPINFile holds the security officer PIN used to create the token.
	SOPINFile string `yaml:"soPinFile"`
}

// Validate checks the section, naming its keys (hsm.module, …).
func (h TokenConfig) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	if h.Module == "" {
		bad("hsm.module", "must name the PKCS#11 library")
	}
	if h.TokenLabel == "" || len(h.TokenLabel) > 32 {
		bad("hsm.tokenLabel", "must be 1 to 32 bytes, got %q", h.TokenLabel)
	}
	if h.PINFile == "" && h.PINEnv == "" {
		bad("hsm", "one of pinFile or pinEnv is required")
	}
	if h.PoolSize < 0 {
		bad("hsm.poolSize", "must not be negative")
	}
	if s := h.SoftHSM; s != nil {
		if s.Conf == "" || s.TokenDir == "" || s.SOPINFile == "" {
			bad("hsm.softhsm", "conf, tokenDir and soPinFile are required")
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
