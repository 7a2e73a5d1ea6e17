package signing_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// TestVisibleSignaturesAndOptions: reason, location and contact on seal and sign,
// shown by the verifier; visible seals and signatures with the names from
// the certificate (Arabic and Latin), a PNG and a QR code, that pdfsig,
// qpdf, pdftotext and the verifier accept; certification (P=1 refuses a
// second signature with a 409, P=2 allows one); bad placements, images and
// pages refused, audited, nothing signed.
func TestVisibleSignaturesAndOptions(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	sealCred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	pdf := samplePDF(t, 8<<10)
	seal := func(query string, ctype string, body []byte) (int, http.Header, []byte) {
		return w.send(t, "/api/v1/seal?credential="+sealCred+"&"+query, agency, ctype, body, nil)
	}

	// The signature dictionary's entries, shown by the verifier.
	code, _, out := seal("level=B-T&reason="+url.QueryEscape("Issued: birth certificate")+"&location=Muscat&contactInfo="+url.QueryEscape("+968 2400 0000"), "application/pdf", pdf)
	if code != http.StatusOK {
		t.Fatalf("seal with a reason: %d %s", code, out)
	}
	w.checkPDF(t, "reason.pdf", out, "organisation", "B-T")
	rep := w.verifyAll(t, out)
	if s := rep.Signatures[0]; s.Reason != "Issued: birth certificate" || s.Location != "Muscat" || s.ContactInfo != "+968 2400 0000" {
		t.Fatalf("report: reason %q location %q contact %q", s.Reason, s.Location, s.ContactInfo)
	}

	// A visible seal with a PNG (multipart) and the QR code.
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	iw, _ := mw.CreateFormFile("image", "logo.png")
	iw.Write(testPNG(t, 64, 64))
	dw, _ := mw.CreateFormFile("document", "doc.pdf")
	dw.Write(pdf)
	mw.Close()
	code, hdr, out := seal("level=B-T&visible=1&page=1&rect=300,40,580,130&locale=en&reason=Approved", mw.FormDataContentType(), mb.Bytes())
	if code != http.StatusOK || len(hdr.Values(signing.WarningHeader)) != 0 {
		t.Fatalf("visible seal: %d %v %.300s", code, hdr.Values(signing.WarningHeader), out)
	}
	w.checkPDF(t, "visible-seal.pdf", out, "organisation", "B-T")
	text := w.pdftotext(t, out)
	for _, want := range []string{"Sealed by Ministry of", "Health Seal", "Reason: Approved", "GMT+4"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext lacks %q:\n%s", want, text)
		}
	}
	w.keepRender(t, "visible-seal", out)

	// A citizen whose certificate has an Arabic common name and a Latin
	// given name and surname: both names, Arabic labels, signed with the PIN.
	citizen := w.token(t, "12345678", policies.RoleCitizen)
	sub := citizenSubject()
	sub["commonName"] = "عائشة الحارثي"
	cred, _ := w.credential(t, policies.ProfileCitizenSigning, sub)
	if code, m := w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	code, _, signed := w.send(t, "/api/v1/sign?level=B-B&credential="+cred+"&visible=1&rect=40,40,300,130&reason="+url.QueryEscape("موافقة"),
		citizen, "application/pdf", pdf, map[string]string{signing.PINHeader: testPIN})
	if code != http.StatusOK {
		t.Fatalf("visible signature: %d %.300s", code, signed)
	}
	w.checkPDF(t, "visible-sign.pdf", signed, "citizen", "B-B")
	text = w.pdftotext(t, signed)
	for _, want := range []string{"عائشة الحارثي", "Aisha Al Harthy", "موافقة", "التاريخ"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext lacks %q:\n%s", want, text)
		}
	}
	w.keepRender(t, "visible-sign", signed)

	// Two steps with the same visible options: complete lays the document
	// out exactly as prepare did, so the SAD for the prepared hash signs it.
	visible := "&visible=1&rect=40,40,300,130&locale=en&reason=Contract"
	code, _, body := w.send(t, "/api/v1/sign/prepare?level=B-B&credential="+cred+visible, citizen, "application/pdf", pdf, nil)
	var prep signing.SignPrepareResponse
	if code != 200 || json.Unmarshal(body, &prep) != nil {
		t.Fatalf("prepare a visible signature: %d %s", code, body)
	}
	code, m := w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": cred, "numSignatures": 1,
		"hashes": []string{prep.Hash}, "hashAlgorithmOID": prep.HashAlgorithmOID, "PIN": testPIN})
	sad, _ := m["SAD"].(string)
	if code != 200 || sad == "" {
		t.Fatalf("authorize: %d %v", code, m)
	}
	code, hdr, body = w.send(t, fmt.Sprintf("/api/v1/sign/complete?level=B-B&credential=%s&signingTime=%s&placeholder=%d%s", cred,
		url.QueryEscape(prep.SigningTime), prep.Placeholder, visible), citizen, "application/pdf", pdf, map[string]string{signing.SADHeader: sad})
	if code != 200 || hdr.Get(signing.DigestHeader) != prep.DocumentDigest {
		t.Fatalf("complete a visible signature: %d %s", code, body)
	}
	w.checkPDF(t, "two-step-visible.pdf", body, "citizen", "B-B")
	if text := w.pdftotext(t, body); !strings.Contains(text, "Reason: Contract") || !strings.Contains(text, "عائشة الحارثي") {
		t.Fatalf("pdftotext of the two-step signature:\n%s", text)
	}

	// A character no configured font has: signed, and said so.
	code, hdr, body = seal("level=B-B&visible=1&rect=300,40,580,130&reason="+url.QueryEscape("承認"), "application/pdf", pdf)
	if code != 200 || !strings.Contains(strings.Join(hdr.Values(signing.WarningHeader), " "), `no configured font has a glyph for '\u627F' (U+627F)`) {
		t.Fatalf("missing glyphs: %d %q %.200s", code, hdr.Values(signing.WarningHeader), body)
	}
	if recs := w.records(t, signing.ActionSeal, "success", "NTROM-1234567"); !strings.Contains(string(recs[len(recs)-1].Details), `"warnings":["no configured font`) {
		t.Fatalf("the seal's audit record does not carry the warning: %s", recs[len(recs)-1].Details)
	}

	// Certification: P=1 refuses any later signature (409); P=2 allows one.
	code, _, certified := seal("level=B-B&certify=1", "application/pdf", pdf)
	if code != http.StatusOK {
		t.Fatalf("certify=1: %d %s", code, certified)
	}
	if r := w.verifyAll(t, certified); r.Signatures[0].CertificationPermission != 1 {
		t.Fatalf("certification permission %d", r.Signatures[0].CertificationPermission)
	}
	code, _, body = seal("level=B-B", "application/pdf", certified)
	wantStatus(t, "seal over a P=1 certification", code, body, http.StatusConflict, "DocMDP P=1")
	code, _, body = seal("level=B-B&certify=2", "application/pdf", signed)
	wantStatus(t, "certify a signed document", code, body, http.StatusConflict, "first signature")
	code, _, certified = seal("level=B-B&certify=2&visible=1&rect=300,40,580,130", "application/pdf", pdf)
	if code != http.StatusOK {
		t.Fatalf("certify=2: %d %s", code, certified)
	}
	code, _, both := w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", certified, map[string]string{signing.PINHeader: testPIN})
	if code != http.StatusOK {
		t.Fatalf("signing a P=2 certified document: %d %s", code, both)
	}
	rep = w.verifyAll(t, both)
	if len(rep.Signatures) != 2 || rep.Indication != report.TotalPassed || rep.Signatures[0].CertificationPermission != 2 {
		js, _ := json.MarshalIndent(rep, "", " ")
		t.Fatalf("P=2 then a signature: %s", js)
	}

	// Bad placements, images, pages: refused before anything is signed.
	refusedBefore := len(w.records(t, signing.ActionSeal, "refused", "NTROM-1234567"))
	bad := []struct {
		query, ctype string
		body         []byte
		status       int
		text         string
	}{
		{"visible=1&rect=500,700,900,900", "application/pdf", pdf, 400, "outside page 1"},
		{"visible=1&page=9&rect=10,10,200,80", "application/pdf", pdf, 400, "no page 9"},
		{"visible=1&rect=10,10,5,80", "application/pdf", pdf, 400, "empty"},
		{"visible=1&rect=10,10,200,80", "", nil, 400, "must be a PNG"},
		{"visible=1&rect=10,10,200,80", "", nil, 413, "image exceeds"},
		{"certify=7", "application/pdf", pdf, 400, "certify must be"},
		{"reason=" + url.QueryEscape("a\x01b"), "application/pdf", pdf, 400, "control character"},
	}
	for i, c := range bad {
		if c.ctype == "" { // an image part: not a PNG, then too large
			img := []byte("GIF89a not a png")
			if c.status == 413 {
				img = append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, signer.MaxImageBytes)...)
			}
			var b bytes.Buffer
			m := multipart.NewWriter(&b)
			fw, _ := m.CreateFormFile("image", "x.png")
			fw.Write(img)
			fw, _ = m.CreateFormFile("document", "d.pdf")
			fw.Write(pdf)
			m.Close()
			c.ctype, c.body = m.FormDataContentType(), b.Bytes()
		}
		code, _, body := seal("level=B-B&"+c.query, c.ctype, c.body)
		wantStatus(t, c.query, code, body, c.status, c.text)
		if bytes.HasPrefix(body, []byte("%PDF")) {
			t.Fatalf("case %d signed something", i)
		}
	}
	if n := len(w.records(t, signing.ActionSeal, "refused", "NTROM-1234567")) - refusedBefore; n != len(bad) {
		t.Fatalf("%d refusals audited, want %d", n, len(bad))
	}
	w.verifyAudit(t)
}

