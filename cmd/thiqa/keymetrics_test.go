package main

import (
	"testing"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm/keyring"
)

// TestKeyMetricLabelGenerations: the keys of a rolled-over CA generation
// and of its OCSP responders count under the CA's own roles.
func TestKeyMetricLabelGenerations(t *testing.T) {
	label := keyMetricLabel(config.Default(t.TempDir()))
	for in, want := range map[string]string{
		"citizen-ca":               "ca-citizen",
		"citizen-ca-2":             "ca-citizen",
		"tsa-ca-13":                "ca-tsa",
		"citizen-ca-x":             keyring.RoleOther,
		"ocsp-citizen-a1b2c3":      "ocsp-citizen",
		"ocsp-citizen_2-a1b2c3":    "ocsp-citizen",
		"ocsp-organisation_3-beef": "ocsp-organisation",
		"cred-0123":                keyring.RoleCredential,
	} {
		if got := label(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
