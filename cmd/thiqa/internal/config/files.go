package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/notify"
)

// ProvidedFile is a file the operator provides for `thiqa serve` to read,
// under the YAML key that names it.
type ProvidedFile struct {
	// Key is the YAML key, e.g. "tls.certFile" or "auth.issuers[1].jwksFile".
	Key string
	// Path is the file's path, absolute when the configuration was read
	// from a data folder (relative names are resolved against it).
	Path string
	// HSM marks the token's own files (the PKCS#11 module, the user PIN
	// file): the HSM's procedures keep them, not the host's backup.
	HSM bool
	// check reads the file as its user does, when opening it is not enough.
	check func(path string) error
}

// notifySecretKey is the YAML key of the notification gateway's secret.
const notifySecretKey = "notify.webhook.secretFile"

// ProvidedFiles lists every file the operator provides for `thiqa serve`
// to read, in the order of the configuration: the PKCS#11 module, the user
// PIN file of a token Thiqa does not manage (unless the PIN comes from the
// environment), the TLS certificate and key, the JWKS files of the JWT
// issuers, the mutual-TLS client CAs, the verification trust anchors, the
// trusted lists kept as files and their signers' certificates, the
// notification gateway's secret and the fonts of visible signatures. The
// files of a disabled service, and what `thiqa init` writes (a managed
// SoftHSM token's PIN files, the development issuer's JWKS), are left out.
// `thiqa config check` reads them; `thiqa backup` names those outside the
// data folder, which the host's own backup must keep.
func (c *Config) ProvidedFiles() []ProvidedFile {
	var out []ProvidedFile
	add := func(key, path string) {
		if path != "" {
			out = append(out, ProvidedFile{Key: key, Path: c.Resolve(path)})
		}
	}
	add("hsm.module", c.HSM.Module)
	if c.HSM.SoftHSM == nil && (c.HSM.PINEnv == "" || os.Getenv(c.HSM.PINEnv) == "") {
		add("hsm.pinFile", c.HSM.PINFile)
	}
	for i := range out {
		out[i].HSM = true
	}
	if c.TLS != nil {
		add("tls.certFile", c.TLS.CertFile)
		add("tls.keyFile", c.TLS.KeyFile)
	}
	for i, ic := range c.Auth.Issuers {
		if !ic.IsDevelopment() {
			add(fmt.Sprintf("auth.issuers[%d].jwksFile", i), ic.JWKSFile)
		}
	}
	for i, f := range c.Auth.MTLS.ClientCAFiles {
		add(fmt.Sprintf("auth.mtls.clientCAFiles[%d]", i), f)
	}
	if !c.Verify.Disabled {
		for i, f := range c.Verify.TrustAnchorFiles {
			add(fmt.Sprintf("verify.trustAnchorFiles[%d]", i), f)
		}
		for i, t := range c.Verify.TrustedLists {
			add(fmt.Sprintf("verify.trustedLists[%d].file", i), t.File)
			for j, f := range t.Signers {
				add(fmt.Sprintf("verify.trustedLists[%d].signers[%d]", i, j), f)
			}
		}
	}
	if c.Notify.Enabled && c.Notify.Webhook.SecretFile != "" {
		out = append(out, ProvidedFile{Key: notifySecretKey, Path: c.Resolve(c.Notify.Webhook.SecretFile), check: func(p string) error {
			_, err := notify.ReadSecret(p)
			return err
		}})
	}
	if !c.Signing.Disabled {
		for i, f := range c.Signing.Fonts {
			add(fmt.Sprintf("signing.fonts[%d]", i), f)
		}
	}
	return out
}

// CheckFiles checks that every file the operator provides for `thiqa
// serve` to read (ProvidedFiles) exists and can be read. What `thiqa init`
// writes is not asked for before it exists (the CA certificates, which
// production names as its client CAs, initWrites), so a configuration can
// be checked before the first init. Validate checks no file; `thiqa config check` asks both.
// Each problem names its YAML key; all of them are returned at once.
func (c *Config) CheckFiles() error {
	var errs []error
	written := c.initWrites()
	for _, pf := range c.ProvidedFiles() {
		if _, err := os.Stat(pf.Path); errors.Is(err, os.ErrNotExist) && written[filepath.Clean(pf.Path)] {
			continue // `thiqa init` writes it (a CA certificate as a client CA or trust anchor)
		}
		if pf.check != nil {
			if err := pf.check(pf.Path); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		f, err := os.Open(pf.Path)
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil && fi.IsDir() {
				err = fmt.Errorf("%s is a folder, not a file", f.Name())
			}
			f.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", pf.Key, err))
		}
	}
	return errors.Join(errs...)
}

// initWrites is the set of files `thiqa init` is still to write that the
// operator may name as files to read: the CA certificates (ca.certDir/<name>.pem
// of the root and each issuing CA), which production gives as
// auth.mtls.clientCAFiles and a verifier may take as trust anchors. Once
// one of them exists, init has run and the set is empty: a CA certificate
// missing then is lost, and named like any other file.
func (c *Config) initWrites() map[string]bool {
	out := map[string]bool{}
	if !c.CA.Enabled() {
		return out
	}
	dir := c.Resolve(c.CA.CertDir)
	for _, name := range append([]string{c.CA.Root.Name}, c.CA.IssuerNames()...) {
		if name == "" {
			continue
		}
		p := filepath.Clean(hierarchy.CertPath(dir, name))
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			return map[string]bool{} // init has run (or the folder cannot be read: ask for every file)
		}
		out[p] = true
	}
	return out
}
