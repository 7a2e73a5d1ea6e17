package verify

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
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

// TestSigDictTextCutBetweenCharacters: the signer's /Reason, /Location and
// /ContactInfo are cut at 1 KB in the report, as field names are; the cut
// went through the bytes of the decoded text, so a text of non-ASCII
// characters could end in half of one (U+FFFD in the JSON, invalid UTF-8
// in the text report). They are now cut between characters too.
func TestSigDictTextCutBetweenCharacters(t *testing.T) {
	p := newTestPKI(t)
	doc := p.signPDF(t, signOpts{})
	f, err := pdf.Open(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	utf16be := []byte{0xfe, 0xff, 0, 'a'}
	for range 700 {
		utf16be = append(utf16be, 0x06, 0x39) // ع, two bytes in UTF-8
	}
	s := &pdf.SigField{Value: pdf.Dict{
		"Reason":      pdf.String{Bytes: append([]byte("a"), bytes.Repeat([]byte{0xe9}, 700)...)}, // é in PDFDocEncoding
		"Location":    pdf.String{Bytes: utf16be},
		"ContactInfo": pdf.String{Bytes: append([]byte{0xef, 0xbb, 0xbf, 'a'}, strings.Repeat("é", 700)...)},
	}}
	var sr report.Signature
	readSigDict(f, s, &sr)
	for key, v := range map[string]string{"Reason": sr.Reason, "Location": sr.Location, "ContactInfo": sr.ContactInfo} {
		if len(v) > 1024 || len(v) < 1023 || !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError) || !strings.HasPrefix(v, "a") {
			t.Errorf("/%s of %d bytes ending %q: want at most 1,024 bytes, cut between characters", key, len(v), v[max(0, len(v)-6):])
		}
	}
}

// TestLockedFieldWithLongName: a FieldMDP lock (or /Lock) names the
// fields it locks in full, while the name of a changed field is cut at
// 1 KB (fieldName). A locked field with a longer name then matched no
// name of the lock, and filling it in after the signature passed as an
// allowed form fill. The lock's names are now cut the same way.
func TestLockedFieldWithLongName(t *testing.T) {
	p := newTestPKI(t)
	part := strings.Repeat(`\351`, 300) + "a" // é × 300 then a: 601 bytes in UTF-8
	doc := appendUpdate(p.signPDF(t, signOpts{}), map[int]string{
		200: fmt.Sprintf("<< /T (%s) /Parent 201 0 R >>", part),
		201: fmt.Sprintf("<< /T (%s) >>", part),
		202: fmt.Sprintf("<< /Action /Include /Fields [(%s.%s) (short)] >>", part, part),
		203: fmt.Sprintf("<< /Action /Exclude /Fields [(%s.%s)] >>", part, part),
	}, 1)
	f, err := pdf.Open(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	changed := fieldName(f, f.Dict(pdf.Ref{Num: 200}, -1), -1)
	if len(changed) > maxFieldNameBytes {
		t.Fatalf("fieldName: %d bytes", len(changed))
	}
	if l := newFieldLock(f, f.Dict(pdf.Ref{Num: 202}, -1), -1); !l.locks(changed) || !l.locks("short") || l.locks("other") {
		t.Fatal("an Include lock naming a field of more than 1 KB does not lock it")
	}
	if l := newFieldLock(f, f.Dict(pdf.Ref{Num: 203}, -1), -1); l.locks(changed) || !l.locks("other") {
		t.Fatal("an Exclude lock naming a field of more than 1 KB does not leave it free")
	}
	// A long name of many dots costs its length, not a string per part.
	if got := cutFieldName(strings.Repeat(".", 1<<20) + "x"); got != strings.Repeat(".", 31)+"x" {
		t.Fatalf("cutFieldName of 1 MiB of dots: %q", got)
	}
}
