package signing_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestSigning runs the service over SQLite and PostgreSQL: agencies seal
// (every level on SQLite, B-T on PostgreSQL), citizens sign with sole
// control (PIN, CSC authorize and signHash, two-step), every refusal is
// audited, and a revoked certificate signs nothing more.
func TestSigning(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			levels := []string{"B-T"}
			if d.Name == "sqlite" {
				levels = []string{"B-B", "B-T", "B-LT", "B-LTA"}
			}
			runSealing(t, w, levels)
			runCitizenSigning(t, w)

			// Refusals and successes, each audited.
			if n := len(w.records(t, signing.ActionPrepare, "success", "12345678")); n != 1 {
				t.Fatalf("%d prepare records, want 1", n)
			}
			// Every seal record names the digest algorithm of its document digest.
			seals := w.records(t, signing.ActionSeal, "success", "NTROM-1234567")
			if len(seals) < len(levels)+2 {
				t.Fatalf("%d seal records, want at least %d", len(seals), len(levels)+2)
			}
			for _, r := range seals {
				if !strings.Contains(string(r.Details), `"hash":"SHA-256"`) || !strings.Contains(string(r.Details), `"documentDigest":"`) {
					t.Fatalf("a seal record without its digest and hash: %s", r.Details)
				}
			}
			if n := len(w.records(t, signing.ActionSeal, "refused", "")); n < 4 {
				t.Fatalf("%d refused seal records, want at least 4", n)
			}
			if n := len(w.records(t, signing.ActionSignHash, "success", "12345678")); n != 1 {
				t.Fatalf("%d signHash records, want 1", n)
			}
			// Refusals name the caller.
			for _, r := range w.records(t, signing.ActionSeal, "refused", "NTROM-7654321") {
				if !strings.Contains(string(r.Details), `"caller":{`) || !strings.Contains(string(r.Details), `"subject":"NTROM-7654321"`) {
					t.Fatalf("a refusal that does not name the caller: %s", r.Details)
				}
			}
			if m := w.metrics(t); !strings.Contains(m, `thiqa_signing_operations_total{level="B-T",operation="seal",outcome="success"}`) ||
				!strings.Contains(m, `thiqa_signing_operations_total{level="B-B",operation="sign",outcome="refused"}`) ||
				!strings.Contains(m, `thiqa_signing_operations_total{level="raw",operation="signhash",outcome="success"} 1`) ||
				!strings.Contains(m, `thiqa_signing_duration_seconds_count{level="B-T",operation="prepare"} 1`) {
				t.Fatalf("metrics:\n%s", m)
			}

			// A revoked seal certificate seals nothing more; it takes effect
			// within a second (a "not revoked" answer is reused that long).
			agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
			if _, err := w.db.Revocations().Revoke(context.Background(), w.serials[w.sealCred], 1, "officer-7", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			var code int
			var body []byte
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+w.sealCred, agency, "application/pdf", samplePDF(t, 4096), nil)
				if code != http.StatusOK || time.Now().After(deadline) {
					break
				}
			}
			wantStatus(t, "seal with a revoked certificate", code, body, http.StatusForbidden, "revoked")
			w.verifyAudit(t)
		})
	}
}

