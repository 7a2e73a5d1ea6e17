package signing_test

// Sole control (EN 419 241-1 SCAL2 through the CSC API v2): the attacks a
// signing application, another citizen or a replayed request can try on a
// citizen's key, each of which must sign nothing the citizen did not
// authorise and leave its record in the audit log.

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

const (
	oidSHA256 = "2.16.840.1.101.3.4.2.1"
	oidSHA384 = "2.16.840.1.101.3.4.2.2"
	oidSHA512 = "2.16.840.1.101.3.4.2.3"
	ecdsaSHA2 = "1.2.840.10045.4.3.2"
	ecdsaSHA3 = "1.2.840.10045.4.3.3"
)

// cscParty is a citizen of the sole-control tests: token and credential.
type cscParty struct {
	civil, token, cred string
	pub                *ecdsa.PublicKey
}

// TestSoleControl runs the attacks on SQLite and PostgreSQL.
func TestSoleControl(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			var skew atomic.Int64
			w := newWorld(t, d, worldOptions{now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
			runSoleControl(t, w, &skew)
		})
	}
}

func runSoleControl(t *testing.T, w *world, skew *atomic.Int64) {
	party := func(civil string) cscParty {
		subject := citizenSubject()
		subject["civilNumber"] = civil
		cred, cert := w.credential(t, policies.ProfileCitizenSigning, subject)
		p := cscParty{civil: civil, token: w.token(t, civil, policies.RoleCitizen), cred: cred, pub: cert.PublicKey.(*ecdsa.PublicKey)}
		if code, m := w.csc(t, "/api/v1/credentials/"+cred+"/pin", p.token, signing.PINRequest{PIN: testPIN}); code != 201 {
			t.Fatalf("set PIN: %d %v", code, m)
		}
		return p
	}
	a, b := party("12345678"), party("87654321")
	b64 := base64.StdEncoding.EncodeToString
	digest := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	h1, h2, h3 := digest("contract 1"), digest("contract 2"), digest("contract 3")
	list := func(hs ...[]byte) []string {
		out := []string{}
		for _, h := range hs {
			out = append(out, b64(h))
		}
		return out
	}
	authorize := func(p cscParty, oid string, hs ...[]byte) string {
		t.Helper()
		code, m := w.csc(t, "/csc/v2/credentials/authorize", p.token, map[string]any{"credentialID": p.cred, "numSignatures": len(hs),
			"hashes": list(hs...), "hashAlgorithmOID": oid, "authData": []map[string]string{{"id": "PIN", "value": testPIN}}})
		sad, _ := m["SAD"].(string)
		if code != 200 || sad == "" {
			t.Fatalf("authorize: %d %v", code, m)
		}
		return sad
	}
	type hashReq struct {
		token, cred, sad, oid, algo string
		hashes                      []string
	}
	signHash := func(r hashReq) (int, map[string]any) {
		body := map[string]any{"credentialID": r.cred, "hashes": r.hashes, "signAlgo": cmpOr(r.algo, ecdsaSHA2)}
		if r.oid != "-" {
			body["hashAlgorithmOID"] = cmpOr(r.oid, oidSHA256)
		}
		if r.sad != "" {
			body["SAD"] = r.sad
		}
		return w.csc(t, "/csc/v2/signatures/signHash", r.token, body)
	}
	refusedBefore := len(w.records(t, signing.ActionSignHash, "refused", ""))
	refusals := 0
	refuse := func(what string, r hashReq, text string) {
		t.Helper()
		code, m := signHash(r)
		wantCSC(t, what, code, m, 400, "invalid_request", text)
		refusals++
	}
	verify := func(p cscParty, m map[string]any, hs ...[]byte) {
		t.Helper()
		sigs, _ := m["signatures"].([]any)
		if len(sigs) != len(hs) {
			t.Fatalf("%d signatures for %d hashes: %v", len(sigs), len(hs), m)
		}
		for i, h := range hs {
			sig, _ := base64.StdEncoding.DecodeString(fmt.Sprint(sigs[i]))
			if !ecdsa.VerifyASN1(p.pub, h, sig) {
				t.Fatalf("signature %d is not over hashes[%d]", i, i)
			}
		}
	}

	// The SAD of [h1, h2]: no duplicate, no other hash, no more of them,
	// no other algorithm, no wrong length, no other citizen or credential.
	// Malformed requests and other callers do not spend it.
	sad := authorize(a, oidSHA256, h1, h2)
	sha384 := sha512.Sum384([]byte("contract 1"))
	for _, c := range []struct {
		what string
		r    hashReq
		text string
	}{
		{"another hashAlgorithmOID", hashReq{token: a.token, cred: a.cred, sad: sad, oid: oidSHA384, hashes: list(h1)}, "not a hash of the stated algorithm"},
		{"a hash of the wrong length", hashReq{token: a.token, cred: a.cred, sad: sad, hashes: []string{b64(h1[:31])}}, "not a hash of the stated algorithm"},
		{"a longer hash", hashReq{token: a.token, cred: a.cred, sad: sad, oid: "-", hashes: []string{b64(append(h1, 0))}}, "not a hash of the stated algorithm"},
		{"mixed hash lengths", hashReq{token: a.token, cred: a.cred, sad: sad, oid: "-", hashes: []string{b64(h1), b64(sha384[:])}}, "not a hash of the stated algorithm"},
		{"a signAlgo of another hash", hashReq{token: a.token, cred: a.cred, sad: sad, algo: ecdsaSHA3, hashes: list(h1)}, "signAlgo"},
		{"an RSA signAlgo", hashReq{token: a.token, cred: a.cred, sad: sad, algo: "1.2.840.113549.1.1.11", hashes: list(h1)}, "signAlgo"},
		{"an unknown signAlgo", hashReq{token: a.token, cred: a.cred, sad: sad, algo: "1.2.3", hashes: list(h1)}, "signAlgo"},
		{"no hash", hashReq{token: a.token, cred: a.cred, sad: sad, hashes: []string{}}, "hashes"},
		{"the other citizen", hashReq{token: b.token, cred: b.cred, sad: sad, hashes: list(h1)}, "Invalid parameter SAD"},
		{"the other citizen's credential", hashReq{token: a.token, cred: b.cred, sad: sad, hashes: list(h1)}, "Invalid parameter credentialID"},
		{"the credential by the other citizen", hashReq{token: b.token, cred: a.cred, sad: sad, hashes: list(h1)}, "Invalid parameter credentialID"},
	} {
		refuse(c.what, c.r, c.text)
	}
	// Still unspent: the authorised hashes in another order.
	code, m := signHash(hashReq{token: a.token, cred: a.cred, sad: sad, hashes: list(h2, h1)})
	if code != 200 {
		t.Fatalf("signHash of the authorised hashes after refusals: %d %v", code, m)
	}
	verify(a, m, h2, h1)
	refuse("the SAD replayed", hashReq{token: a.token, cred: a.cred, sad: sad, hashes: list(h2, h1)}, "Invalid parameter SAD")
	refuse("the SAD replayed by the other citizen", hashReq{token: b.token, cred: b.cred, sad: sad, hashes: list(h1)}, "Invalid parameter SAD")

	// Once the key is activated, the hashes must be the authorised ones,
	// each once: a refusal spends the SAD (the citizen authorises again).
	for _, c := range []struct {
		what   string
		hashes []string
		text   string
	}{
		{"a duplicate", list(h1, h1), "Hash is not authorized by the SAD"},
		{"one more hash", list(h1, h2, h1), "Hash is not authorized by the SAD"},
		{"another hash", list(h1, h3), "Hash is not authorized by the SAD"},
	} {
		s := authorize(a, oidSHA256, h1, h2)
		refuse(c.what, hashReq{token: a.token, cred: a.cred, sad: s, hashes: c.hashes}, c.text)
		refuse(c.what+", then the authorised hashes", hashReq{token: a.token, cred: a.cred, sad: s, hashes: list(h1, h2)}, "Invalid parameter SAD")
	}
	s := authorize(a, oidSHA256, h1, h2)
	refuse("a hash of another algorithm", hashReq{token: a.token, cred: a.cred, sad: s, oid: oidSHA384, algo: ecdsaSHA3, hashes: list(sha384[:])},
		"Hash is not authorized by the SAD")
	// A duplicate the citizen authorised twice is signed twice.
	code, m = signHash(hashReq{token: a.token, cred: a.cred, sad: authorize(a, oidSHA256, h3, h3), hashes: list(h3, h3)})
	if code != 200 {
		t.Fatalf("signHash of a hash authorised twice: %d %v", code, m)
	}
	verify(a, m, h3, h3)
	// A subset is signed, and spends the SAD: it is usable once.
	s = authorize(a, oidSHA256, h1, h2)
	if code, m = signHash(hashReq{token: a.token, cred: a.cred, sad: s, hashes: list(h2)}); code != 200 {
		t.Fatalf("signHash of a subset: %d %v", code, m)
	}
	verify(a, m, h2)
	refuse("the rest after a subset", hashReq{token: a.token, cred: a.cred, sad: s, hashes: list(h1)}, "Invalid parameter SAD")
	// SHA-512 hashes authorised are signed with SHA-512 only.
	h512 := sha512.Sum512([]byte("contract 512"))
	s = authorize(a, oidSHA512, h512[:])
	if code, m = signHash(hashReq{token: a.token, cred: a.cred, sad: s, oid: oidSHA512, algo: "1.2.840.10045.2.1", hashes: list(h512[:])}); code != 200 {
		t.Fatalf("signHash of a SHA-512 hash: %d %v", code, m)
	}

	// Expiry: a SAD older than its lifetime signs nothing.
	s = authorize(a, oidSHA256, h1)
	skew.Store(int64(w.svc.Config().SADLifetime + time.Second))
	refuse("an expired SAD", hashReq{token: a.token, cred: a.cred, sad: s, hashes: list(h1)}, "Invalid parameter SAD")
	skew.Store(0)

	// Parallel requests with one SAD: only one signs.
	race := func(what string, reqs []hashReq) {
		t.Helper()
		before := len(w.records(t, signing.ActionSignHash, "success", a.civil))
		var wg sync.WaitGroup
		codes := make([]int, len(reqs))
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = signHash(r)
			}()
		}
		wg.Wait()
		ok := 0
		for _, c := range codes {
			switch c {
			case 200:
				ok++
			case 400:
				refusals++
			default:
				t.Fatalf("%s: status %d (%v)", what, c, codes)
			}
		}
		if after := len(w.records(t, signing.ActionSignHash, "success", a.civil)); ok != 1 || after != before+1 {
			t.Fatalf("%s: %d signed (%d records), want 1: %v", what, ok, after-before, codes)
		}
	}
	s = authorize(a, oidSHA256, h1)
	var same []hashReq
	for range 8 {
		same = append(same, hashReq{token: a.token, cred: a.cred, sad: s, hashes: list(h1)})
	}
	race("8 parallel signHash with one SAD", same)
	s = authorize(a, oidSHA256, h1, h2)
	race("each authorised hash in a parallel signHash", []hashReq{
		{token: a.token, cred: a.cred, sad: s, hashes: list(h1)}, {token: a.token, cred: a.cred, sad: s, hashes: list(h2)},
		{token: a.token, cred: a.cred, sad: s, hashes: list(h2, h1)}, {token: a.token, cred: a.cred, sad: s, hashes: list(h1)}})
	ct := w.credentialToken(t, a.civil, a.cred, h1, h2)
	race("parallel signHash with one credential token", []hashReq{
		{token: ct, cred: a.cred, hashes: list(h1)}, {token: ct, cred: a.cred, hashes: list(h2)}, {token: ct, cred: a.cred, hashes: list(h1, h2)}})

	// A service token signs nothing without a SAD.
	svc := w.delegated(t, a.civil, auth.Grant{ClientID: "oidc-app", Scope: auth.ScopeService})
	refuse("a service token without a SAD", hashReq{token: svc, cred: a.cred, hashes: list(h1)}, "Missing (or invalid type) string parameter SAD")
	code, _, body := w.send(t, fmt.Sprintf("/api/v1/sign/complete?level=B-B&credential=%s&signingTime=%s&placeholder=8192", a.cred,
		time.Now().UTC().Format(time.RFC3339)), svc, "application/pdf", samplePDF(t, 4<<10), nil)
	wantStatus(t, "sign/complete with a service token and no SAD", code, body, http.StatusUnauthorized, signing.SADHeader)

	// Every refusal has its record (signHash refusals with their reason).
	if got := len(w.records(t, signing.ActionSignHash, "refused", "")) - refusedBefore; got != refusals {
		t.Fatalf("%d refused signHash records, want %d", got, refusals)
	}
	for _, r := range w.records(t, signing.ActionSignHash, "refused", "") {
		if !strings.Contains(string(r.Details), `"reason":"`) || !strings.Contains(string(r.Details), `"caller":{`) {
			t.Fatalf("a signHash refusal without its reason or caller: %s", r.Details)
		}
	}
	w.verifyAudit(t)
}

