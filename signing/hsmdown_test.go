package signing_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// While the token cannot be used for now (hsm marks its error as an
// outage) a seal is answered 503 with a Retry-After and the CSC signHash
// temporarily_unavailable (503, Retry-After), not 500: the client retries.
// Once the token is back the same requests succeed.
func TestTokenUnavailableIs503(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	citizen := w.token(t, "12345678", policies.RoleCitizen)
	seal, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	ccred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
	if code, m := w.csc(t, "/api/v1/credentials/"+ccred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	sum := sha256.Sum256([]byte("contract"))
	h := base64.StdEncoding.EncodeToString(sum[:])
	for _, down := range []bool{true, false} {
		w.keysDown.Store(down)
		wantSeal, wantHash := http.StatusOK, http.StatusOK
		if down {
			wantSeal, wantHash = http.StatusServiceUnavailable, http.StatusServiceUnavailable
		}
		code, hdr, body := w.send(t, "/api/v1/seal?level=B-B&credential="+seal, agency, "application/pdf", samplePDF(t, 4096), nil)
		if code != wantSeal {
			t.Fatalf("token down %v: seal answered %d, want %d: %.300s", down, code, wantSeal, body)
		}
		if down && (hdr.Get("Retry-After") != problem.RetryAfterSeconds || !bytes.Contains(body, []byte(problem.UnavailableDetail))) {
			t.Fatalf("seal with the token down: Retry-After %q, body %.300s", hdr.Get("Retry-After"), body)
		}
		_, m := w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": ccred, "numSignatures": 1,
			"hashes": []string{h}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": testPIN})
		raw := map[string]any{"credentialID": ccred, "SAD": m["SAD"], "hashes": []string{h},
			"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}
		req, _ := json.Marshal(raw)
		code, hdr, body = w.send(t, "/csc/v2/signatures/signHash", citizen, "application/json", req, nil)
		if code != wantHash {
			t.Fatalf("token down %v: signHash answered %d %s, want %d", down, code, body, wantHash)
		}
		if down && (hdr.Get("Retry-After") != problem.RetryAfterSeconds || !bytes.Contains(body, []byte(`"temporarily_unavailable"`))) {
			t.Fatalf("signHash with the token down: Retry-After %q, body %s", hdr.Get("Retry-After"), body)
		}
	}
	w.verifyAudit(t)
}
