package verify

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/tsl"
)

// TestConfigValidate: zero values take the defaults; bad bounds, trusted
// lists, proxies and anchor files are refused naming their keys.
func TestConfigValidate(t *testing.T) {
	if d := (Config{}).WithDefaults(); d.MaxUploadBytes != 64<<20 || d.RatePerSecond != 5 || d.Burst != 20 || d.FetchTimeout != 10*time.Second {
		t.Fatalf("WithDefaults of nothing: %+v", d)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{MaxConcurrent: 64, MaxConcurrentPerClient: 8}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{FetchAllowHosts: []string{"ocsp.internal.example", "10.0.0.7:8080", "[fd00::7]:80"}}).Validate(); err != nil {
		t.Fatal(err)
	}
	for want, c := range map[string]Config{
		"verify.fetchTimeout":        {FetchTimeout: time.Hour},
		"verify.trustedLists[0]":     {TrustedLists: []tsl.SourceConfig{{File: "a"}}},
		"verify.trustedListRefresh":  {TrustedListRefresh: time.Second},
		"verify.trustedProxies[0]":   {TrustedProxies: []string{"proxy.example"}},
		"verify.trustAnchorFiles[0]": {TrustAnchorFiles: []string{" "}},
		"verify.fetchAllowHosts[1]":  {FetchAllowHosts: []string{"ocsp.example:8080", "http://ocsp.example/"}},
		"verify.maxUploadBytes":      {MaxUploadBytes: -1},
		// YAML's .nan and .inf: NaN refuses every client once its burst is
		// spent, infinity lifts the limit.
		"verify.ratePerSecond: want":          {RatePerSecond: math.NaN()},
		"verify.ratePerSecond: ":              {RatePerSecond: math.Inf(1)},
		"verify.maxConcurrent: want":          {MaxConcurrent: -1},
		"verify.maxConcurrent: ":              {MaxConcurrent: 1 << 20},
		"verify.maxConcurrentPerClient: want": {MaxConcurrentPerClient: -2},
		"verify.maxConcurrentPerClient: ":     {MaxConcurrentPerClient: 5000},
	} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}
