package signing_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// wantCSC checks a CSC API v2 error (section 10.2): the status, the error
// code, error_description naming text, and no RFC 9457 problem members.
func wantCSC(t *testing.T, what string, code int, m map[string]any, status int, errCode, text string) {
	t.Helper()
	desc, _ := m["error_description"].(string)
	if code != status || m["error"] != errCode || !strings.Contains(desc, text) {
		t.Fatalf("%s: got %d %v; want %d error=%q naming %q", what, code, m, status, errCode, text)
	}
	for _, k := range []string{"title", "status", "detail", "type"} {
		if _, ok := m[k]; ok {
			t.Fatalf("%s: CSC error carries the problem member %q: %v", what, k, m)
		}
	}
}

// runCSCShape checks the CSC error shape where the authentication layer
// answers (no token, a bad token) and the v2 success bodies of info,
// credentials/list, credentials/info and credentials/authorize (authData).
// It makes no wrong PIN tries and no signature.
func runCSCShape(t *testing.T, w *world, citizen, other, cred, h string) {
	t.Helper()
	for _, c := range []struct{ name, token, challenge string }{
		{"no token", "", `Bearer realm="thiqa"`},
		{"a bad token", "not-a-jwt", `error="invalid_token"`},
	} {
		for _, path := range []string{"/csc/v2/credentials/list", "/csc/v2/credentials/info", "/csc/v2/credentials/authorize", "/csc/v2/signatures/signHash"} {
			code, hdr, body := w.send(t, path, c.token, "application/json", []byte(`{}`), nil)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("%s %s: %d %s", path, c.name, code, body)
			}
			wantCSC(t, path+" with "+c.name, code, m, 401, "invalid_token", "")
			if ch := hdr.Get("WWW-Authenticate"); !strings.Contains(ch, c.challenge) {
				t.Fatalf("%s with %s: WWW-Authenticate %q, want %q", path, c.name, ch, c.challenge)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s with %s: Content-Type %q", path, c.name, ct)
			}
		}
	}
	// An expired token is the CSC expired_token (told by the problem's type).
	expired, err := auth.MintToken(w.minter, auth.MintClaims{Subject: "12345678", Roles: []policies.Role{policies.RoleCitizen},
		Now: time.Now().Add(-2 * time.Hour), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if code, m := w.csc(t, "/csc/v2/credentials/list", expired, map[string]any{}); code != 401 || m["error"] != "expired_token" {
		t.Fatalf("credentials/list with an expired token: %d %v", code, m)
	}
	// The other Thiqa APIs keep RFC 9457 problems.
	code, hdr, body := w.send(t, "/api/v1/sign?level=B-B&credential="+cred, "", "application/pdf", samplePDF(t, 1<<10), nil)
	if code != 401 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), `"title"`) {
		t.Fatalf("/api/v1/sign without a token: %d %s %s", code, hdr.Get("Content-Type"), body)
	}

	code, m := w.csc(t, "/csc/v2/info", "", map[string]any{})
	if code != 200 || !strings.Contains(fmt.Sprint(m["signAlgorithms"]), "1.2.840.10045.4.3.2") || m["name"] == "" || m["region"] != "OM" {
		t.Fatalf("info: %d %v", code, m)
	}

	code, m = w.csc(t, "/csc/v2/credentials/info", citizen, map[string]any{"credentialID": cred, "certificates": "chain", "certInfo": true, "authInfo": true})
	key, _ := m["key"].(map[string]any)
	cert, _ := m["cert"].(map[string]any)
	auth, _ := m["auth"].(map[string]any)
	certs, _ := cert["certificates"].([]any)
	serial, _ := cert["serialNumber"].(string)
	if code != 200 || m["SCAL"] != "2" || key["status"] != "enabled" || key["curve"] != "1.2.840.10045.3.1.7" || key["len"] != 256.0 ||
		cert["status"] != "valid" || len(certs) < 2 || serial == "" || serial != strings.ToUpper(serial) ||
		!strings.HasSuffix(fmt.Sprint(cert["validTo"]), "Z") || cert["subjectDN"] == nil || cert["issuerDN"] == nil ||
		auth["mode"] != "explicit" || !strings.Contains(fmt.Sprint(auth["objects"]), "id:PIN") || m["multisign"] == nil {
		t.Fatalf("credentials/info: %d %v", code, m)
	}
	// RFC 4514 strings with the short names a relying party reads, not dotted OIDs with hex values.
	if dn := fmt.Sprint(cert["subjectDN"]); !strings.Contains(dn, "SN=") || !strings.Contains(dn, "GN=") || strings.Contains(dn, "2.5.4.") {
		t.Errorf("credentials/info: subjectDN %s", dn)
	}
	// In the certificate's RFC 4514 order, as openssl prints it (its
	// short name of serialNumber aside).
	if len(certs) > 0 {
		for field, dn := range map[string]any{"subject": cert["subjectDN"], "issuer": cert["issuerDN"]} {
			if want := opensslDN(t, fmt.Sprint(certs[0]), field); fmt.Sprint(dn) != want {
				t.Errorf("credentials/info: %sDN %s, openssl says %s", field, dn, want)
			}
		}
	}
	code, m = w.csc(t, "/csc/v2/credentials/info", citizen, map[string]any{"credentialID": cred, "certificates": "all"})
	wantCSC(t, "credentials/info with certificates=all", code, m, 400, "invalid_request", "Invalid parameter certificates")
	code, m = w.csc(t, "/csc/v2/credentials/info", other, map[string]any{"credentialID": cred})
	wantCSC(t, "credentials/info of another citizen's credential", code, m, 400, "invalid_request", "Invalid parameter credentialID")

	code, m = w.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{"credentialInfo": true, "certInfo": true, "onlyValid": true})
	infos, _ := m["credentialInfos"].([]any)
	if code != 200 || fmt.Sprint(m["credentialIDs"]) != "["+cred+"]" || m["onlyValid"] != true || len(infos) != 1 ||
		infos[0].(map[string]any)["credentialID"] != cred || !strings.Contains(fmt.Sprint(infos[0]), "status:enabled") {
		t.Fatalf("credentials/list with credentialInfo: %d %v", code, m)
	}
	code, m = w.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{"userID": "87654321"})
	wantCSC(t, "credentials/list with a userID", code, m, 400, "invalid_request", "userID parameter MUST be null")

	authorize := func(body map[string]any) (int, map[string]any) {
		body["credentialID"], body["hashAlgorithmOID"] = cred, "2.16.840.1.101.3.4.2.1"
		return w.csc(t, "/csc/v2/credentials/authorize", citizen, body)
	}
	code, m = authorize(map[string]any{"numSignatures": 0, "hashes": []string{h}, "authData": []map[string]string{{"id": "PIN", "value": testPIN}}})
	wantCSC(t, "authorize with numSignatures 0", code, m, 400, "invalid_request", "Invalid value for parameter numSignatures")
	code, m = authorize(map[string]any{"numSignatures": 1, "hashes": []string{h}})
	wantCSC(t, "authorize without authData", code, m, 400, "invalid_request", "authData")
	code, m = authorize(map[string]any{"numSignatures": 1, "hashes": []string{h}, "authData": []map[string]string{{"id": "PIN", "value": testPIN}}})
	if sad, _ := m["SAD"].(string); code != 200 || sad == "" || m["expiresIn"] == nil {
		t.Fatalf("authorize with authData: %d %v", code, m)
	}
}