// TestSigningWithSilentTSA: a TSA that accepts and never answers is a quick
// 504, audited as a failure and counted; nothing is signed, and B-B still
// works.
func TestSigningWithSilentTSA(t *testing.T) {
	answer := make(chan struct{}) // never, until the test ends
	silent := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-answer:
		}
	}))
	defer silent.Close()
	defer close(answer)
	w := newWorld(t, storetest.Dialects()[0], worldOptions{tsaURL: silent.URL + "/tsa", timeout: 2 * time.Second})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	cred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	start := time.Now()
	code, _, body := w.send(t, "/api/v1/seal?level=B-T&credential="+cred, agency, "application/pdf", samplePDF(t, 4096), nil)
	if code != http.StatusGatewayTimeout || time.Since(start) > 8*time.Second || bytes.HasPrefix(body, []byte("%PDF")) ||
		!strings.Contains(string(body), "did not answer in time") {
		t.Fatalf("seal with a silent TSA: %d after %s: %.200s", code, time.Since(start), body)
	}
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", samplePDF(t, 4096), nil)
	if code != http.StatusOK {
		t.Fatalf("B-B with a silent TSA: %d %.200s", code, body)
	}
	if n := len(w.records(t, signing.ActionSeal, "failure", "NTROM-1234567")); n != 1 {
		t.Fatalf("%d failed seal records, want 1", n)
	}
	if m := w.metrics(t); !strings.Contains(m, `thiqa_signing_operations_total{level="B-T",operation="seal",outcome="failure"} 1`) ||
		!strings.Contains(m, `thiqa_signing_operations_total{level="B-B",operation="seal",outcome="success"} 1`) {
		t.Fatalf("metrics:\n%s", m)
	}
	w.verifyAudit(t)
}

