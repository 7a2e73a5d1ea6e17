package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

// xmlCryptoCheck verifies a list's signature with node's xml-crypto, an XML
// signature implementation nobody on the project wrote.
const xmlCryptoCheck = `
const fs = require("fs");
const { SignedXml } = require("xml-crypto");
const { DOMParser } = require("@xmldom/xmldom");
const xpath = require("xpath");
const [xmlFile, certFile] = process.argv.slice(2);
const xml = fs.readFileSync(xmlFile, "utf8");
const doc = new DOMParser().parseFromString(xml, "text/xml");
const sigs = xpath.select("//*[local-name(.)='Signature' and namespace-uri(.)='http://www.w3.org/2000/09/xmldsig#']", doc);
if (sigs.length !== 1) { console.log("signatures: " + sigs.length); process.exit(2); }
const sig = new SignedXml({ publicCert: fs.readFileSync(certFile, "utf8") });
sig.loadSignature(sigs[0]);
let ok = false;
try { ok = sig.checkSignature(xml); } catch (e) { console.log("error: " + e.message); process.exit(1); }
console.log(ok ? "VALID" : "INVALID");
process.exit(ok ? 0 : 1);
`

func xmlCrypto(t *testing.T, list, cert string) (bool, string) {
	t.Helper()
	dir := testenv.NPMPackages(t, "xml-crypto@6.1.2")
	script := filepath.Join(t.TempDir(), "check.js")
	writeFile(t, script, xmlCryptoCheck)
	cmd := exec.Command("node", script, list, cert)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.CombinedOutput()
	return err == nil && strings.TrimSpace(string(out)) == "VALID", string(out)
}

func tslCheckJSON(t *testing.T, wantCode int, args ...string) tsl.Summary {
	t.Helper()
	r := thiqa(t, nil, append([]string{"tsl", "check", "--json"}, args...)...)
	var out tsl.Summary
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != wantCode {
		t.Fatalf("tsl check %v: exit %d (want %d), %v\n%s\n%s", args, r.code, wantCode, err, r.stdout, r.stderr)
	}
	return out
}

