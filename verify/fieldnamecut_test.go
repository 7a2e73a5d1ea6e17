package verify

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/thiqa/thiqa/verify/pdf"
)

// TestFieldNamesCutBetweenCharacters: a signature field's name, and the
// name of a changed form field in the modification check, are cut at
// 1 KB. The cut went through the bytes, so a name of non-ASCII characters
// could end in half of one and the report showed U+FFFD. Both are now cut
// between characters.
func TestFieldNamesCutBetweenCharacters(t *testing.T) {
	p := newTestPKI(t)
	// "a" then 700 × é (\351 in PDFDocEncoding, two bytes in UTF-8): the
	// 1,024th byte of the name is the first half of an é.
	long := "a" + strings.Repeat(`\351`, 700)
	objs := map[int]string{
		1000: fmt.Sprintf("<< /FT /Sig /T (%s) /V 5 0 R >>", long),
		1:    "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 1000 0 R] /SigFlags 3 >> >>",
	}
	// A changed form field whose name and its parent's come to more than
	// 1 KB, cut from the front: "é" × 300 then "a", twice (1,203 bytes;
	// the last 1,024 start in the middle of an é).
	objs[200] = fmt.Sprintf("<< /T (%s) /Parent 201 0 R >>", strings.Repeat(`\351`, 300)+"a")
	objs[201] = fmt.Sprintf("<< /T (%s) >>", strings.Repeat(`\351`, 300)+"a")
	doc := appendUpdate(p.signPDF(t, signOpts{}), objs, 1)

	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	r := verifyBytes(t, opts, doc)
	if len(r.Signatures) != 2 {
		t.Fatalf("want 2 signatures, got %d: %v", len(r.Signatures), r.Errors)
	}
	var found bool
	for _, s := range r.Signatures {
		if !strings.HasPrefix(s.Field, "aé") {
			continue
		}
		found = true
		if len(s.Field) > 1024 || len(s.Field) < 1023 || !utf8.ValidString(s.Field) || strings.ContainsRune(s.Field, utf8.RuneError) {
			t.Fatalf("signature field name of %d bytes ending %q: want at most 1,024 bytes, cut between characters", len(s.Field), s.Field[len(s.Field)-6:])
		}
	}
	if !found {
		t.Fatal("no signature field named aé…")
	}

	f, err := pdf.Open(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	name := fieldName(f, f.Dict(pdf.Ref{Num: 200}, -1), -1)
	if len(name) > 1024 || len(name) < 1023 || !utf8.ValidString(name) || strings.ContainsRune(name, utf8.RuneError) || !strings.HasSuffix(name, "éa."+strings.Repeat("é", 300)+"a") {
		t.Fatalf("changed field name of %d bytes starting %q: want the last 1,024 bytes or fewer, cut between characters", len(name), name[:min(6, len(name))])
	}
}
