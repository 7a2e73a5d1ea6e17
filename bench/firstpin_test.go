package bench

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/ca"
)

// TestBenchFirstPIN: `thiqa bench sign` against a server with
// signing.pinPolicy.firstPINActivation sets the citizen's first PIN with
// the activation code its issuance answered (the server refuses the bearer
// token alone, 409); against one without, with the token alone, as before.
func TestBenchFirstPIN(t *testing.T) {
	var got []string
	firstPINOn := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		got = append(got, r.URL.Path+" "+body["activationCode"]+" "+body["pin"]+" "+r.Header.Get("Authorization"))
		if r.URL.Path == "/api/v1/credentials/cred-1/pin" && firstPINOn {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"status":409,"detail":"this service sets the first signing PIN with an activation code only"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"credentialID":"cred-1","pin":"set"}`))
	}))
	defer srv.Close()
	b := &benchSetup{url: srv.URL, client: srv.Client()}
	for _, c := range []struct {
		on   bool
		code string
		want string
	}{
		{true, "K7QM-2XWD-9HPA", "/api/v1/credentials/cred-1/pin/activate K7QM-2XWD-9HPA pin-2468 Bearer tok"},
		{false, "", "/api/v1/credentials/cred-1/pin  pin-2468 Bearer tok"},
	} {
		firstPINOn, got = c.on, nil
		if err := b.firstPIN(t.Context(), &ca.IssueResponse{CredentialID: "cred-1", ActivationCode: c.code}, "tok", "pin-2468"); err != nil {
			t.Fatalf("firstPINActivation %v: %v (calls %q)", c.on, err, got)
		}
		if len(got) != 1 || got[0] != c.want {
			t.Fatalf("firstPINActivation %v: calls %q, want %q", c.on, got, c.want)
		}
	}
}
