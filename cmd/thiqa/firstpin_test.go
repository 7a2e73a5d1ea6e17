package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/policies"
)

// TestFirstPINActivationWired: with signing.pinPolicy.firstPINActivation in
// thiqa.yaml the server's issuance of a citizen's keyInHSM credential
// answers the first PIN's activation code and records that the first PIN
// needs one (the CA's hook and flag as cmd/thiqa wires them); the bearer
// token alone sets no first PIN; the code does. The citizen's activity
// (GET /api/v1/me/activity, as the store keeps the record) reads the code's
// record as a code for the first PIN, not as a PIN reset.
func TestFirstPINActivationWired(t *testing.T) {
	f := newAZFixture(t, false, func(y, _ string) string {
		i := strings.Index(y, "\nsigning:\n")
		j := strings.Index(y[i:], "  pinPolicy:\n")
		if i < 0 || j < 0 {
			t.Fatalf("thiqa.yaml has no signing.pinPolicy:\n%s", y)
		}
		return y[:i+j] + "  pinPolicy:\n    firstPINActivation: true\n" + y[i+j+len("  pinPolicy:\n"):]
	})
	head := f.auditHead(t)
	out := f.issue(t, ca.IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: azCitizen(azCitizenA), KeyInHSM: true})
	if len(out.ActivationCode) != 14 || out.ActivationCodeExpiresAt == nil {
		t.Fatalf("issuance answer %+v", out)
	}
	recs, _ := f.auditSince(t, head)
	said := false
	for _, r := range recs {
		said = said || (r.action == string(policies.ActionIssueCertificate) && r.details["firstPIN"] == "activationCode")
	}
	if !said {
		t.Fatalf("no issuance record says the first PIN needs an activation code: %+v", recs)
	}
	citizen := azCaller{name: "citizen", bearer: f.token(t, azCitizenA, "citizen")}
	pinPath := "/api/v1/credentials/" + out.CredentialID + "/pin"
	if st, body := f.do(t, citizen, http.MethodPost, pinPath, "application/json", []byte(`{"pin":"`+azPIN+`"}`), nil); st != http.StatusConflict {
		t.Fatalf("a first PIN with the bearer token alone: %d %s", st, body)
	}
	if st, body := f.do(t, citizen, http.MethodPost, pinPath+"/activate", "application/json",
		[]byte(`{"activationCode":"`+out.ActivationCode+`","pin":"`+azPIN+`"}`), nil); st != http.StatusOK {
		t.Fatalf("activate: %d %s", st, body)
	}
	st, body := f.do(t, citizen, http.MethodGet, "/api/v1/me/activity", "", nil, nil)
	var feed struct {
		Entries []struct {
			Action, Description, Credential string
			FirstPIN                        bool
		}
	}
	if st != http.StatusOK || json.Unmarshal(body, &feed) != nil {
		t.Fatalf("activity: %d %s", st, body)
	}
	found := false
	for _, e := range feed.Entries {
		if e.Action == "credential.pin.reset" && e.Credential == out.CredentialID {
			found = e.FirstPIN && e.Description == "Activation code issued for your first signing PIN"
		}
	}
	if !found {
		t.Fatalf("the activity does not tell the first PIN's code as such: %s", body)
	}
}
