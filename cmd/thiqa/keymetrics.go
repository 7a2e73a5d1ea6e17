package main

import (
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm/keyring"
)

// keyMetricLabel maps a key's label on the token to the value of the HSM
// metrics' "key" label (keyring.Roles): the roles of the keys the
// configuration names, of its issuing CAs' generations, of its TSA units
// and of its OCSP responders.
func keyMetricLabel(cfg *config.Config) func(label string) string {
	r := keyring.Roles{Keys: map[string]string{}, CAKeys: map[string]string{}}
	name := func(uri, role string) {
		if l, err := cfg.HSM.KeyLabel(uri); err == nil && l != "" {
			r.Keys[l] = role
		}
	}
	name(cfg.CA.Root.Key, "ca-"+cfg.CA.Root.Name)
	for _, is := range cfg.CA.Issuers {
		name(is.Key, "ca-"+is.Name)
		if l, err := cfg.HSM.KeyLabel(is.Key); err == nil && l != "" {
			r.CAKeys[l] = "ca-" + is.Name
		}
		r.Responders = append(r.Responders, is.Name)
	}
	name(cfg.Keys.DevTokenIssuer, "dev-token-issuer")
	name(cfg.Identity.Key, "oidc-token-signer")
	name(cfg.Audit.CheckpointKey, "audit-checkpoint")
	r.TSAUnit, _ = cfg.HSM.KeyLabel(cfg.TSA.Key)
	r.Responders = append(r.Responders, cfg.CA.Root.Name)
	return r.Role
}
