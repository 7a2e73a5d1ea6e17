package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/signing"
)

// A citizen-signing credential this CA issued for IDCAE-<n> is not citizen
// <n>'s of this OM deployment: the OM citizen <n> can neither set its
// first PIN (and then sign with another person's key), nor sign with it,
// nor see it in their own credentials. (The CA issues it because
// ca.profiles.countries lists AE.)
func TestForeignSigningCredentialIsNotOwnCitizensOnSQLite(t *testing.T) {
	runForeignSigningCredential(t, false)
}

func TestForeignSigningCredentialIsNotOwnCitizensOnPostgres(t *testing.T) {
	runForeignSigningCredential(t, true)
}

func runForeignSigningCredential(t *testing.T, postgres bool) {
	f := newAZFixture(t, postgres, allowForeignCitizens)
	foreignSubject := azCitizen(azCitizenA)
	foreignSubject["country"] = "AE"
	foreignCred := f.credential(t, "citizen-signing", foreignSubject)
	ownCred := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
	citizen := azCaller{name: azCitizenA, bearer: f.token(t, azCitizenA, "citizen")}

	st, body := f.do(t, citizen, http.MethodPost, "/api/v1/credentials/"+foreignCred+"/pin", "application/json", []byte(`{"pin":"`+azPIN+`"}`), nil)
	if st < 400 {
		t.Fatalf("citizen %s set the first PIN of IDCAE-%s's credential: %d %s", azCitizenA, azCitizenA, st, body)
	}
	st, body = f.do(t, citizen, http.MethodPost, "/api/v1/sign?level=B-B&credential="+foreignCred, "application/pdf", samplePDF(t, 4<<10),
		map[string]string{signing.PINHeader: azPIN})
	if st < 400 {
		t.Fatalf("citizen %s signed with IDCAE-%s's credential: %d %.200s", azCitizenA, azCitizenA, st, body)
	}
	st, body = f.do(t, citizen, http.MethodGet, "/api/v1/credentials?owner=self", "", nil, nil)
	if st != http.StatusOK || strings.Contains(string(body), foreignCred) || !strings.Contains(string(body), ownCred) {
		t.Fatalf("own credentials of %s: %d %s", azCitizenA, st, body)
	}
	st, body = f.do(t, citizen, http.MethodPost, "/csc/v2/credentials/list", "application/json", []byte(`{}`), nil)
	if st != http.StatusOK || strings.Contains(string(body), foreignCred) || !strings.Contains(string(body), ownCred) {
		t.Fatalf("CSC credentials of %s: %d %s", azCitizenA, st, body)
	}
	// The citizen's own credential works as before.
	f.setPIN(t, azCitizenA, ownCred)
}