// certifiedNoChanges certifies pdf with DocMDP P=1 (no changes allowed)
// using a throwaway in-process key.
func certifiedNoChanges(t *testing.T, pdf []byte) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Certifier"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	out, err := signer.SignBytes(context.Background(), pdf, signer.Options{Signer: key, Chain: []*x509.Certificate{cert}, DocMDP: 1})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runSealing: an agency seals at each level over HTTP, in a batch and as
// the operator's `thiqa seal` does; refusals for another agency's
// credential and bad documents.
func runSealing(t *testing.T, w *world, levels []string) {
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	other := w.token(t, "NTROM-7654321", policies.RoleAgency)
	cred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	w.sealCred = cred
	otherSub := orgSubject()
	otherSub["organizationIdentifier"], otherSub["commonName"] = "NTROM-7654321", "Ministry of Labour Seal"
	otherCred, _ := w.credential(t, policies.ProfileOrganisationSeal, otherSub)
	pdf := samplePDF(t, 100<<10)

	for _, lv := range levels {
		code, hdr, body := w.send(t, "/api/v1/seal?level="+lv+"&credential="+cred, agency, "application/pdf", pdf, nil)
		if code != http.StatusOK || !bytes.HasPrefix(body, pdf[:len(pdf)-10]) || len(hdr.Get(signing.DigestHeader)) != 64 {
			t.Fatalf("seal %s: %d %.300s", lv, code, body)
		}
		w.checkPDF(t, "sealed-"+lv+".pdf", body, "organisation", lv)
	}
	// Another agency's credential, a citizen, nobody: refused.
	code, _, body := w.send(t, "/api/v1/seal?level=B-B&credential="+otherCred, agency, "application/pdf", pdf, nil)
	wantStatus(t, "other agency's credential", code, body, http.StatusForbidden, "not yours")
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, other, "application/pdf", pdf, nil)
	wantStatus(t, "credential of the first agency", code, body, http.StatusForbidden, "not yours")
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, w.token(t, "12345678", policies.RoleCitizen), "application/pdf", pdf, nil)
	wantStatus(t, "citizen sealing", code, body, http.StatusForbidden, "")
	code, _, _ = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, "", "application/pdf", pdf, nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("anonymous seal: %d", code)
	}
	// Bad documents.
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", []byte("hello, not a PDF"), nil)
	wantStatus(t, "not a PDF", code, body, http.StatusBadRequest, "not a PDF")
	in, enc := w.path("plain.pdf"), w.path("enc.pdf")
	_ = os.WriteFile(in, pdf, 0o600)
	if out, err := exec.Command(testenv.Tool(t, "qpdf"), "--encrypt", "user", "owner", "256", "--", in, enc).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --encrypt: %v\n%s", err, out)
	}
	encrypted, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", encrypted, nil)
	wantStatus(t, "encrypted PDF", code, body, http.StatusBadRequest, "encrypt")
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", pdf[:len(pdf)/2], nil)
	wantStatus(t, "truncated PDF", code, body, http.StatusBadRequest, "")
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", certifiedNoChanges(t, pdf), nil)
	wantStatus(t, "certified PDF (DocMDP P=1)", code, body, http.StatusConflict, "forbids")
	code, _, body = w.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "text/plain", pdf, nil)
	wantStatus(t, "wrong media type", code, body, http.StatusUnsupportedMediaType, "application/pdf")
	code, _, body = w.send(t, "/api/v1/seal?level=B-X&credential="+cred, agency, "application/pdf", pdf, nil)
	wantStatus(t, "bad level", code, body, http.StatusBadRequest, "level")

	// A batch: two PDFs and one that is not.
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	for _, d := range []struct {
		name string
		data []byte
	}{{"a.pdf", pdf}, {"b.pdf", samplePDF(t, 2048)}, {"c.txt", []byte("not a pdf")}} {
		fw, _ := mw.CreateFormFile("document", d.name)
		fw.Write(d.data)
	}
	mw.Close()
	code, _, body = w.send(t, "/api/v1/seal/batch?level=B-T&credential="+cred, agency, mw.FormDataContentType(), mb.Bytes(), nil)
	var br signing.BatchResponse
	if code != http.StatusOK || json.Unmarshal(body, &br) != nil || len(br.Results) != 3 || br.Level != "B-T" {
		t.Fatalf("batch: %d %.300s", code, body)
	}
	for i, want := range []int{200, 200, 400} {
		if br.Results[i].Status != want {
			t.Fatalf("batch result %d: %+v", i, br.Results[i])
		}
	}
	sealed, _ := base64.StdEncoding.DecodeString(br.Results[1].Document)
	w.checkPDF(t, "batch-b.pdf", sealed, "organisation", "B-T")

	// The operator's seal (`thiqa seal`): any agency's credential, named in
	// the record; refused documents write nothing.
	open := func(data []byte) func() (io.ReaderAt, int64, error) {
		return func() (io.ReaderAt, int64, error) { return bytes.NewReader(data), int64(len(data)), nil }
	}
	ctx := context.Background()
	var out bytes.Buffer
	if _, err := w.svc.OperatorSeal(ctx, "cli:operator", cred, signer.LevelBT, open(pdf), &out); err != nil {
		t.Fatalf("operator seal: %v", err)
	}
	w.checkPDF(t, "operator.pdf", out.Bytes(), "organisation", "B-T")
	if n := len(w.records(t, signing.ActionSeal, "success", "cli:operator for NTROM-1234567")); n != 1 {
		t.Fatalf("%d operator seal records, want 1", n)
	}
	out.Reset()
	if _, err := w.svc.OperatorSeal(ctx, "cli:operator", cred, signer.LevelBB, open(encrypted), &out); err == nil || !strings.Contains(err.Error(), "encrypt") || out.Len() != 0 {
		t.Fatalf("operator sealing an encrypted PDF: %v, %d bytes written", err, out.Len())
	}
	someone := citizenSubject()
	someone["civilNumber"], someone["commonName"] = "99999999", "Someone Else"
	citizenCred, _ := w.credential(t, policies.ProfileCitizenSigning, someone)
	if _, err := w.svc.OperatorSeal(ctx, "cli:operator", citizenCred, signer.LevelBB, open(pdf), &out); !strings.Contains(fmt.Sprint(err), "not an organisation-seal credential") {
		t.Fatalf("operator sealing with a citizen's credential: %v", err)
	}
	if n := len(w.records(t, signing.ActionSeal, "refused", "cli:operator")); n != 2 {
		t.Fatalf("%d refused operator seal records, want 2", n)
	}
}