// testPNG is a w×h PNG with a transparent gradient.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{R: 10, G: 100, B: 70, A: uint8(255 * (x + y) / (w + h))})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// verifier is the project's verifier trusting the world's root, fetching
// revocation data online.
func (w *world) verifier() *verify.Verifier {
	return verify.New(verify.Options{TrustAnchors: []*x509.Certificate{w.root}, AllowOnline: true, FetchTimeout: 10 * time.Second,
		Fetcher: &verify.HTTPFetcher{Client: &http.Client{Timeout: 10 * time.Second}, TTL: time.Minute}})
}

// verifyAll runs the verifier over pdf and returns its report.
func (w *world) verifyAll(t *testing.T, pdf []byte) *report.Report {
	t.Helper()
	rep, err := w.verifier().VerifyPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)))
	if err != nil || len(rep.Signatures) == 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	return rep
}

// pdftotext extracts the text of every page with poppler.
func (w *world) pdftotext(t *testing.T, pdf []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "t.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Tool(t, "pdftotext"), f, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

// keepRender renders page 1 to $THIQA_APPEARANCE_PNG/name.png when set,
// for a person to look at.
func (w *world) keepRender(t *testing.T, name string, pdf []byte) {
	dir := os.Getenv("THIQA_APPEARANCE_PNG")
	if dir == "" {
		return
	}
	f := filepath.Join(t.TempDir(), "r.pdf")
	_ = os.WriteFile(f, pdf, 0o600)
	if out, err := exec.Command(testenv.Tool(t, "pdftoppm"), "-r", "110", "-png", "-singlefile", f, filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
}
