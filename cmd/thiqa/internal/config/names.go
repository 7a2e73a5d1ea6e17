package config

import (
	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/verify/tsl"
)

// The sections of thiqa.yaml are the Config types of the services that
// own them; these names let the verbs speak of them as the file does.

// CAKeyConfig is one CA of the ca section.
type CAKeyConfig = ca.KeyConfig

// TSAConfig is the tsa section.
type TSAConfig = timestamp.ServiceConfig

// RevocationSettings is the validated revocation section.
type RevocationSettings = revocation.Settings

// HSMConfig is the hsm section.
type HSMConfig = hsm.TokenConfig

// DefaultCAConfig is the ca section of a local setup.
func DefaultCAConfig() ca.Config { return ca.DefaultConfig() }

// DefaultFonts are the fonts of visible signatures when signing.fonts is
// not set (those of them that are installed).
var DefaultFonts = signing.DefaultFonts

// Defaults and clock sources the verbs name.
const (
	// DefaultTrustedListCache keeps fetched trusted lists.
	DefaultTrustedListCache = tsl.DefaultCacheDir
	// DefaultTrustedListRefresh is how often `thiqa serve` reloads them.
	DefaultTrustedListRefresh = tsl.DefaultRefresh
	// ClockKernel reads the kernel's NTP state (tsa.clock.source).
	ClockKernel = timestamp.ClockKernel
	// ClockStatic declares the TSA clock in sync: DEVELOPMENT ONLY.
	ClockStatic = timestamp.ClockStatic
	// ClockStaticOutOfSync declares the TSA clock out of sync.
	ClockStaticOutOfSync = timestamp.ClockStaticOutOfSync
)
