package config

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/tsl/build"
)

// TestTrustedListsConfig: verify.trustedLists and the tsl section are
// decoded strictly and validated; a good entry parses, bad ones name the key.
func TestTrustedListsConfig(t *testing.T) {
	dir := t.TempDir()
	good, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	with := func(entry string) string {
		return strings.Replace(string(good), "verify:\n", "verify:\n  trustedLists:\n"+entry, 1)
	}
	c, err := Parse([]byte(with("    - url: https://ec.europa.eu/tools/lotl/eu-lotl.xml\n      signers: [lotl.pem]\n      territories: [IE, SK]\n    - file: tsl/tsl.xml\n      signers: [tsl/signer.pem]\n")), dir)
	if err != nil || len(c.Verify.TrustedLists) != 2 || c.Verify.TrustedLists[0].Location() != "https://ec.europa.eu/tools/lotl/eu-lotl.xml" ||
		c.ResolvedTSL().SignerKey != "pkcs11:token=thiqa;object=tsl-signer" {
		t.Fatalf("good trusted lists: %v %+v", err, c)
	}
	c, err = Parse([]byte(string(good)+"tsl:\n  operator: Trust Services\n  address:\n    street: Way 3013\n    locality: Muscat\n    stateOrProvince: Muscat\n    postalCode: \"112\"\n    country: OM\n    email: trust@gov.example\n"), dir)
	if err != nil || c.ResolvedTSL().Address != (build.Address{Street: "Way 3013", Locality: "Muscat", StateOrProvince: "Muscat", PostalCode: "112", Country: "OM", Email: "trust@gov.example"}) {
		t.Fatalf("tsl address: %v %+v", err, c)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"file and url", with("    - file: a.xml\n      url: https://x/tsl.xml\n      signers: [a.pem]\n"), "exactly one of file and url"},
		{"neither", with("    - signers: [a.pem]\n"), "exactly one of file and url"},
		{"no signers", with("    - file: a.xml\n"), "signers"},
		{"ftp", with("    - url: ftp://x/tsl.xml\n      signers: [a.pem]\n"), "http(s) URL"},
		{"territory", with("    - file: a.xml\n      signers: [a.pem]\n      territories: [ireland]\n"), "territory code"},
		{"unknown key", with("    - file: a.xml\n      signers: [a.pem]\n      signer: b.pem\n"), "field signer not found"},
		{"refresh", strings.Replace(string(good), "verify:\n", "verify:\n  trustedListRefresh: 1s\n", 1), "trustedListRefresh"},
		{"tsl key", string(good) + "tsl:\n  signerKey: tsl-signer\n", "tsl.signerKey"},
		{"tsl territory", string(good) + "tsl:\n  territory: Oman\n", "tsl.territory"},
		{"tsl address country", string(good) + "tsl:\n  address:\n    country: Oman\n", "tsl.address.country"},
		{"tsl address blank", string(good) + "tsl:\n  address:\n    street: \" \"\n", "tsl.address.street"},
		{"tsl address email", string(good) + "tsl:\n  address:\n    email: Trust <trust@gov.example>\n", "tsl.address.email"},
		{"tsl address unknown key", string(good) + "tsl:\n  address:\n    city: Muscat\n", "field city not found"},
	} {
		if _, err := Parse([]byte(tc.yaml), dir); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}
