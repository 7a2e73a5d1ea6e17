package hsm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/thiqa/thiqa/internal/atomicfile"
)

// SoftHSMFiles are the files of a SoftHSM2 token that Thiqa manages for a
// folder (a data folder, a key-ceremony folder), as absolute paths.
type SoftHSMFiles struct {
	// TokenDir is the token folder and Conf the SoftHSM2 configuration
	// that points to it (SOFTHSM2_CONF).
	TokenDir, Conf string
	// SOPINFile and PINFile hold the security officer's and the user's
	// PIN; PINFile is "" when the user PIN comes from elsewhere (an
	// environment variable).
	SOPINFile, PINFile string
}

// SoftHSMConf is a SoftHSM2 configuration for the token folder tokenDir;
// by names the command that writes it (in its first comment line).
func SoftHSMConf(tokenDir, by string) []byte {
	return fmt.Appendf(nil, "# SoftHSM2 configuration written by %s\ndirectories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", by, tokenDir)
}

// SoftHSMTokenDir returns the token folder (directories.tokendir) that the
// SoftHSM2 configuration file conf names, "" when it names none.
func SoftHSMTokenDir(conf string) (string, error) {
	raw, err := os.ReadFile(conf)
	if err != nil {
		return "", fmt.Errorf("reading SoftHSM configuration: %w", err)
	}
	dir := ""
	for line := range strings.Lines(string(raw)) {
		key, value, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(key) == "directories.tokendir" {
			dir = strings.TrimSpace(value)
		}
	}
	return dir, nil
}

// PrepareSoftHSM writes the token folder, the SoftHSM2 configuration
// (written by `by`) and the PIN files (fresh random PINs of 26 base32
// characters, 128 bits) that do not exist yet, and returns what it
// created. It never replaces a file.
func PrepareSoftHSM(f SoftHSMFiles, by string) ([]string, error) {
	var created []string
	if _, err := os.Stat(f.TokenDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(f.TokenDir, 0o700); err != nil {
			return created, fmt.Errorf("creating SoftHSM token folder: %w", err)
		}
		created = append(created, f.TokenDir)
	}
	if err := atomicfile.WriteNew(f.Conf, SoftHSMConf(f.TokenDir, by), 0o600); err == nil {
		created = append(created, f.Conf)
	} else if !errors.Is(err, os.ErrExist) {
		return created, fmt.Errorf("writing SoftHSM configuration: %w", err)
	}
	for _, p := range []string{f.SOPINFile, f.PINFile} {
		if p == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return created, fmt.Errorf("creating secrets folder: %w", err)
		}
		if err := atomicfile.WriteNew(p, []byte(rand.Text()+"\n"), 0o600); err == nil {
			created = append(created, p)
		} else if !errors.Is(err, os.ErrExist) {
			return created, fmt.Errorf("writing PIN file: %w", err)
		}
	}
	return created, nil
}
