package signing_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/verify/report"
)

// TestExtend: POST /api/v1/extend brings this deployment's seals and
// PDFs signed by other software (the DSS and pyHanko corpus) to B-LTA;
// each signature's verdict is what it was, pdfsig and qpdf accept the
// result and openssl ts -verify the new document time-stamp; extending
// again renews; broken and unsigned documents are refused with the
// verifier's report (force=true extends a broken one, and says so).
func TestExtend(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	operator := w.token(t, "operator-1", policies.RoleOperator)
	cred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	pdf := samplePDF(t, 8<<10)
	extend := func(token, query string, body []byte) (int, http.Header, []byte) {
		return w.send(t, "/api/v1/extend?"+query, token, "application/pdf", body, nil)
	}

	code, _, sealed := w.send(t, "/api/v1/seal?level=B-T&credential="+cred, agency, "application/pdf", pdf, nil)
	if code != 200 {
		t.Fatalf("seal: %d %s", code, sealed)
	}
	code, _, lt := extend(agency, "level=B-LT", sealed)
	if code != 200 || !bytes.HasPrefix(lt, sealed) {
		t.Fatalf("extend to B-LT: %d %.300s", code, lt)
	}
	if rep := w.verifyAll(t, lt); rep.Signatures[0].Level != "B-LT" || rep.Indication != report.TotalPassed {
		t.Fatalf("after B-LT: %s %s", rep.Signatures[0].Level, rep.Indication)
	}
	code, _, lta := extend(operator, "level=B-LTA", sealed)
	if code != 200 {
		t.Fatalf("extend to B-LTA: %d %.300s", code, lta)
	}
	w.checkExtended(t, "own", sealed, lta, true)
	// The archive renewal: the last time-stamp's data and a new one.
	code, _, again := extend(agency, "level=B-LTA", lta)
	if code != 200 || bytes.Count(again, []byte("/ETSI.RFC3161")) != 2 {
		t.Fatalf("renewal: %d, %d document time-stamps", code, bytes.Count(again, []byte("/ETSI.RFC3161")))
	}
	w.checkExtended(t, "renewed", lta, again, true)

	// A PDF signed by poppler's pdfsig (through NSS) with a citizen key
	// this deployment certified: its revocation data is all here.
	byPdfsig := w.pdfsigSigned(t, pdf)
	code, hdr, out := extend(agency, "level=B-LTA", byPdfsig)
	if code != 200 || len(hdr.Values(signing.WarningHeader)) != 0 {
		t.Fatalf("extend a pdfsig-signed PDF: %d %q %.300s", code, hdr.Values(signing.WarningHeader), out)
	}
	w.checkExtended(t, "pdfsig", byPdfsig, out, true)

	// PDFs signed by other software.
	corpus := testenv.SharedCorpus(t)
	for _, name := range []string{"dss/pades-bes.pdf", "dss/doc-firmado.pdf", "dss/doc-firmado-LT.pdf", "dss/PAdES-LT.pdf",
		"dss/pades-t-level-extended.pdf", "dss/timestamped_and_signed.pdf", "dss/pdf-signed-original.pdf",
		"dss/Test.signed_Certipost-2048-SHA512.extended-LTA.pdf", "pyhanko/pades-lta-dss-indirect-arrs-test.pdf"} {
		in, err := os.ReadFile(filepath.Join(corpus, name))
		if err != nil {
			t.Fatal(err)
		}
		code, hdr, out := extend(agency, "level=B-LTA", in)
		if code != 200 {
			t.Errorf("%s: %d %.400s", name, code, out)
			continue
		}
		// Without the network, the revocation data of foreign PKIs cannot
		// be had: the answer says so, and those signatures stay at B-T.
		missing := hdr.Values(signing.WarningHeader)
		if name == "pyhanko/pades-lta-dss-indirect-arrs-test.pdf" && len(missing) != 0 {
			t.Errorf("%s: missing %q", name, missing)
		}
		// The CRL was looked for where the foreign certificate says.
		if name == "dss/timestamped_and_signed.pdf" && !strings.Contains(strings.Join(missing, " "), "CRL: http://crl.eid.belgium.be/") {
			t.Errorf("%s: the CRL distribution point was not tried: %q", name, missing)
		}
		w.checkExtended(t, filepath.Base(name), in, out, len(missing) == 0)
	}

	// Refusals: a broken signature (422 with the report), force; no
	// signature; not a PDF; a citizen.
	broken := append([]byte(nil), sealed...)
	i := bytes.Index(broken, []byte("Thiqa sample"))
	broken[i] = 'X'
	code, _, body := extend(agency, "level=B-LTA", broken)
	var p struct {
		Status int            `json:"status"`
		Detail string         `json:"detail"`
		Report *report.Report `json:"report"`
	}
	if code != http.StatusUnprocessableEntity || json.Unmarshal(body, &p) != nil || p.Report == nil ||
		p.Report.Signatures[0].SubIndication != report.HashFailure || !strings.Contains(p.Detail, "force=true") {
		t.Fatalf("broken document: %d %.400s", code, body)
	}
	code, _, forced := extend(agency, "level=B-LTA&force=true", broken)
	if code != 200 || !bytes.Contains(forced, []byte("/ETSI.RFC3161")) {
		t.Fatalf("forced: %d %.200s", code, forced)
	}
	code, _, body = extend(agency, "level=B-LTA", pdf)
	wantStatus(t, "unsigned", code, body, http.StatusUnprocessableEntity, "no signature")
	code, _, body = extend(agency, "level=B-LTA", []byte("hello"))
	wantStatus(t, "not a PDF", code, body, http.StatusBadRequest, "not a PDF")
	code, _, body = extend(agency, "level=B-T", sealed)
	wantStatus(t, "level B-T", code, body, http.StatusBadRequest, "B-LT or B-LTA")
	code, _, _ = extend(w.token(t, "12345678", policies.RoleCitizen), "level=B-LTA", sealed)
	if code != http.StatusForbidden {
		t.Fatalf("citizen extends: %d", code)
	}
	if n := len(w.records(t, signing.ActionExtend, "refused", "NTROM-1234567")); n != 4 {
		t.Fatalf("%d refused extensions audited, want 4", n)
	}
	ok := w.records(t, signing.ActionExtend, "success", "NTROM-1234567")
	if len(ok) < 3 || !strings.Contains(string(ok[len(ok)-1].Details), `"forcedOverBrokenSignature":true`) {
		t.Fatalf("successful extensions audited: %d, last %s", len(ok), ok[len(ok)-1].Details)
	}
	w.verifyAudit(t)
}

