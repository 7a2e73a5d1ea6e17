package hsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSoftHSMModule is where Debian's softhsm2 package installs its module.
const DefaultSoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// MaxPoolSize bounds TokenConfig.PoolSize: far above the sessions any
// token serves, it keeps the pool's channels, sized by it, small.
const MaxPoolSize = 1 << 16

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
	// PoolSize bounds the concurrent sessions (0: twice the CPUs; at most
	// MaxPoolSize).
	PoolSize int `yaml:"poolSize"`
	// VerifyAfterSign checks every signature with the public key before use.
	VerifyAfterSign bool `yaml:"verifyAfterSign"`
	// CallTimeout bounds how long a request waits for the token: for a
	// free session and for the answer to its PKCS#11 calls (0:
	// DefaultCallTimeout; MinCallTimeout to MaxCallTimeout). See
	// Config.CallTimeout.
	CallTimeout time.Duration `yaml:"callTimeout"`
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

// KeyLabel returns the object label of a pkcs11: URI naming a key on the
// configured token (ObjectLabel).
func (h TokenConfig) KeyLabel(uri string) (string, error) {
	return ObjectLabel("key URI", uri, h.TokenLabel, "configured")
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
	} else if h.PoolSize > MaxPoolSize {
		bad("hsm.poolSize", "must be at most %d, got %d", MaxPoolSize, h.PoolSize)
	}
	if h.CallTimeout != 0 && (h.CallTimeout < MinCallTimeout || h.CallTimeout > MaxCallTimeout) {
		bad("hsm.callTimeout", "must be between %s and %s, got %s", MinCallTimeout, MaxCallTimeout, h.CallTimeout)
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

// CheckModule checks that the configured PKCS#11 module exists.
func (h TokenConfig) CheckModule() error {
	if _, err := os.Stat(h.Module); err != nil {
		return fmt.Errorf("PKCS#11 module %s: %w", h.Module, err)
	}
	return nil
}

// PrepareSoftHSM writes the files of the SoftHSM token the configuration
// manages that do not exist yet (PrepareSoftHSM: its configuration,
// written by `by`, its token folder and PIN files, made absolute by
// resolve) and returns what it created. It does nothing when the
// configuration manages no SoftHSM token.
func (h TokenConfig) PrepareSoftHSM(resolve func(string) string, by string) ([]string, error) {
	if h.SoftHSM == nil {
		return nil, nil
	}
	return PrepareSoftHSM(h.SoftHSMFiles(resolve), by)
}

// UseSoftHSMConf makes SoftHSM2 read the configuration of the token the
// configuration manages (SOFTHSM2_CONF, made absolute by resolve); it does
// nothing when it manages none. SoftHSM reads SOFTHSM2_CONF when the
// module is initialised, so this runs before the module is loaded.
func (h TokenConfig) UseSoftHSMConf(resolve func(string) string) error {
	if h.SoftHSM == nil {
		return nil
	}
	if err := os.Setenv("SOFTHSM2_CONF", resolve(h.SoftHSM.Conf)); err != nil {
		return fmt.Errorf("setting SOFTHSM2_CONF: %w", err)
	}
	return nil
}

// OpenOptions is what TokenConfig.Open needs besides the configuration.
type OpenOptions struct {
	// Resolve makes the configuration's file names absolute.
	Resolve func(string) string
	// PIN reads the user PIN; its errors are returned as they are.
	PIN func() (string, error)
	// Create has Open make a SoftHSM token the configuration manages when
	// it does not exist yet: the files it lacks (PrepareSoftHSM, the
	// SoftHSM configuration written by CreatedBy), then the token itself
	// (InitToken, with the security officer PIN that ReadSecret reads from
	// its file and the user PIN).
	Create bool
	// CreatedBy names the command in a SoftHSM configuration Create writes.
	CreatedBy string
	// ReadSecret reads a secret from a file (env ""); Create needs it.
	ReadSecret func(file, env string) (string, error)
	// Role qualifies the token in errors: "offline" says "the offline
	// token"; "" says just "token".
	Role string
	// Logger receives the token's events (Config.Logger) and the creation
	// of a token. Nil discards.
	Logger *slog.Logger
	// Registerer and KeyMetricLabel are Config's.
	Registerer     prometheus.Registerer
	KeyMetricLabel func(keyLabel string) string
}

// Open checks the module, reads the user PIN and opens the configured
// token (Open) with the configuration's pool size and verification, after
// creating it when o.Create asks for it and it is a missing SoftHSM token
// the configuration manages. A token that is not there is ErrTokenNotFound.
func (h TokenConfig) Open(ctx context.Context, o OpenOptions) (*Token, error) {
	the := ""
	if o.Role != "" {
		the = "the " + o.Role + " "
	}
	if err := h.CheckModule(); err != nil {
		return nil, err
	}
	create := o.Create && h.SoftHSM != nil
	if create {
		if _, err := h.PrepareSoftHSM(o.Resolve, o.CreatedBy); err != nil {
			return nil, err
		}
	}
	pin, err := o.PIN()
	if err != nil {
		return nil, err
	}
	storageDir := ""
	if h.SoftHSM != nil {
		storageDir = o.Resolve(h.SoftHSM.TokenDir)
	}
	open := func() (*Token, error) {
		tok, err := Open(ctx, Config{ModulePath: h.Module, TokenLabel: h.TokenLabel, PIN: pin, PoolSize: h.PoolSize, StorageDir: storageDir,
			CallTimeout:     h.CallTimeout,
			VerifyAfterSign: h.VerifyAfterSign, KeyMetricLabel: o.KeyMetricLabel, Logger: o.Logger, Registerer: o.Registerer})
		if err != nil {
			return nil, fmt.Errorf("opening %stoken %q: %w", the, h.TokenLabel, err)
		}
		return tok, nil
	}
	tok, err := open()
	if err == nil || !create || !errors.Is(err, ErrTokenNotFound) {
		return tok, err
	}
	soPIN, err := o.ReadSecret(o.Resolve(h.SoftHSM.SOPINFile), "")
	if err != nil {
		return nil, fmt.Errorf("SoftHSM security officer PIN: %w", err)
	}
	if err := InitToken(h.Module, h.TokenLabel, soPIN, pin); err != nil {
		return nil, fmt.Errorf("creating %sSoftHSM token %q: %w", the, h.TokenLabel, err)
	}
	if o.Logger != nil {
		o.Logger.Info("created SoftHSM token", "token", h.TokenLabel)
	}
	return open()
}