// TestSigningRSA: credentials with RSA-2048 keys on the token: a B-T seal
// (pdfsig, openssl cms, our verifier), signHash with PKCS#1 v1.5 and PSS.
func TestSigningRSA(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{keyType: hsm.RSA2048})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	cred, cert := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		t.Fatalf("seal key is %T, want RSA", cert.PublicKey)
	}
	code, _, body := w.send(t, "/api/v1/seal?level=B-T&credential="+cred, agency, "application/pdf", samplePDF(t, 20<<10), nil)
	if code != 200 {
		t.Fatalf("RSA seal: %d %.300s", code, body)
	}
	w.checkPDF(t, "rsa-sealed.pdf", body, "organisation", "B-T")

	citizen := w.token(t, "12345678", policies.RoleCitizen)
	ccred, ccert := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
	if code, m := w.csc(t, "/api/v1/credentials/"+ccred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	sum := sha256.Sum256([]byte("RSA contract"))
	h := base64.StdEncoding.EncodeToString(sum[:])
	for _, algo := range []string{"1.2.840.113549.1.1.11", "1.2.840.113549.1.1.10"} {
		_, m := w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": ccred, "numSignatures": 1,
			"hashes": []string{h}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": testPIN})
		code, m := w.csc(t, "/csc/v2/signatures/signHash", citizen, map[string]any{"credentialID": ccred, "SAD": m["SAD"], "hashes": []string{h},
			"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": algo})
		sigs, _ := m["signatures"].([]any)
		if code != 200 || len(sigs) != 1 {
			t.Fatalf("signHash %s: %d %v", algo, code, m)
		}
		sig, _ := base64.StdEncoding.DecodeString(sigs[0].(string))
		pub := ccert.PublicKey.(*rsa.PublicKey)
		var err error
		if algo == "1.2.840.113549.1.1.10" {
			err = rsa.VerifyPSS(pub, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
		}
		if err != nil {
			t.Fatalf("signHash %s: signature does not verify: %v", algo, err)
		}
	}
	// An ECDSA signAlgo for an RSA key is refused.
	_, m := w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": ccred, "numSignatures": 1,
		"hashes": []string{h}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": testPIN})
	if code, m := w.csc(t, "/csc/v2/signatures/signHash", citizen, map[string]any{"credentialID": ccred, "SAD": m["SAD"], "hashes": []string{h},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}); code != 400 {
		t.Fatalf("ECDSA signAlgo on an RSA key: %d %v", code, m)
	}
	w.verifyAudit(t)
}

// opensslDN is the certificate's (base64 DER) subject or issuer as openssl
// prints it in RFC 2253/4514 form, serialNumber named SERIALNUMBER as Go
// and CSC clients name it.
func opensslDN(t *testing.T, certB64, field string) string {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "leaf.der")
	if err := os.WriteFile(path, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Tool(t, "openssl"), "x509", "-inform", "DER", "-in", path, "-noout", "-"+field, "-nameopt", "RFC2253,-esc_msb").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 -%s: %v\n%s", field, err, out)
	}
	dn := strings.TrimPrefix(strings.TrimSpace(string(out)), field+"=")
	return strings.ReplaceAll(dn, "serialNumber=", "SERIALNUMBER=")
}