// runCitizenSigning: enrolment, CSC authorize + signHash, document
// signing with the PIN, lockout, reuse and ownership refusals.
func runCitizenSigning(t *testing.T, w *world) {
	citizen := w.token(t, "12345678", policies.RoleCitizen)
	other := w.token(t, "87654321", policies.RoleCitizen)
	cred, cert := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())

	if code, m := w.csc(t, "/csc/v2/info", "", map[string]any{}); code != 200 || m["specs"] != "2.0.0.0" {
		t.Fatalf("csc info: %d %v", code, m)
	}
	code, m := w.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{})
	if code != 200 || fmt.Sprint(m["credentialIDs"]) != "["+cred+"]" {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, m = w.csc(t, "/csc/v2/credentials/list", other, map[string]any{}); code != 200 || fmt.Sprint(m["credentialIDs"]) != "[]" {
		t.Fatalf("other's list: %d %v", code, m)
	}
	sum := sha256.Sum256([]byte("contract to sign"))
	h := base64.StdEncoding.EncodeToString(sum[:])
	authorize := func(token, pinValue string, hashes ...string) (int, map[string]any) {
		return w.csc(t, "/csc/v2/credentials/authorize", token, map[string]any{"credentialID": cred, "numSignatures": len(hashes),
			"hashes": hashes, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": pinValue})
	}
	code, m = authorize(citizen, testPIN, h)
	wantCSC(t, "authorize before enrolment", code, m, 400, "invalid_request", "no signing PIN")
	if code, m = w.csc(t, "/api/v1/credentials/"+cred+"/pin", other, signing.PINRequest{PIN: "111111"}); code != 403 {
		t.Fatalf("another citizen sets the PIN: %d %v", code, m)
	}
	if code, m = w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	if code, m = w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: "583920"}); code != 409 {
		t.Fatalf("set PIN again: %d %v", code, m)
	}
	code, m = authorize(other, testPIN, h)
	wantCSC(t, "another citizen's credential", code, m, 400, "invalid_request", "Invalid parameter credentialID")
	code, m = w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"numSignatures": 1, "hashes": []string{h},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "authData": []map[string]string{{"id": "PIN", "value": testPIN}}})
	wantCSC(t, "authorize without credentialID", code, m, 400, "invalid_request", "Missing (or invalid type) string parameter credentialID")
	runCSCShape(t, w, citizen, other, cred, h)
	code, m = authorize(citizen, testPIN, h)
	sad, _ := m["SAD"].(string)
	if code != 200 || sad == "" {
		t.Fatalf("authorize: %d %v", code, m)
	}
	signHash := func(token, sad string, hashes ...string) (int, map[string]any) {
		return w.csc(t, "/csc/v2/signatures/signHash", token, map[string]any{"credentialID": cred, "SAD": sad, "hashes": hashes,
			"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"})
	}
	other2 := sha256.Sum256([]byte("another document"))
	code, m = signHash(citizen, sad, base64.StdEncoding.EncodeToString(other2[:]))
	wantCSC(t, "signHash of a hash the SAD did not authorise", code, m, 400, "invalid_request", "Hash is not authorized by the SAD")
	// That attempt consumed the SAD: authorise again.
	_, m = authorize(citizen, testPIN, h)
	sad, _ = m["SAD"].(string)
	code, m = signHash(other, sad, h)
	wantCSC(t, "signHash by another citizen", code, m, 400, "invalid_request", "Invalid parameter credentialID")
	code, m = signHash(citizen, sad, h)
	sigs, _ := m["signatures"].([]any)
	if code != 200 || len(sigs) != 1 {
		t.Fatalf("signHash: %d %v", code, m)
	}
	sig, _ := base64.StdEncoding.DecodeString(sigs[0].(string))
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), sum[:], sig) {
		t.Fatal("the signHash signature does not verify with the certificate's key")
	}
	code, m = signHash(citizen, sad, h)
	wantCSC(t, "reused SAD", code, m, 400, "invalid_request", "Invalid parameter SAD")

	// A whole document, the PIN binding this one digest.
	pdf := samplePDF(t, 50<<10)
	code, _, body := w.send(t, "/api/v1/sign?level=B-T&credential="+cred, citizen, "application/pdf", pdf, map[string]string{signing.PINHeader: testPIN})
	if code != 200 {
		t.Fatalf("sign: %d %.300s", code, body)
	}
	w.checkPDF(t, "signed.pdf", body, "citizen", "B-T")
	// The agency seals the signed document: both signatures stay valid.
	code, _, sealed := w.send(t, "/api/v1/seal?level=B-T&credential="+w.sealCred, w.token(t, "NTROM-1234567", policies.RoleAgency), "application/pdf", body, nil)
	if code != 200 {
		t.Fatalf("sealing a signed document: %d %.300s", code, sealed)
	}
	both := w.path("signed-then-sealed.pdf")
	_ = os.WriteFile(both, sealed, 0o600)
	if out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", "sql:"+w.nss, both).CombinedOutput(); strings.Count(string(out), "Signature is Valid.") != 2 ||
		strings.Count(string(out), "Certificate is Trusted.") != 2 {
		t.Fatalf("pdfsig after a second signature:\n%s", out)
	}
	code, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+cred, other, "application/pdf", pdf, map[string]string{signing.PINHeader: testPIN})
	wantStatus(t, "sign with another citizen's credential", code, body, 403, "not yours")
	code, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", pdf, nil)
	wantStatus(t, "sign without the PIN", code, body, 401, signing.PINHeader)
	code, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", samplePDF(t, 8<<10), map[string]string{signing.PINHeader: testPIN})
	if code != 200 {
		t.Fatalf("sign B-B: %d %.300s", code, body)
	}
	w.checkPDF(t, "signed-B-B.pdf", body, "citizen", "B-B")

	runTwoStepSigning(t, w, citizen, other, cred)

	// Wrong PIN five times: locked, even for the right PIN.
	code, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", pdf, map[string]string{signing.PINHeader: "999999"})
	wantStatus(t, "sign with a wrong PIN", code, body, 403, "wrong PIN (4 tries left)")
	for i := 0; i < 3; i++ {
		code, m = authorize(citizen, "123123", h)
		wantCSC(t, fmt.Sprintf("wrong PIN %d", i+2), code, m, 400, "invalid_authentication_data", fmt.Sprintf("wrong PIN (%d tries left)", 3-i))
	}
	code, m = authorize(citizen, "123123", h)
	wantCSC(t, "fifth wrong PIN", code, m, 400, "invalid_request", "Credential locked")
	code, m = authorize(citizen, testPIN, h)
	wantCSC(t, "right PIN after 5 wrong", code, m, 400, "invalid_request", "Credential locked")
	code, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", pdf, map[string]string{signing.PINHeader: testPIN})
	wantStatus(t, "sign when locked", code, body, 423, "locked")
	if code, m = w.csc(t, "/csc/v2/credentials/info", citizen, map[string]any{"credentialID": cred}); code != 200 || !strings.Contains(fmt.Sprint(m["PIN"]), "locked:true") ||
		fmt.Sprint(m["key"].(map[string]any)["status"]) != "disabled" {
		t.Fatalf("info when locked: %d %v", code, m)
	}
	code, m = w.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{"onlyValid": true})
	if code != 200 || fmt.Sprint(m["credentialIDs"]) != "[]" || m["onlyValid"] != true {
		t.Fatalf("onlyValid list when locked: %d %v", code, m)
	}
}

