package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/signing"
)

// A client certificate from a CA an mTLS rule trusts, whose serialNumber
// is a national identity number of another country (IDCAE-<n>), is no
// citizen <n> of this OM deployment: each citizen action on <n>'s
// credential or certificate is refused with the protocol's 403, audited,
// and changes nothing. The OM card of <n> still acts as today. (The CA
// issues the AE card because ca.profiles.countries lists AE.)
func TestForeignCivilNumberIsNoCitizen(t *testing.T) {
	f := newAZFixture(t, false, allowForeignCitizens)
	credA := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
	f.setPIN(t, azCitizenA, credA)
	_, serialA := f.clientCert(t, "citizen-auth", azCitizen(azCitizenA))
	foreignSubject := azCitizen(azCitizenA)
	foreignSubject["country"] = "AE"
	foreignCard, _ := f.clientCert(t, "citizen-auth", foreignSubject)
	omCard, _ := f.clientCert(t, "citizen-auth", azCitizen(azCitizenA))
	foreign := azCaller{name: "IDCAE-" + azCitizenA, cert: foreignCard}

	pdf := samplePDF(t, 4<<10)
	authz, _ := json.Marshal(map[string]any{"credentialID": credA, "numSignatures": 1,
		"hashes": []string{"8Ue7mSnbp9gZrsXjJQvuQ2hzfP2mHrYQ2ABSXNhjDcc="}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": azPIN})
	before := f.snapshot(t)
	for _, c := range []struct {
		name, method, path, ctype string
		body                      []byte
		hdr                       map[string]string
		problem                   bool // an RFC 9457 body, else a CSC error body
	}{
		{"sign with citizen A's credential", http.MethodPost, "/api/v1/sign?level=B-B&credential=" + credA, "application/pdf", pdf,
			map[string]string{signing.PINHeader: azPIN}, true},
		{"revoke citizen A's certificate", http.MethodPost, "/api/v1/certificates/" + serialA + "/revoke", "application/json",
			[]byte(`{"reason":"keyCompromise"}`), nil, true},
		{"whoami", http.MethodGet, "/api/v1/whoami", "", nil, nil, true},
		{"read citizen A's activity", http.MethodGet, "/api/v1/me/activity", "", nil, nil, true},
		{"authorise citizen A's credential (CSC)", http.MethodPost, "/csc/v2/credentials/authorize", "application/json", authz, nil, false},
	} {
		head := f.auditHead(t)
		st, body := f.do(t, foreign, c.method, c.path, c.ctype, c.body, c.hdr)
		if st != http.StatusForbidden {
			t.Errorf("%s: %d %.300s, want 403", c.name, st, body)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("%s: body %.200s: %v", c.name, body, err)
		} else if _, ok := m["status"]; c.problem && !ok {
			t.Errorf("%s: not a problem body: %s", c.name, body)
		} else if _, ok := m["error"]; !c.problem && !ok {
			t.Errorf("%s: not a CSC error body: %s", c.name, body)
		}
		recs, _ := f.auditSince(t, head)
		if len(recs) != 1 || recs[0].actor != "IDCAE-"+azCitizenA || recs[0].outcome != "refused" ||
			recs[0].details["reason"] != "national identity number of another country" {
			t.Errorf("%s: audit records %+v, want one refusal of IDCAE-%s", c.name, recs, azCitizenA)
		}
	}
	if after := f.snapshot(t); after != before {
		t.Fatal("a refused foreign card changed the store")
	}

	// The OM card of the same number is citizen A, as before.
	st, body := f.do(t, azCaller{name: "IDCOM-" + azCitizenA, cert: omCard}, http.MethodGet, "/api/v1/me/activity", "", nil, nil)
	if st != 200 {
		t.Fatalf("activity of citizen A's own card: %d %.300s", st, body)
	}
}
