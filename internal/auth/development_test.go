package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A trusted development issuer is refused in production, warned about
// otherwise, and shown by thiqa_development_issuer_enabled.
func TestCheckDevelopmentIssuers(t *testing.T) {
	for _, c := range []struct {
		dev        []string
		production bool
		refused    bool
		warned     bool
		gauge      float64
	}{
		{nil, true, false, false, 0},
		{[]string{DevIssuer}, false, false, true, 1},
		{[]string{DevIssuer}, true, true, false, 1},
	} {
		var logs bytes.Buffer
		reg := prometheus.NewRegistry()
		err := CheckDevelopmentIssuers(c.dev, c.production, slog.New(slog.NewTextHandler(&logs, nil)), reg)
		if (err != nil) != c.refused || (err != nil && !strings.Contains(err.Error(), DevIssuer)) {
			t.Errorf("%v production=%v: error %v", c.dev, c.production, err)
		}
		if warned := strings.Contains(logs.String(), "development token issuer is trusted"); warned != c.warned {
			t.Errorf("%v production=%v: warned %v, want %v", c.dev, c.production, warned, c.warned)
		}
		if got := gauge(t, reg); got != c.gauge {
			t.Errorf("%v: gauge %v, want %v", c.dev, got, c.gauge)
		}
	}
}

// gauge returns the value of thiqa_development_issuer_enabled in reg.
func gauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "thiqa_development_issuer_enabled" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("thiqa_development_issuer_enabled is not registered")
	return 0
}

// The development issuer's published JWK Set holds its public key, and
// only that.
func TestPublishDevIssuerKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dev-issuer.jwks.json")
	if err := PublishDevIssuerKey(path, key); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadJWKSFile(path)
	if err != nil || len(keys) != 1 || !keys[0].IsPublic() || !key.PublicKey.Equal(keys[0].Key) {
		t.Fatalf("published %+v, %v", keys, err)
	}
}
