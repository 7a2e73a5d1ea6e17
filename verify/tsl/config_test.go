package tsl_test

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/verify/tsl"
)

// TestSourceConfig: a file or a URL, at least one signer, territory
// codes; each problem names the entry's key.
func TestSourceConfig(t *testing.T) {
	good := tsl.SourceConfig{URL: "https://ec.europa.eu/tools/lotl/eu-lotl.xml", Signers: []string{"lotl.pem"}, Territories: []string{"IE", "EU"}}
	if err := good.Validate("verify.trustedLists[0]"); err != nil || good.Location() != good.URL {
		t.Fatalf("good entry: %v", err)
	}
	if loc := (tsl.SourceConfig{File: "tsl/tsl.xml"}).Location(); loc != "tsl/tsl.xml" {
		t.Fatalf("Location of a file = %q", loc)
	}
	for _, tc := range []struct {
		c    tsl.SourceConfig
		want string
	}{
		{tsl.SourceConfig{File: "a.xml", URL: "https://x/tsl.xml", Signers: []string{"a.pem"}}, "exactly one of file and url"},
		{tsl.SourceConfig{Signers: []string{"a.pem"}}, "exactly one of file and url"},
		{tsl.SourceConfig{File: "a.xml"}, "k.signers: name at least one"},
		{tsl.SourceConfig{File: "a.xml", Signers: []string{" "}}, "k.signers[0]: empty"},
		{tsl.SourceConfig{URL: "ftp://x/tsl.xml", Signers: []string{"a.pem"}}, "k.url: want an http(s) URL"},
		{tsl.SourceConfig{File: "a.xml", Signers: []string{"a.pem"}, Territories: []string{"ireland"}}, "territory code"},
	} {
		if err := tc.c.Validate("k"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	for s, want := range map[string]bool{"OM": true, "om": false, "OMN": false, "": false} {
		if tsl.IsTerritory(s) != want {
			t.Errorf("IsTerritory(%q) != %v", s, want)
		}
	}
}