// TestTSLEndToEnd: `thiqa init` makes the trusted-list signer, `thiqa tsl
// build` signs the deployment's list on the token, GET /tsl.xml serves it,
// xml-crypto accepts its signature, and Thiqa's verifier, given only that
// list, finds the agency's seal and the citizen's signature qualified; with
// only the root it says unknown.
func TestTSLEndToEnd(t *testing.T) {
	f := newSignFixture(t)
	signer := filepath.Join(f.dir, "tsl", "signer.pem")
	list := filepath.Join(f.dir, "tsl", "tsl.xml")
	signerPEM := mustRead(t, signer)

	// Publish.
	if code, _, _ := f.srv.get(t, "/tsl.xml", ""); code != http.StatusNotFound {
		t.Fatalf("GET /tsl.xml before a build: %d", code)
	}
	mustThiqa(t, nil, "tsl", "build", "--data", f.dir, "--next-update", "90d")
	os.Remove(list) // as a crash after the audit record, before the file: list 1 counts as issued
	mustThiqa(t, nil, "tsl", "build", "--data", f.dir)
	code, hdr, body := f.srv.get(t, "/tsl.xml", "")
	if code != http.StatusOK || hdr.Get("Content-Type") != tsl.MimeTypeTSL || !bytes.Equal(body, []byte(mustRead(t, list))) {
		t.Fatalf("GET /tsl.xml: %d %s %d bytes", code, hdr.Get("Content-Type"), len(body))
	}
	out := tslCheckJSON(t, 0, f.srv.base+"/tsl.xml", "--signer", signer)
	if out.Indication != report.TotalPassed || out.Territory != "OM" || out.Version != 6 || out.SequenceNumber != 2 || out.Providers != 1 || out.Services != 3 || out.NextUpdate == nil {
		t.Fatalf("tsl check of the published list: %+v", out)
	}
	if ok, msg := xmlCrypto(t, list, signer); !ok {
		t.Fatalf("xml-crypto refuses the list: %s", msg)
	}
	// Without tsl.address the postal address is the placeholder, as it always was.
	if l := mustRead(t, list); strings.Count(l, "<StreetAddress>PLACEHOLDER</StreetAddress>") != 2 || strings.Contains(l, "<PostalCode>") {
		t.Fatalf("the default postal address changed:\n%s", l)
	}
	// Refusals: another signer, a changed byte.
	tampered := filepath.Join(t.TempDir(), "tampered.xml")
	writeFile(t, tampered, strings.Replace(mustRead(t, list), "<TSLSequenceNumber>2<", "<TSLSequenceNumber>9<", 1))
	if out := tslCheckJSON(t, 1, tampered, "--signer", signer); out.SubIndication != report.HashFailure {
		t.Fatalf("tampered list: %+v", out)
	}
	if ok, _ := xmlCrypto(t, tampered, signer); ok {
		t.Fatal("xml-crypto accepts the tampered list")
	}
	if out := tslCheckJSON(t, 2, list, "--signer", filepath.Join(f.dir, "ca", "root.pem")); out.SubIndication != report.NoCertificateChainFound {
		t.Fatalf("wrong signer: %+v", out)
	}

	// Sign and seal, then verify with the list alone.
	agency := f.token(t, "NTROM-1234567", "agency")
	sealCred := f.credential(t, "organisation-seal", orgSubject())
	code, _, sealed := f.send(t, "/api/v1/seal?level=B-LT&credential="+sealCred, agency, "application/pdf", samplePDF(t, 20<<10), nil)
	if code != http.StatusOK {
		t.Fatalf("seal: %d %.300s", code, sealed)
	}
	citizen := f.token(t, "12345678", "citizen")
	signCred := f.credential(t, "citizen-signing", citizenSubject())
	if code, m := f.csc(t, "/api/v1/credentials/"+signCred+"/pin", citizen, signing.PINRequest{PIN: "482916"}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	code, _, signed := f.send(t, "/api/v1/sign?level=B-T&credential="+signCred, citizen, "application/pdf", samplePDF(t, 10<<10), map[string]string{signing.PINHeader: "482916"})
	if code != http.StatusOK {
		t.Fatalf("sign: %d %.300s", code, signed)
	}
	for name, c := range map[string]struct {
		pdf   []byte
		typ   string
		level string
	}{"seal": {sealed, "eseal", "B-LT"}, "signature": {signed, "esign", "B-T"}} {
		p := filepath.Join(t.TempDir(), name+".pdf")
		writeFile(t, p, string(c.pdf))
		rep := vfyReport(t, 0, p, "--tsl", list, "--tsl-signer", signer)
		s := signatureOf(t, rep)
		q := s.Signer.Qualification
		if s.Level != c.level || !s.Signer.Qualified || !s.Signer.QSCD || strings.Join(s.Signer.QCTypes, ",") != c.typ ||
			q.Status != report.QualificationQualified || q.QualifiedFrom != report.FromCertificate || q.TrustedList == nil ||
			q.TrustedList.Territory != "OM" || q.TrustedList.SequenceNumber != 2 || q.TrustedList.ServiceType != tsl.SvcTypeCAQC {
			t.Fatalf("%s with the trusted list: %s, level %s, signer %+v, qualification %+v", name, rep.Indication, s.Level, s.Signer, q)
		}
		if ts := s.Timestamps[0]; !ts.Qualified || ts.Qualification.TrustedList.ServiceType != tsl.SvcTypeTSAQTST {
			t.Fatalf("%s: timestamp not qualified: %+v", name, ts)
		}
		// The same document with only the root: valid, qualified unknown.
		rep = vfyReport(t, 0, p, "--data", f.dir)
		if s := signatureOf(t, rep); s.Signer.Qualified || s.Signer.QSCD || s.Signer.Qualification.Status != report.QualificationUnknown ||
			!s.Signer.Qualification.Certificate.QcCompliance {
			t.Fatalf("%s without a trusted list: %+v %+v", name, s.Signer, s.Signer.Qualification)
		}
		// The text report says where the status came from.
		r := mustThiqa(t, nil, "verify", p, "--tsl", list, "--tsl-signer", signer)
		if !strings.Contains(r.stdout, "qualified: yes (certificate)") || !strings.Contains(r.stdout, "trusted list: OM #2") {
			t.Fatalf("%s text report:\n%s", name, r.stdout)
		}
	}
	// A list that fails is refused with its reason (exit 3: could not run).
	r := thiqa(t, nil, "verify", filepath.Join(t.TempDir(), "x.pdf"), "--tsl", tampered, "--tsl-signer", signer)
	if r.code != 3 || !strings.Contains(r.stderr, "HASH_FAILURE") {
		t.Fatalf("verify with a tampered list: exit %d %s", r.code, r.stderr)
	}

	// thiqa serve with verify.trustedLists: the API says qualified too.
	f.srv.stop(t)
	y := mustRead(t, filepath.Join(f.dir, "thiqa.yaml"))
	writeFile(t, filepath.Join(f.dir, "thiqa.yaml"), strings.Replace(y, "verify:\n",
		"verify:\n  trustedLists:\n    - file: tsl/tsl.xml\n      signers: [tsl/signer.pem]\n", 1))
	f.start(t)
	code, _, body = f.send(t, "/api/v1/verify", "", "application/pdf", sealed, nil)
	var rep report.Report
	if err := json.Unmarshal(body, &rep); err != nil || code != http.StatusOK || !signatureOf(t, &rep).Signer.Qualified {
		t.Fatalf("POST /api/v1/verify with verify.trustedLists: %d %.400s", code, body)
	}
	// init again: nothing replaced; a lost certificate is made again for the same key.
	f.srv.stop(t)
	mustThiqa(t, nil, "init", "--data", f.dir)
	if mustRead(t, signer) != signerPEM {
		t.Fatal("thiqa init replaced the trusted-list signer certificate")
	}
	if err := os.Remove(signer); err != nil {
		t.Fatal(err)
	}
	mustThiqa(t, nil, "init", "--data", f.dir)
	if mustRead(t, signer) == signerPEM {
		t.Fatal("no new signer certificate")
	}
	// The old list names the old certificate; the next build signs with the new one.
	if out := tslCheckJSON(t, 2, list, "--signer", signer); out.SubIndication != report.NoCertificateChainFound {
		t.Fatalf("old list, new certificate: %+v", out)
	}
	// With tsl.address the list carries the operator's address.
	y = mustRead(t, filepath.Join(f.dir, "thiqa.yaml"))
	writeFile(t, filepath.Join(f.dir, "thiqa.yaml"), y+"tsl:\n  address:\n    street: Way 3013, Building 120\n    locality: Muscat\n    postalCode: \"112\"\n    email: trust@ita.gov.example\n")
	mustThiqa(t, nil, "tsl", "build", "--data", f.dir)
	if out := tslCheckJSON(t, 0, list, "--signer", signer); out.SequenceNumber != 3 {
		t.Fatalf("list signed after the certificate was made again: %+v", out)
	}
	if ok, msg := xmlCrypto(t, list, signer); !ok {
		t.Fatalf("xml-crypto refuses the list with an address: %s", msg)
	}
	l := mustRead(t, list)
	for _, want := range []string{"<StreetAddress>Way 3013, Building 120</StreetAddress>", "<Locality>Muscat</Locality>", "<PostalCode>112</PostalCode>", "<CountryName>OM</CountryName>", ">mailto:trust@ita.gov.example</URI>"} {
		if strings.Count(l, want) != 2 || strings.Contains(l, ">PLACEHOLDER<") {
			t.Fatalf("the list with tsl.address has not %s twice (operator and provider):\n%s", want, l)
		}
	}
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}