// cmpOr is v, or def when v is empty.
func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// TestAuthorizeAttacks runs, on SQLite and PostgreSQL, what a non-owner
// or a PIN guesser tries on credentials/authorize and the PIN endpoints:
// no answer tells whether someone else's credential exists, and parallel
// wrong PINs are each counted, so that no more tries than the limit are
// checked and the right PIN is locked out afterwards.
func TestAuthorizeAttacks(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			runAuthorizeAttacks(t, newWorld(t, d, worldOptions{}))
		})
	}
}

func runAuthorizeAttacks(t *testing.T, w *world) {
	owner, other := w.token(t, "12345678", policies.RoleCitizen), w.token(t, "87654321", policies.RoleCitizen)
	cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
	revoked, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
	seal, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	for _, id := range []string{cred, revoked} {
		if code, m := w.csc(t, "/api/v1/credentials/"+id+"/pin", owner, signing.PINRequest{PIN: testPIN}); code != 201 {
			t.Fatalf("set PIN: %d %v", code, m)
		}
	}
	// A registered credential whose key is no longer on the token (a
	// token restored from an older backup, a key destroyed).
	_, lostCert := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
	if _, err := w.db.SigningCredentials().RegisterCredential(t.Context(), signing.CredentialRecord{ID: "cred-lost", OwnerKind: signing.OwnerCitizen,
		OwnerID: "12345678", Profile: policies.ProfileCitizenSigning, KeyLabel: "cred-lost", CertSerial: "01", ChainDER: lostCert.Raw,
		NotAfter: lostCert.NotAfter}); err != nil {
		t.Fatal(err)
	}
	// The seal credential is in use by its agency (registered).
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	if code, _, body := w.send(t, "/api/v1/seal?level=B-B&credential="+seal, agency, "application/pdf", samplePDF(t, 4<<10), nil); code != 200 {
		t.Fatalf("seal: %d %.300s", code, body)
	}
	if _, err := w.db.Revocations().Revoke(t.Context(), w.serials[revoked], 1, "officer-7", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a contract"))
	h := base64.StdEncoding.EncodeToString(sum[:])
	authorize := func(token, id, pinValue string) (int, map[string]any) {
		return w.csc(t, "/csc/v2/credentials/authorize", token, map[string]any{"credentialID": id, "numSignatures": 1,
			"hashes": []string{h}, "hashAlgorithmOID": oidSHA256, "authData": []map[string]string{{"id": "PIN", "value": pinValue}}})
	}

	// No oracle: another citizen's credential (usable, revoked), a seal
	// credential and an unknown one are told apart by nothing.
	// (A wrong PIN: were it checked, it would count towards the owner's
	// lock, which the parallel tries below would show.)
	code, want := authorize(other, "cred-0000000000000000", "000001")
	wantCSC(t, "authorize an unknown credential", code, want, 400, "invalid_request", "Invalid parameter credentialID")
	for _, id := range []string{cred, revoked, seal, "cred-lost"} {
		if code, m := authorize(other, id, "000001"); code != 400 || fmt.Sprint(m) != fmt.Sprint(want) {
			t.Fatalf("authorize %s by a non-owner: %d %v; an unknown credential: %v", id, code, m, want)
		}
		if code, m := w.csc(t, "/csc/v2/credentials/info", other, map[string]any{"credentialID": id}); code != 400 || fmt.Sprint(m) != fmt.Sprint(want) {
			t.Fatalf("info %s by a non-owner: %d %v; an unknown credential: %v", id, code, m, want)
		}
	}
	// A revocation takes effect within a second (a "not revoked" answer
	// is reused that long).
	var m map[string]any
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, m = authorize(owner, revoked, testPIN); code != 200 || time.Now().After(deadline) {
			break
		}
	}
	wantCSC(t, "authorize the owner's revoked credential", code, m, 400, "invalid_request", "not valid")
	for _, op := range []string{"change", "activate"} {
		body := map[string]string{"old": testPIN, "new": "583920", "activationCode": "0000-0000-0000", "pin": "583920"}
		wantCode, wantBody := w.csc(t, "/api/v1/credentials/cred-0000000000000000/pin/"+op, other, body)
		for _, id := range []string{cred, seal, "cred-lost"} {
			code, m := w.csc(t, "/api/v1/credentials/"+id+"/pin/"+op, other, body)
			if code != wantCode || m["detail"] != wantBody["detail"] {
				t.Fatalf("pin/%s of %s by a non-owner: %d %v; an unknown credential: %d %v", op, id, code, m, wantCode, wantBody)
			}
		}
	}

	// Parallel wrong PINs: each is counted; the fifth locks.
	const tries = 12
	var wg sync.WaitGroup
	codes := make([]string, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, m := authorize(owner, cred, fmt.Sprintf("9%05d", i))
			codes[i] = fmt.Sprint(m["error"], ": ", m["error_description"])
		}()
	}
	wg.Wait()
	wrong, locked := 0, 0
	for _, c := range codes {
		switch {
		case strings.HasPrefix(c, "invalid_authentication_data: "):
			wrong++
		case strings.Contains(c, "Credential locked"):
			locked++
		default:
			t.Fatalf("a parallel wrong PIN: %s", c)
		}
	}
	if wrong != 4 || locked != tries-4 {
		t.Fatalf("parallel wrong PINs: %d told wrong, %d locked, want 4 and %d: %v", wrong, locked, tries-4, codes)
	}
	code, m = authorize(owner, cred, testPIN)
	wantCSC(t, "the right PIN after parallel wrong ones", code, m, 400, "invalid_request", "Credential locked")
	if n := len(w.records(t, signing.ActionPINLocked, "success", "")); n != 1 {
		t.Fatalf("%d lock records, want 1", n)
	}
	if n := len(w.records(t, signing.ActionAuthorize, "refused", "12345678")); n < tries+2 {
		t.Fatalf("%d refused authorize records of the owner, want at least %d", n, tries+2)
	}
	w.verifyAudit(t)
}

