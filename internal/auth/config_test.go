package auth

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/thiqa/thiqa/policies"
)

func TestConfigYAML(t *testing.T) {
	doc := `
issuers:
  - issuer: https://idp.example.om
    audience: thiqa
    jwksURL: https://idp.example.om/jwks
    algorithms: [ES256, PS256]
    clockSkew: 30s
    roles: [agency, citizen]
  - issuer: urn:thiqa:dev-issuer
    audience: thiqa
    jwksFile: /var/lib/thiqa/dev-issuer.jwks.json
mtls:
  clientCAFiles: [/etc/thiqa/client-ca.pem]
  rules:
    - organizationIdentifierPrefix: NTROM-
      role: agency
    - serialNumberPrefix: IDC
      role: citizen
    - subject: CN=Operator One,O=Thiqa,C=OM
      role: operator
`
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Issuers[0].ClockSkew != 30*time.Second || cfg.Issuers[0].Roles[1] != policies.RoleCitizen ||
		cfg.MTLS.Rules[0].OrganizationIdentifierPrefix != "NTROM-" || cfg.MTLS.Rules[2].Role != policies.RoleOperator {
		t.Fatalf("decoded %+v", cfg)
	}
	// Unknown keys are refused by strict decoding.
	dec = yaml.NewDecoder(bytes.NewReader([]byte("issuers:\n  - issuer: x\n    audiance: y\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err == nil {
		t.Fatal("misspelt key accepted")
	}
}

func TestConfigValidation(t *testing.T) {
	ok := IssuerConfig{Issuer: "i", Audience: "a", JWKSFile: "f"}
	with := func(mut func(*IssuerConfig)) Config {
		ic := ok
		mut(&ic)
		return Config{Issuers: []IssuerConfig{ic}}
	}
	bad := map[string]Config{
		"no issuer":        with(func(ic *IssuerConfig) { ic.Issuer = "" }),
		"no audience":      with(func(ic *IssuerConfig) { ic.Audience = "" }),
		"no JWKS":          with(func(ic *IssuerConfig) { ic.JWKSFile = "" }),
		"both JWKS":        with(func(ic *IssuerConfig) { ic.JWKSURL = "https://x/jwks" }),
		"http JWKS":        with(func(ic *IssuerConfig) { ic.JWKSFile, ic.JWKSURL = "", "http://idp.example/jwks" }),
		"ftp JWKS":         with(func(ic *IssuerConfig) { ic.JWKSFile, ic.JWKSURL = "", "ftp://idp.example/jwks" }),
		"alg none":         with(func(ic *IssuerConfig) { ic.Algorithms = []string{"ES256", "none"} }),
		"alg NONE":         with(func(ic *IssuerConfig) { ic.Algorithms = []string{"NONE"} }),
		"alg HS256":        with(func(ic *IssuerConfig) { ic.Algorithms = []string{"HS256"} }),
		"alg unknown":      with(func(ic *IssuerConfig) { ic.Algorithms = []string{"ES999"} }),
		"skew too large":   with(func(ic *IssuerConfig) { ic.ClockSkew = 6 * time.Minute }),
		"negative skew":    with(func(ic *IssuerConfig) { ic.ClockSkew = -time.Second }),
		"unknown role":     with(func(ic *IssuerConfig) { ic.Roles = []policies.Role{"root"} }),
		"duplicate issuer": {Issuers: []IssuerConfig{ok, ok}},
		"rule no cond":     {MTLS: MTLSConfig{Rules: []MTLSRule{{Role: policies.RoleOperator}}}},
		"rule bad role":    {MTLS: MTLSConfig{Rules: []MTLSRule{{Subject: "CN=x", Role: "root"}}}},
		"empty CA path":    {MTLS: MTLSConfig{ClientCAFiles: []string{" "}}},
	}
	for name, cfg := range bad {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := New(cfg, Options{}); err == nil {
			t.Errorf("%s: New accepted", name)
		}
	}
	good := []Config{
		with(func(ic *IssuerConfig) { ic.JWKSFile, ic.JWKSURL = "", "http://127.0.0.1:8080/jwks" }),
		with(func(ic *IssuerConfig) { ic.JWKSFile, ic.JWKSURL = "", "http://localhost/jwks" }),
		with(func(ic *IssuerConfig) {
			ic.Algorithms = []string{"ES512", "RS256", "EdDSA"}
			ic.ClockSkew = MaxClockSkew
		}),
		{MTLS: MTLSConfig{Rules: DefaultMTLSRules()}},
	}
	for i, cfg := range good {
		if err := cfg.Validate(); err != nil {
			t.Errorf("good[%d]: %v", i, err)
		}
	}
	// A missing JWKS file fails New with the file named.
	if _, err := New(with(func(ic *IssuerConfig) { ic.JWKSFile = "/nonexistent/jwks.json" }), Options{}); err == nil ||
		!strings.Contains(err.Error(), "/nonexistent/jwks.json") {
		t.Errorf("missing JWKS file: %v", err)
	}
}
