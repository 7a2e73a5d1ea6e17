package config

import (
	"strings"
	"testing"
	"time"
)

// TestParseRejectsOutOfBounds feeds thiqa.yaml files that differ from the
// default in one setting through the strict decoder: each is refused with
// an error naming the YAML key, before anything is built from it.
func TestParseRejectsOutOfBounds(t *testing.T) {
	dir := t.TempDir()
	raw, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	good := string(raw)
	replace := func(old, new string) string {
		t.Helper()
		if !strings.Contains(good, old) {
			t.Fatalf("the default configuration has no %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"listen port above 65535", replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:80800"), "listen"},
		{"metrics port above 65535", good + "metrics:\n  listen: 127.0.0.1:99999\n", "metrics.listen"},
		{"publicBaseURL with a query", replace("publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: http://127.0.0.1:8080?x=1"), "publicBaseURL"},
		{"publicBaseURL with a fragment", replace("publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: http://127.0.0.1:8080#top"), "publicBaseURL"},
		{"publicBaseURL with user info", replace("publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: http://user:pw@127.0.0.1:8080"), "publicBaseURL"},
		{"publicBaseURL port above 65535", replace("publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: http://127.0.0.1:80800"), "publicBaseURL"},
		{"CA key on another token", replace("key: pkcs11:token=thiqa;object=citizen-ca", "key: pkcs11:token=other;object=citizen-ca"), "ca.issuers[0].key"},
		{"root key without an object", replace("key: pkcs11:token=thiqa;object=root-ca", "key: pkcs11:token=thiqa"), "ca.root.key"},
		{"malformed TSA key URI", replace("key: pkcs11:token=thiqa;object=tsa-unit", "key: pkcs11:token=thiqa;objet=tsa-unit"), "tsa.key"},
		{"identity key on another token", replace("key: pkcs11:token=thiqa;object=oidc-token-signer", "key: pkcs11:token=x;object=oidc-token-signer"), "identity.key"},
		{"dev issuer key without an object", replace("devTokenIssuer: pkcs11:token=thiqa;object=dev-token-issuer", "devTokenIssuer: pkcs11:token=thiqa"), "keys.devTokenIssuer"},
		{"checkpoint key on another token", replace("checkpointKey: pkcs11:token=thiqa;object=audit-checkpoint", "checkpointKey: pkcs11:token=x;object=audit-checkpoint"), "audit.checkpointKey"},
		{"TSL signer key on another token", good + "tsl:\n  signerKey: pkcs11:token=x;object=tsl-signer\n", "tsl.signerKey"},
		{"TSA unit on a CA's key", replace("key: pkcs11:token=thiqa;object=tsa-unit", "key: pkcs11:token=thiqa;object=tsa-ca"), "tsa.key"},
		{"two CAs on one key", replace("key: pkcs11:token=thiqa;object=organisation-ca", "key: pkcs11:object=citizen-ca"), "ca.issuers[1].key"},
		{"bad CA policy OID", replace("caPolicyOID: \"\"", "caPolicyOID: not-an-oid"), "ca.profiles"},
		{"crypto-period of no profile", replace("pdsLanguage: \"\"", "pdsLanguage: \"\"\n    cryptoPeriods:\n      no-such-profile: 1000d"), "ca.profiles"},
		{"countries of no profile", replace("pdsLanguage: \"\"", "pdsLanguage: \"\"\n    countries:\n      no-such-profile: [OM]"), "ca.profiles: countries"},
		{"citizen countries empty", replace("pdsLanguage: \"\"", "pdsLanguage: \"\"\n    countries: {citizen-auth: []}"), "ca.profiles: countries"},
		{"citizen country not ISO 3166", replace("pdsLanguage: \"\"", "pdsLanguage: \"\"\n    countries: {citizen-auth: [OM, UAE]}"), "ca.profiles"},
		{"OCSP validity leaves the responder no life", replace("    validity: 24h0m0s\n    refreshEvery: 12h0m0s\n    renewBefore: 48h0m0s", "    validity: 100h0m0s\n    refreshEvery: 12h0m0s\n    renewBefore: 0s"), "revocation.ocsp.renewBefore"},
		{"OCSP renewBefore beyond the responder's life", replace("renewBefore: 48h0m0s", "renewBefore: 200h0m0s"), "revocation.ocsp.renewBefore"},
		{"OCSP presign workers absurd", replace("maxConcurrentSigns: 0\n    storeTimeout: 0s\n    presignWorkers: 0", "maxConcurrentSigns: 4611686018427387904\n    storeTimeout: 0s\n    presignWorkers: 4611686018427387904"), "revocation.ocsp"},
		{"TSA policy OID arc out of range", replace("policy: \"\"", "policy: 1.40.5"), "tsa"},
		{"TSA accepted policy arc out of range", replace("acceptedPolicies: []", "acceptedPolicies: [0.77]"), "tsa"},
		{"verify rate NaN", replace("ratePerSecond: 5", "ratePerSecond: .nan"), "verify.ratePerSecond"},
		{"verify rate infinite", replace("ratePerSecond: 5", "ratePerSecond: .inf"), "verify.ratePerSecond"},
		{"verify concurrency negative", replace("ratePerSecond: 5", "ratePerSecond: 5\n  maxConcurrent: -1"), "verify.maxConcurrent"},
		{"verify concurrency absurd", replace("ratePerSecond: 5", "ratePerSecond: 5\n  maxConcurrent: 9223372036854775807"), "verify.maxConcurrent"},
		{"verify per-client concurrency negative", replace("ratePerSecond: 5", "ratePerSecond: 5\n  maxConcurrentPerClient: -1"), "verify.maxConcurrentPerClient"},
		{"identity PIN memory absurd", replace("memoryKiB: 19456", "memoryKiB: 4294967295"), "identity.pin"},
		{"identity PIN passes absurd", replace("    time: 2\n", "    time: 4294967295\n"), "identity.pin"},
		{"signing document size overflows", replace("maxDocumentBytes: 1073741824", "maxDocumentBytes: 9223372036854775807"), "signing.maxDocumentBytes"},
		{"HSM pool absurd", replace("poolSize: 0", "poolSize: 4611686018427387904"), "hsm.poolSize"},
		{"HSM call timeout too long", replace("callTimeout: 0s", "callTimeout: 1h"), "hsm.callTimeout"},
		{"HSM call timeout negative", replace("callTimeout: 0s", "callTimeout: -1s"), "hsm.callTimeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: got %v, want an error naming %q", err, tc.want)
			}
		})
	}
	// Within bounds, the call timeout is taken as written.
	c, err := Parse([]byte(replace("callTimeout: 0s", "callTimeout: 2500ms")), dir)
	if err != nil || c.HSM.CallTimeout != 2500*time.Millisecond {
		t.Fatalf("hsm.callTimeout 2500ms: parsed %v, error %v", c != nil && c.HSM.CallTimeout == 2500*time.Millisecond, err)
	}
}