// TestUnrecordedAuthorisationIsAFailure: while the audit log cannot be
// written, credentials/authorize hands out no SAD (for the right PIN or a
// wrong one) and signHash returns no signature, each answered
// server_error; once the log is back the SAD is spent (it was consumed
// before its record failed) and a new one signs.
func TestUnrecordedAuthorisationIsAFailure(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	citizen := w.token(t, "12345678", policies.RoleCitizen)
	cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
	if code, m := w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	sum := sha256.Sum256([]byte("a contract"))
	h := []string{base64.StdEncoding.EncodeToString(sum[:])}
	authorize := func(p string) (int, map[string]any) {
		return w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": cred, "numSignatures": 1,
			"hashes": h, "hashAlgorithmOID": oidSHA256, "authData": []map[string]string{{"id": "PIN", "value": p}}})
	}
	signHash := func(sad string) (int, map[string]any) {
		return w.csc(t, "/csc/v2/signatures/signHash", citizen, map[string]any{"credentialID": cred, "SAD": sad, "hashes": h,
			"hashAlgorithmOID": oidSHA256, "signAlgo": ecdsaSHA2})
	}
	_, m := authorize(testPIN)
	sad, _ := m["SAD"].(string)
	w.auditGate.Down.Store(true)
	for _, p := range []string{testPIN, "000001"} {
		if code, m := authorize(p); code != 500 || m["error"] != "server_error" || m["SAD"] != nil {
			t.Fatalf("authorize (PIN %s) with the audit log down: %d %v", p, code, m)
		}
	}
	if code, m := signHash(sad); code != 500 || m["error"] != "server_error" || m["signatures"] != nil {
		t.Fatalf("signHash with the audit log down: %d %v", code, m)
	}
	w.auditGate.Down.Store(false)
	code, m := signHash(sad)
	wantCSC(t, "the SAD of a signHash that failed", code, m, 400, "invalid_request", "Invalid parameter SAD")
	_, m = authorize(testPIN)
	if code, m := signHash(fmt.Sprint(m["SAD"])); code != 200 {
		t.Fatalf("signHash once the log is back: %d %v", code, m)
	}
	w.verifyAudit(t)
}
