package main

import (
	"strconv"
	"strings"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm/keyring"
)

// Values of the "key" label of the HSM metrics for keys that are not one
// of the service keys the configuration names.
const (
	// keyMetricCredential counts every subject key (a citizen's or an
	// agency's credential) until its service names its profile.
	keyMetricCredential = "credential"
	// keyMetricOther counts any other key on the token.
	keyMetricOther = "other"
)

// keyMetricLabel maps a key's label on the token to the value of the HSM
// metrics' "key" label: the key's role (ca-citizen, ocsp-citizen,
// tsa-unit, …), never the label of a subject's key, which is a credential
// ID. The set of values is fixed by the configuration, so it does not grow
// with the number of citizens.
func keyMetricLabel(cfg *config.Config) func(label string) string {
	exact := map[string]string{}
	caKeys := map[string]string{} // issuing CA key label → role, for its generations' keys
	name := func(uri, role string) {
		if l, err := keyLabel(cfg, uri); err == nil && l != "" {
			exact[l] = role
		}
	}
	name(cfg.CA.Root.Key, "ca-"+cfg.CA.Root.Name)
	for _, is := range cfg.CA.Issuers {
		name(is.Key, "ca-"+is.Name)
		if l, err := keyLabel(cfg, is.Key); err == nil && l != "" {
			caKeys[l] = "ca-" + is.Name
		}
	}
	name(cfg.Keys.DevTokenIssuer, "dev-token-issuer")
	name(cfg.Identity.Key, "oidc-token-signer")
	name(cfg.Audit.CheckpointKey, "audit-checkpoint")
	tsaBase, _ := keyLabel(cfg, cfg.TSA.Key)
	var responders []string
	for _, is := range cfg.CA.Issuers {
		responders = append(responders, is.Name)
	}
	responders = append(responders, cfg.CA.Root.Name)
	return func(label string) string {
		if role, ok := exact[label]; ok {
			return role
		}
		switch {
		case strings.HasPrefix(label, keyring.CredentialPrefix):
			return keyMetricCredential
		case tsaBase != "" && (label == tsaBase || strings.HasPrefix(label, tsaBase+"-")):
			return "tsa-unit"
		}
		for _, ca := range responders {
			if strings.HasPrefix(label, "ocsp-"+ca+"-") || strings.HasPrefix(label, "ocsp-"+ca+"_") { // citizen_2's responder counts as citizen's
				return "ocsp-" + ca
			}
		}
		if i := strings.LastIndexByte(label, '-'); i > 0 {
			if _, err := strconv.Atoi(label[i+1:]); err == nil && caKeys[label[:i]] != "" {
				return caKeys[label[:i]] // a later generation's key (citizen-ca-2) counts as its CA's
			}
		}
		return keyMetricOther
	}
}
