package build

import (
	"strings"
	"testing"
)

// TestConfig: the tsl section's defaults land on the configured token;
// a key that is no pkcs11: URI and a territory that is no code are refused.
func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults("thiqa")
	if d.SignerKey != "pkcs11:token=thiqa;object=tsl-signer" || d.File != DefaultFile || d.SignerCertificate != DefaultSignerCertificate || d.Operator != "Thiqa" ||
		d.Address != (Address{Street: Placeholder, Locality: Placeholder}) {
		t.Fatalf("defaults: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{SignerKey: "tsl-signer"}).Validate(); err == nil || !strings.Contains(err.Error(), "tsl.signerKey") {
		t.Fatalf("signer key: %v", err)
	}
	if err := (Config{Territory: "Oman"}).Validate(); err == nil || !strings.Contains(err.Error(), "tsl.territory") {
		t.Fatalf("territory: %v", err)
	}
}
