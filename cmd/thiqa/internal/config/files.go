package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/thiqa/thiqa/notify"
)

// CheckFiles checks that every file the operator provides for `thiqa
// serve` to read exists and can be read: the PKCS#11 module, the user PIN
// file of a token Thiqa does not manage, the TLS certificate and key, the
// JWKS files of the JWT issuers, the mutual-TLS client CAs, the
// verification trust anchors and the fonts of visible signatures. What
// `thiqa init` writes (a managed SoftHSM token's PIN files, the development
// issuer's JWKS) is not asked for, so a configuration can be checked before
// the first init. Validate checks no file; `thiqa config check` asks both.
// Each problem names its YAML key; all of them are returned at once.
func (c *Config) CheckFiles() error {
	var errs []error
	check := func(key, path string) {
		if path == "" {
			return
		}
		f, err := os.Open(c.Resolve(path))
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil && fi.IsDir() {
				err = fmt.Errorf("%s is a folder, not a file", f.Name())
			}
			f.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	check("hsm.module", c.HSM.Module)
	if c.HSM.SoftHSM == nil && (c.HSM.PINEnv == "" || os.Getenv(c.HSM.PINEnv) == "") {
		check("hsm.pinFile", c.HSM.PINFile)
	}
	if c.TLS != nil {
		check("tls.certFile", c.TLS.CertFile)
		check("tls.keyFile", c.TLS.KeyFile)
	}
	for i, ic := range c.Auth.Issuers {
		if !ic.IsDevelopment() {
			check(fmt.Sprintf("auth.issuers[%d].jwksFile", i), ic.JWKSFile)
		}
	}
	for i, f := range c.Auth.MTLS.ClientCAFiles {
		check(fmt.Sprintf("auth.mtls.clientCAFiles[%d]", i), f)
	}
	if !c.Verify.Disabled {
		for i, f := range c.Verify.TrustAnchorFiles {
			check(fmt.Sprintf("verify.trustAnchorFiles[%d]", i), f)
		}
	}
	if c.Notify.Enabled && c.Notify.Webhook.SecretFile != "" {
		if _, err := notify.ReadSecret(c.Resolve(c.Notify.Webhook.SecretFile)); err != nil {
			errs = append(errs, err)
		}
	}
	if !c.Signing.Disabled {
		for i, f := range c.Signing.Fonts {
			check(fmt.Sprintf("signing.fonts[%d]", i), f)
		}
	}
	return errors.Join(errs...)
}