// checkExtended checks an extension of before: every signature keeps its
// verdict, and the ones that had a level reach B-LTA when the validation
// data was complete, B-T at least otherwise; pdfsig finds as many valid
// signatures as before; qpdf finds nothing the original did not have;
// openssl ts -verify accepts the new document time-stamp over its byte
// range.
func (w *world) checkExtended(t *testing.T, name string, before, after []byte, complete bool) {
	t.Helper()
	rb, ra := w.verifyAll(t, before), w.verifyAll(t, after)
	var sigsBefore, sigsAfter []report.Signature
	for _, s := range rb.Signatures {
		if s.Kind == "signature" {
			sigsBefore = append(sigsBefore, s)
		}
	}
	for _, s := range ra.Signatures {
		if s.Kind == "signature" {
			sigsAfter = append(sigsAfter, s)
		}
	}
	if len(sigsBefore) != len(sigsAfter) {
		t.Fatalf("%s: %d signatures before, %d after", name, len(sigsBefore), len(sigsAfter))
	}
	for i, s := range sigsBefore {
		a := sigsAfter[i]
		if a.Indication != s.Indication || a.SubIndication != s.SubIndication {
			t.Errorf("%s: signature %q was %s/%s, is %s/%s after extending", name, s.Field, s.Indication, s.SubIndication, a.Indication, a.SubIndication)
		}
		switch {
		case s.Level == "":
		case complete && a.Level != "B-LTA" && a.Level != "PKCS7-LTA":
			t.Errorf("%s: signature %q at %q after extending (was %q)", name, s.Field, a.Level, s.Level)
		case levelRank(a.Level) < max(levelRank(s.Level), levelRank("B-T")):
			t.Errorf("%s: signature %q at %q after extending, was %q", name, s.Field, a.Level, s.Level)
		}
	}
	p := w.path("ext-" + name)
	if err := os.WriteFile(p, after, 0o600); err != nil {
		t.Fatal(err)
	}
	qpdfWarnings := func(b []byte) map[string]bool {
		f := w.path("qpdf-" + name)
		_ = os.WriteFile(f, b, 0o600)
		out, err := exec.Command(testenv.Tool(t, "qpdf"), "--check", f).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "operation succeeded with warnings") || !strings.Contains(string(out), "checking") {
			t.Errorf("%s: qpdf --check: %v\n%s", name, err, out)
		}
		ws := map[string]bool{}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "WARNING") {
				ws[strings.TrimPrefix(l, "WARNING: "+f)] = true
			}
		}
		return ws
	}
	wb, wa := qpdfWarnings(before), qpdfWarnings(after)
	for k := range wa {
		if !wb[k] {
			t.Errorf("%s: qpdf --check warns after extending: %s", name, k)
		}
	}
	brs := regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`).FindAllSubmatch(after, -1)
	last := brs[len(brs)-1]
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(string(last[i+1]))
	}
	// pdfsig cannot read document time-stamps (and then judges no
	// signature): compare the revision before the new one, which holds the
	// same signatures and the new DSS, with the document as it came.
	if !bytes.Contains(before, []byte("/ETSI.RFC3161")) {
		valid := func(b []byte) int {
			f := w.path("pdfsig-" + name)
			_ = os.WriteFile(f, b, 0o600)
			out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", "sql:"+w.nss, f).CombinedOutput()
			return strings.Count(string(out), "Signature is Valid.")
		}
		dssRev := after[:bytes.LastIndex(after[:n[1]], []byte("%%EOF"))+len("%%EOF")]
		if vb, va := valid(before), valid(dssRev); vb != va || vb == 0 {
			t.Errorf("%s: pdfsig finds %d valid signatures before, %d after", name, vb, va)
		}
	}
	// openssl ts -verify: the new token over the bytes its ByteRange covers.
	hexTok := strings.Trim(string(after[n[0]+n[1]:n[2]]), "<> \n")
	tok := make([]byte, len(hexTok)/2)
	for i := range tok {
		v, _ := strconv.ParseUint(hexTok[2*i:2*i+2], 16, 8)
		tok[i] = byte(v)
	}
	tok = trimDER(tok)
	data := append(append([]byte(nil), after[n[0]:n[0]+n[1]]...), after[n[2]:n[2]+n[3]]...)
	tokPath, dataPath := w.path("ts-"+name+".der"), w.path("ts-"+name+".data")
	_ = os.WriteFile(tokPath, tok, 0o600)
	_ = os.WriteFile(dataPath, data, 0o600)
	out, err := exec.Command(testenv.Tool(t, "openssl"), "ts", "-verify", "-data", dataPath, "-in", tokPath, "-token_in",
		"-CAfile", w.path("root.pem"), "-untrusted", w.path("tsa.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Errorf("%s: openssl ts -verify: %v\n%s", name, err, out)
	}
}

// trimDER cuts the zero padding after a DER SEQUENCE.
func trimDER(b []byte) []byte {
	if len(b) < 2 || b[0] != 0x30 {
		return b
	}
	l, hdr := int(b[1]), 2
	if l&0x80 != 0 {
		n := l & 0x7f
		l = 0
		for i := 0; i < n && 2+i < len(b); i++ {
			l = l<<8 | int(b[2+i])
		}
		hdr = 2 + n
	}
	if hdr+l <= len(b) {
		return b[:hdr+l]
	}
	return b
}

// levelRank orders PAdES levels: B-B < B-T < B-LT < B-LTA (PKCS7-… alike).
func levelRank(l string) int {
	return map[string]int{"B": 1, "T": 2, "LT": 3, "LTA": 4}[strings.TrimPrefix(strings.TrimPrefix(l, "PKCS7-"), "B-")]
}

// pdfsigSigned signs pdf with poppler's pdfsig, with an RSA key (pdfsig
// cannot sign with ECDSA) held in the world's NSS database and certified
// by the world's citizen CA.
func (w *world) pdfsigSigned(t *testing.T, pdf []byte) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sub := citizenSubject()
	sub["civilNumber"], sub["commonName"] = "55555555", "Salim Al Busaidi"
	cert := w.issue(t, policies.ProfileCitizenSigning, "", sub, key, "")
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPath, leafPath := w.path("pdfsig-key.pem"), "pdfsig-leaf.pem"
	_ = os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
	w.writePEM(t, leafPath, cert)
	p12 := w.path("pdfsig.p12")
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(testenv.Tool(t, name), args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("openssl", "pkcs12", "-export", "-inkey", keyPath, "-in", w.path(leafPath), "-certfile", w.path("citizen.pem"), "-name", "pdfsig-signer", "-passout", "pass:", "-out", p12)
	run("pk12util", "-i", p12, "-d", "sql:"+w.nss, "-W", "", "-K", "")
	in, signed := w.path("pdfsig-in.pdf"), w.path("pdfsig-signed.pdf")
	_ = os.WriteFile(in, pdf, 0o600)
	run("pdfsig", "-nssdir", "sql:"+w.nss, "-nick", "pdfsig-signer", "-add-signature", in, signed)
	b, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