// runTwoStepSigning: prepare → CSC authorize over the returned hash →
// complete with the SAD. The SAD signs only the prepared document, with
// the prepared layout, once.
func runTwoStepSigning(t *testing.T, w *world, citizen, other, cred string) {
	pdf := samplePDF(t, 30<<10)
	code, _, body := w.send(t, "/api/v1/sign/prepare?level=B-T&credential="+cred, citizen, "application/pdf", pdf, nil)
	var prep signing.SignPrepareResponse
	if code != 200 || json.Unmarshal(body, &prep) != nil || prep.Hash == "" || prep.HashAlgorithmOID != "2.16.840.1.101.3.4.2.1" ||
		prep.Placeholder <= 0 || len(prep.DocumentDigest) != 64 || prep.Level != "B-T" || prep.CredentialID != cred {
		t.Fatalf("prepare: %d %.300s", code, body)
	}
	code, _, body = w.send(t, "/api/v1/sign/prepare?level=B-T&credential="+cred, other, "application/pdf", pdf, nil)
	wantStatus(t, "prepare with another citizen's credential", code, body, 403, "not yours")
	code, _, body = w.send(t, "/api/v1/sign/prepare?level=B-T&credential="+cred, citizen, "application/pdf", []byte("not a pdf"), nil)
	wantStatus(t, "prepare a non-PDF", code, body, 400, "not a PDF")
	authorize := func() string {
		code, m := w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": cred, "numSignatures": 1,
			"hashes": []string{prep.Hash}, "hashAlgorithmOID": prep.HashAlgorithmOID, "PIN": testPIN})
		sad, _ := m["SAD"].(string)
		if code != 200 || sad == "" {
			t.Fatalf("authorize the prepared hash: %d %v", code, m)
		}
		return sad
	}
	complete := func(token, sad string, doc []byte, at string, placeholder int) (int, http.Header, []byte) {
		hdr := map[string]string{}
		if sad != "" {
			hdr[signing.SADHeader] = sad
		}
		return w.send(t, fmt.Sprintf("/api/v1/sign/complete?level=B-T&credential=%s&signingTime=%s&placeholder=%d", cred, at, placeholder),
			token, "application/pdf", doc, hdr)
	}
	// Another document under the SAD of the prepared one: refused, and the
	// attempt spent the SAD.
	tampered := bytes.Clone(pdf)
	i := bytes.LastIndex(tampered, []byte("sample padding"))
	copy(tampered[i:], "SAMPLE")
	sad := authorize()
	code, _, body = complete(citizen, sad, tampered, prep.SigningTime, prep.Placeholder)
	wantStatus(t, "complete another document", code, body, 403, "does not authorise")
	code, _, body = complete(citizen, sad, pdf, prep.SigningTime, prep.Placeholder)
	wantStatus(t, "complete with a spent SAD", code, body, 403, "already used")
	// Another signing time: another digest.
	at, _ := time.Parse(time.RFC3339, prep.SigningTime)
	code, _, body = complete(citizen, authorize(), pdf, at.Add(-time.Second).Format(time.RFC3339), prep.Placeholder)
	wantStatus(t, "complete with another signingTime", code, body, 403, "does not authorise")
	// Bad parameters: refused before the key is used.
	sad = authorize()
	code, _, body = complete(other, sad, pdf, prep.SigningTime, prep.Placeholder)
	wantStatus(t, "complete by another citizen", code, body, 403, "not yours")
	for _, bad := range []struct {
		sad, at     string
		placeholder int
		status      int
		text        string
	}{
		{"", prep.SigningTime, prep.Placeholder, 401, "SAD"},
		{sad, "yesterday", prep.Placeholder, 400, "signingTime"},
		{sad, at.Add(-time.Hour).Format(time.RFC3339), prep.Placeholder, 400, "prepare the document again"},
		{sad, prep.SigningTime, 10, 400, "placeholder"},
	} {
		code, _, body = complete(citizen, bad.sad, pdf, bad.at, bad.placeholder)
		wantStatus(t, "complete with bad parameters", code, body, bad.status, bad.text)
	}
	// The prepared document, its SAD: signed once, as prepared.
	code, hdr, body := complete(citizen, authorize(), pdf, prep.SigningTime, prep.Placeholder)
	if code != 200 || hdr.Get(signing.DigestHeader) != prep.DocumentDigest {
		t.Fatalf("complete: %d digest %s, prepared %s: %.300s", code, hdr.Get(signing.DigestHeader), prep.DocumentDigest, body)
	}
	w.checkPDF(t, "two-step.pdf", body, "citizen", "B-T")
}
