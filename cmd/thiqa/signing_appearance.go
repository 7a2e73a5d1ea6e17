package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/signer/pdftext"
	"github.com/thiqa/thiqa/signing"
)

// appearanceConfig loads what visible signatures are drawn with: the fonts
// of signing.fonts (an error when one cannot be used) or, by default, those
// of config.DefaultFonts that are installed (none: visible signatures are
// refused, and a warning says so); the time zone; the QR code's URL, this
// deployment's verification page.
func appearanceConfig(p *platform) (signing.AppearanceConfig, error) {
	cfg := p.cfg.Signing
	ac := signing.AppearanceConfig{VerifyURL: strings.TrimRight(p.cfg.PublicBaseURL, "/") + "/verify", Location: time.Local}
	if cfg.TimeZone != "" {
		loc, err := time.LoadLocation(cfg.TimeZone)
		if err != nil {
			return ac, fmt.Errorf("signing.timeZone: %w", err)
		}
		ac.Location = loc
	}
	paths, configured := cfg.Fonts, len(cfg.Fonts) > 0
	if !configured {
		paths = config.DefaultFonts
	}
	for _, path := range paths {
		if configured {
			path = p.cfg.Resolve(path)
		} else if _, err := os.Stat(path); err != nil {
			continue
		}
		f, err := pdftext.LoadFont(path)
		if err != nil {
			return ac, fmt.Errorf("signing.fonts: %w", err)
		}
		ac.Fonts = append(ac.Fonts, f)
	}
	if len(ac.Fonts) == 0 {
		p.logger.Warn("no font for visible signatures: install fonts-dejavu-core or set signing.fonts; visible signatures are refused")
	}
	return ac, nil
}
