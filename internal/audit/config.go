package audit

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of the checkpoint configuration.
const (
	// DefaultCheckpointEvery is how often `thiqa serve` writes an audit
	// checkpoint.
	DefaultCheckpointEvery = time.Minute
	// DefaultCheckpointFile is the checkpoint file, relative to the data folder.
	DefaultCheckpointFile = "audit/checkpoints.jsonl"
	// DefaultCheckpointPublicKey is the checkpoint key's public key (PEM),
	// relative to the data folder.
	DefaultCheckpointPublicKey = "audit/checkpoint-key.pem"
	// checkpointKeyObject is the checkpoint key's label on the token.
	checkpointKeyObject = "audit-checkpoint"
)

// CheckpointConfig is the serialisable configuration of the audit log's
// signed checkpoints (thiqa.yaml's audit section): the chain head, signed
// with a key on the token, appended to a file outside the database. Every
// field may be left out (a configuration written before the section
// existed): WithDefaults fills it in.
type CheckpointConfig struct {
	// CheckpointKey is the pkcs11: URI of the checkpoint key (EC P-256);
	// default object audit-checkpoint on the configured token.
	CheckpointKey string `yaml:"checkpointKey"`
	// CheckpointEvery is how often `thiqa serve` writes a checkpoint (a Go
	// duration, default 1m); it also writes one at shutdown. "0" turns
	// checkpoints off.
	CheckpointEvery string `yaml:"checkpointEvery"`
	// CheckpointFile is the file checkpoints are appended to, one JSON line
	// each (relative to the data folder; default audit/checkpoints.jsonl).
	// Ship it off the host: the database administrator must not be able
	// to rewrite it.
	CheckpointFile string `yaml:"checkpointFile"`
	// CheckpointPublicKey is the checkpoint key's public key as PEM, written
	// by `thiqa init`, read by `thiqa audit verify` (relative to the data
	// folder; default audit/checkpoint-key.pem).
	CheckpointPublicKey string `yaml:"checkpointPublicKey"`
}

// DefaultCheckpointConfig returns the checkpoint settings of a local setup
// on the token labelled token.
func DefaultCheckpointConfig(token string) CheckpointConfig {
	return CheckpointConfig{
		CheckpointKey:       fmt.Sprintf("pkcs11:token=%s;object=%s", token, checkpointKeyObject),
		CheckpointEvery:     DefaultCheckpointEvery.String(),
		CheckpointFile:      DefaultCheckpointFile,
		CheckpointPublicKey: DefaultCheckpointPublicKey,
	}
}

// WithDefaults returns c with every empty field set to its default; token
// is the configured token's label.
func (c CheckpointConfig) WithDefaults(token string) CheckpointConfig {
	d := DefaultCheckpointConfig(token)
	if c.CheckpointKey == "" {
		c.CheckpointKey = d.CheckpointKey
	}
	if c.CheckpointEvery == "" {
		c.CheckpointEvery = d.CheckpointEvery
	}
	if c.CheckpointFile == "" {
		c.CheckpointFile = d.CheckpointFile
	}
	if c.CheckpointPublicKey == "" {
		c.CheckpointPublicKey = d.CheckpointPublicKey
	}
	return c
}

// CheckpointInterval returns checkpointEvery as a duration (default 1m;
// 0 means checkpoints are off). Call it on a validated configuration.
func (c CheckpointConfig) CheckpointInterval() time.Duration {
	d, err := parseCheckpointEvery(c.CheckpointEvery)
	if err != nil {
		return DefaultCheckpointEvery
	}
	return d
}

func parseCheckpointEvery(s string) (time.Duration, error) {
	switch strings.TrimSpace(s) {
	case "":
		return DefaultCheckpointEvery, nil
	case "0":
		return 0, nil
	}
	return time.ParseDuration(s)
}

// Validate checks the audit section; empty fields mean the defaults.
func (c CheckpointConfig) Validate() error {
	var errs []string
	if c.CheckpointKey != "" && !strings.HasPrefix(c.CheckpointKey, "pkcs11:") {
		errs = append(errs, fmt.Sprintf("audit.checkpointKey: want a pkcs11: URI, got %q", c.CheckpointKey))
	}
	if d, err := parseCheckpointEvery(c.CheckpointEvery); err != nil {
		errs = append(errs, fmt.Sprintf("audit.checkpointEvery: want a duration such as 1m, or 0 for off, got %q", c.CheckpointEvery))
	} else if d < 0 || (d > 0 && d < time.Second) || d > 24*time.Hour {
		errs = append(errs, fmt.Sprintf("audit.checkpointEvery: want 0 (off) or 1s to 24h, got %s", d))
	}
	if strings.ContainsRune(c.CheckpointFile, 0) || (c.CheckpointFile != "" && strings.TrimSpace(c.CheckpointFile) == "") {
		errs = append(errs, fmt.Sprintf("audit.checkpointFile: not a file name: %q", c.CheckpointFile))
	}
	if strings.ContainsRune(c.CheckpointPublicKey, 0) || (c.CheckpointPublicKey != "" && strings.TrimSpace(c.CheckpointPublicKey) == "") {
		errs = append(errs, fmt.Sprintf("audit.checkpointPublicKey: not a file name: %q", c.CheckpointPublicKey))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// NewWriter publishes the public key of signer, the checkpoint key, as PEM
// at CheckpointPublicKey (so that a verifier needs no token) and returns
// the writer of checkpoints of chain's head into CheckpointFile. The
// paths are used as they are: resolve them first.
func (c CheckpointConfig) NewWriter(chain ChainReader, signer crypto.Signer, opts CheckpointWriterOptions) (*CheckpointWriter, error) {
	if err := PublishCheckpointKey(c.CheckpointPublicKey, signer.Public()); err != nil {
		return nil, err
	}
	return NewCheckpointWriter(chain, signer, c.CheckpointFile, opts)
}
