package signing_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/api/apitest"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/verify/report"
)

// TestJAdESSeal: POST /api/v1/seal/jades seals a JSON document: B-B and B-T
// (etsiU time-stamp from this TSA) in the JSON serialization, compact,
// detached; the verifier gives the same verdict, level and identity as for
// a PAdES seal; a changed payload fails; bad input is refused, audited.
func TestJAdESSeal(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	cred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	doc := []byte(`{"type":"birth-certificate","child":{"ar":"عائشة","en":"Aisha"},"born":"2026-05-14","registry":"Muscat"}`)
	seal := func(query, ctype string, body []byte) (int, http.Header, []byte) {
		return w.send(t, "/api/v1/seal/jades?credential="+cred+"&"+query, agency, ctype, body, nil)
	}
	v := w.verifier()
	api, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query, ctype, level string
		detached            bool
	}{
		{"level=B-B", "application/jose+json", "B-B", false},
		{"level=B-T", "application/jose+json", "B-T", false},
		{"level=B-B&format=compact", "application/jose", "B-B", false},
		{"level=B-T&detached=1", "application/jose+json", "B-T", true},
	} {
		code, hdr, jws := seal(c.query, "application/json", doc)
		if code != 200 || hdr.Get("Content-Type") != c.ctype || len(hdr.Get(signing.DigestHeader)) != 64 {
			t.Fatalf("%s: %d %s %.300s", c.query, code, hdr.Get("Content-Type"), jws)
		}
		// The JSON serialization is what the OpenAPI document describes, every member.
		if err := api.CheckDescribed("POST", "/api/v1/seal/jades", 200, c.ctype, jws); c.ctype == "application/jose+json" && err != nil {
			t.Errorf("%s: the answer does not match the OpenAPI document: %v\n%s", c.query, err, jws)
		}
		var payload []byte
		if c.detached {
			payload = doc
		}
		rep, err := v.VerifyJAdES(t.Context(), jws, payload)
		if err != nil {
			t.Fatal(err)
		}
		if js, _ := json.Marshal(rep); api.CheckDescribed("POST", "/api/v1/verify", 200, "application/json", js) != nil {
			t.Errorf("%s: the JAdES report does not match the OpenAPI document: %v", c.query, api.CheckDescribed("POST", "/api/v1/verify", 200, "application/json", js))
		}
		s := rep.Signatures[0]
		if rep.Indication != report.TotalPassed || s.Level != c.level || s.Signer == nil || s.Signer.OrganizationIdentifier != "NTROM-1234567" ||
			len(s.Chain) != 3 || (c.level == "B-T" && (!s.Timestamps[0].Intact || s.Timestamps[0].Time.IsZero() || s.Timestamps[0].TSA == "")) {
			js, _ := json.MarshalIndent(rep, "", " ")
			t.Fatalf("%s: %s", c.query, js)
		}
		if c.ctype == "application/jose+json" && !c.detached {
			var m map[string]any
			_ = json.Unmarshal(jws, &m)
			m["payload"] = strings.TrimRight(m["payload"].(string), "Q") + "R"
			changed, _ := json.Marshal(m)
			if rep, _ := v.VerifyJAdES(t.Context(), changed, nil); rep.Indication != report.TotalFailed {
				t.Fatalf("%s: a changed payload is %s", c.query, rep.Indication)
			}
		}
	}
	refusedBefore := len(w.records(t, signing.ActionSeal, "refused", "NTROM-1234567"))
	for _, c := range []struct {
		query, ctype string
		body         []byte
		status       int
		text         string
	}{
		{"level=B-B", "application/json", []byte(`{"not": json`), 400, "not JSON"},
		{"level=B-B", "application/json", append(append([]byte(`{"x":"`), make([]byte, 9<<20)...), '"', '}'), 413, "exceeds"},
		{"level=B-B", "text/plain", doc, 415, "application/json"},
		{"level=B-LT", "application/json", doc, 400, "B-B or B-T"},
		{"level=B-T&format=compact", "application/json", doc, 400, "compact serialization"},
		{"level=B-B&format=xml", "application/json", doc, 400, "format must be"},
		{"level=B-B&alg=RS256", "application/json", doc, 400, "not RS256"},
	} {
		code, _, body := seal(c.query, c.ctype, c.body)
		wantStatus(t, c.query+" "+c.ctype, code, body, c.status, c.text)
	}
	if n := len(w.records(t, signing.ActionSeal, "refused", "NTROM-1234567")) - refusedBefore; n != 7 {
		t.Fatalf("%d refusals audited, want 7", n)
	}
	code, _, _ := w.send(t, "/api/v1/seal/jades?level=B-B&credential="+cred, w.token(t, "12345678", policies.RoleCitizen), "application/json", doc, nil)
	if code != http.StatusForbidden {
		t.Fatalf("a citizen seals: %d", code)
	}
	w.verifyAudit(t)
}
