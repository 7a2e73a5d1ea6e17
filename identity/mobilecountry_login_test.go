package identity

import (
	"net/http"
	"testing"
	"time"
)

// A mobile ID is stored by the bare number: the holder of IDCAE-<n> may
// have one as well as the OM citizen <n>. In an OM deployment the foreign
// one neither shadows the citizen's own (the newest enrolment), nor logs
// anyone in, nor has its PIN tried.
func TestMobileLoginSkipsOtherCountry(t *testing.T) {
	foreignOf := func(e *env) *RemoteCredential {
		cert, key := e.pki.citizenOf(t, "IDCAE-"+testCivil, time.Now().Add(time.Hour))
		e.status.profiles[cert.SerialNumber.String()] = ProfileCitizenAuth
		e.status.onToken[cert.SerialNumber.String()] = true
		e.dir.keys["cred-ae"], e.pins.pins["cred-ae"] = key, "9999"
		return &RemoteCredential{ID: "cred-ae", Certificate: cert}
	}
	om := func(c *Config) { c.Country = "OM" }
	t.Run("newest enrolment of another country", func(t *testing.T) {
		e := newEnvWith(t, false, om)
		own := e.dir.creds[testCivil]
		e.dir.creds[testCivil] = foreignOf(e)
		e.dir.older = map[string][]*RemoteCredential{testCivil: {own}}
		s, k, c := e.startMobile(e.authQuery(), testCivil)
		if st := e.approve(s, c, testPIN); st != http.StatusOK {
			t.Fatalf("the OM citizen's approval with their own PIN: %d", st)
		}
		if q, _ := e.complete(s, k); q.Get("code") == "" {
			t.Fatalf("browser: %v", q)
		}
		if e.pins.fails["cred-ae"] != 0 {
			t.Fatal("the foreign mobile ID's PIN was tried")
		}
	})
	t.Run("only another country's", func(t *testing.T) {
		e := newEnvWith(t, false, om)
		e.dir.creds[testCivil] = foreignOf(e)
		s, k, c := e.startMobile(e.authQuery(), testCivil)
		if st := e.approve(s, c, "0000"); st != http.StatusForbidden {
			t.Fatalf("approve: %d", st)
		}
		if e.pins.fails["cred-ae"] != 0 {
			t.Fatal("the foreign mobile ID's PIN was tried for the OM citizen")
		}
		if q, _ := e.complete(s, k); q.Get("error") != "access_denied" || len(e.store.grants) != 0 {
			t.Fatalf("browser: %v", q)
		}
	})
}
