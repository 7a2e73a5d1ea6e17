package path

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

type pkitsCase struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Cert       string   `json:"cert"`
	OtherCerts []string `json:"other_certs"`
	CRLs       []string `json:"crls"`
	Revocation *bool    `json:"revocation"`
	Error      *struct {
		Class string `json:"class"`
	} `json:"error"`
	Params struct {
		UserInitialPolicySet        []string `json:"user_initial_policy_set"`
		InitialExplicitPolicy       bool     `json:"initial_explicit_policy"`
		InitialPolicyMappingInhibit bool     `json:"initial_policy_mapping_inhibit"`
		InitialAnyPolicyInhibit     bool     `json:"initial_any_policy_inhibit"`
	} `json:"params"`
}

// pkitsFloor is the agreement reached; the test fails if it drops.
const pkitsFloor = 246

func TestPKITS(t *testing.T) {
	dir := filepath.Join(testenv.SharedCorpus(t), "pkits")
	raw, err := os.ReadFile(filepath.Join(dir, "pkits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []pkitsCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	loadCert := func(name string) (*x509.Certificate, error) {
		der, err := os.ReadFile(filepath.Join(dir, "certs", name))
		if err != nil {
			return nil, err
		}
		return ParseCertificate(der)
	}
	loadCRL := func(name string) (*x509.RevocationList, error) {
		der, err := os.ReadFile(filepath.Join(dir, "crls", name))
		if err != nil {
			return nil, err
		}
		return x509.ParseRevocationList(der)
	}
	root, err := loadCert("TrustAnchorRootCertificate.crt")
	if err != nil {
		t.Fatal(err)
	}
	rootCRL, err := loadCRL("TrustAnchorRootCRL.crl")
	if err != nil {
		t.Fatal(err)
	}
	agree := 0
	for _, c := range cases {
		wantOK := c.Error == nil
		gotOK, why := runPKITS(c, root, rootCRL, loadCert, loadCRL)
		if gotOK == wantOK {
			agree++
		} else {
			t.Logf("disagree %s %s: want ok=%v, got ok=%v (%s)", c.ID, c.Name, wantOK, gotOK, why)
		}
	}
	t.Logf("PKITS: %d/%d agree", agree, len(cases))
	if agree < pkitsFloor {
		t.Errorf("PKITS agreement %d below floor %d", agree, pkitsFloor)
	}
}

func runPKITS(c pkitsCase, root *x509.Certificate, rootCRL *x509.RevocationList,
	loadCert func(string) (*x509.Certificate, error), loadCRL func(string) (*x509.RevocationList, error)) (bool, string) {
	leaf, err := loadCert(c.Cert)
	if err != nil {
		return false, "parse leaf: " + err.Error()
	}
	var pool []*x509.Certificate
	for _, n := range c.OtherCerts {
		ic, err := loadCert(n)
		if err != nil {
			return false, "parse intermediate: " + err.Error()
		}
		pool = append(pool, ic)
	}
	crls := []*x509.RevocationList{rootCRL}
	for _, n := range c.CRLs {
		l, err := loadCRL(n)
		if err != nil {
			return false, "parse CRL: " + err.Error()
		}
		crls = append(crls, l)
	}
	alg := AlgorithmPolicy{MinRSABits: 1024, MinECBits: 256, AllowSHA1: true, AllowDSA: true}
	opts := Options{
		Roots:                       []*x509.Certificate{root},
		Intermediates:               pool,
		At:                          time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC),
		InitialPolicies:             c.Params.UserInitialPolicySet,
		InitialExplicitPolicy:       c.Params.InitialExplicitPolicy,
		InitialPolicyMappingInhibit: c.Params.InitialPolicyMappingInhibit,
		InitialAnyPolicyInhibit:     c.Params.InitialAnyPolicyInhibit,
		Algorithms:                  &alg,
	}
	if c.Revocation == nil || *c.Revocation {
		opts.Revocation = &CRLChecker{CRLs: crls, Pool: pool}
	}
	_, err = New(opts).Validate(leaf)
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}
