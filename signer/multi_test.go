package signer

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signer/pdfdoc"
)

func TestSecondSignatureKeepsFirstValid(t *testing.T) {
	p := getPKI(t)
	ctx := context.Background()
	for _, stream := range []bool{false, true} {
		in := testPDF(2, 0)
		if stream {
			in = toXrefStream(t, in)
		}
		first, err := SignBytes(ctx, in, signOpts(p, false, LevelBT))
		if err != nil {
			t.Fatal(err)
		}
		o := signOpts(p, true, LevelBLT)
		o.Page = 1
		o.Appearance = &Appearance{Rect: [4]float64{50, 50, 300, 110}}
		second, err := SignBytes(ctx, first, o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(second[:len(first)], first) {
			t.Fatal("second signature changed the earlier bytes")
		}
		if !bytes.Contains(second, []byte("/T (Signature2)")) {
			t.Fatal("second field is not Signature2")
		}
		qpdfCheck(t, second)
		assertPdfsig(t, p, second, 2)
		assertOpenSSL(t, p, second, true)
	}
}

func TestCertification(t *testing.T) {
	p := getPKI(t)
	ctx := context.Background()
	for _, perm := range []int{1, 2, 3} {
		o := signOpts(p, false, LevelBB)
		o.DocMDP = perm
		certified, err := SignBytes(ctx, testPDF(1, 0), o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(certified, []byte("/TransformMethod /DocMDP")) || !bytes.Contains(certified, []byte("/Perms <</DocMDP")) {
			t.Fatal("no DocMDP reference or /Perms")
		}
		qpdfCheck(t, certified)
		assertPdfsig(t, p, certified, 1)
		approved, err := SignBytes(ctx, certified, signOpts(p, true, LevelBB))
		if perm == 1 {
			if !errors.Is(err, ErrCertificationForbids) {
				t.Fatalf("P=1: got %v, want ErrCertificationForbids", err)
			}
			// Extending (DSS + document time-stamp) stays allowed.
			var ext bytes.Buffer
			if err := Extend(ctx, bytes.NewReader(certified), int64(len(certified)), &ext, p.validation()); err != nil {
				t.Fatalf("extending a P=1 document: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("P=%d: approval signature refused: %v", perm, err)
		}
		assertPdfsig(t, p, approved, 2)
		// A second certification is refused.
		o2 := signOpts(p, true, LevelBB)
		o2.DocMDP = 2
		if _, err := SignBytes(ctx, certified, o2); !errors.Is(err, ErrAlreadySigned) {
			t.Fatalf("second certification: got %v, want ErrAlreadySigned", err)
		}
	}
}

func TestExtend(t *testing.T) {
	p := getPKI(t)
	ctx := context.Background()
	signed, err := SignBytes(ctx, testPDF(1, 0), signOpts(p, false, LevelBT))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Extend(ctx, bytes.NewReader(signed), int64(len(signed)), &out, p.validation()); err != nil {
		t.Fatal(err)
	}
	qpdfCheck(t, out.Bytes())
	assertPdfsig(t, p, out.Bytes(), 1)
	assertOpenSSL(t, p, out.Bytes(), true)
	// Extending again adds to the DSS and a second document time-stamp.
	var again bytes.Buffer
	if err := Extend(ctx, bytes.NewReader(out.Bytes()), int64(out.Len()), &again, p.validation()); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(again.Bytes(), []byte("/Type /DocTimeStamp")); n != 2 {
		t.Fatalf("%d document time-stamps, want 2", n)
	}
	qpdfCheck(t, again.Bytes())
	assertOpenSSL(t, p, again.Bytes(), true)

	unsigned := testPDF(1, 0)
	if err := Extend(ctx, bytes.NewReader(unsigned), int64(len(unsigned)), &out, p.validation()); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("unsigned: got %v, want ErrNoSignature", err)
	}
}

// TestCorpus signs and extends PDFs signed by other software.
func TestCorpus(t *testing.T) {
	p := getPKI(t)
	dir := testenv.SharedCorpus(t)
	v := p.validation()
	v.AllowMissingRevocation = true
	for _, name := range []string{"dss/pades-bes.pdf", "dss/PAdES-LT.pdf", "dss/doc-firmado-LT.pdf", "pyhanko/pades-lta-dss-indirect-arrs-test.pdf", "digitorus/testfile20.pdf"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			validBefore := strings.Count(pdfsig(t, p, in), "Signature is Valid.")
			var ext bytes.Buffer
			if err := Extend(context.Background(), bytes.NewReader(in), int64(len(in)), &ext, v); err != nil && !errors.Is(err, ErrNoSignature) {
				t.Fatalf("extend: %v", err)
			} else if err == nil {
				qpdfCheck(t, ext.Bytes())
				// The earlier signatures stay as valid as they were.
				if after := strings.Count(pdfsig(t, p, ext.Bytes()), "Signature is Valid."); after != validBefore {
					t.Fatalf("valid signatures: %d before extending, %d after", validBefore, after)
				}
			}
			o := signOpts(p, false, LevelBT)
			out, err := SignBytes(context.Background(), in, o)
			if errors.Is(err, ErrCertificationForbids) {
				return
			}
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			qpdfCheck(t, out)
			s := pdfsig(t, p, out)
			if !strings.Contains(s, "Test Signer EC") {
				t.Fatalf("pdfsig does not see the new signature:\n%s", s)
			}
			if after := strings.Count(s, "Signature is Valid."); after != validBefore+1 {
				t.Fatalf("valid signatures: %d before signing, %d after:\n%s", validBefore, after, s)
			}
		})
	}
}

// hangingTSA never answers before the context ends.
type hangingTSA struct{}

func (hangingTSA) Timestamp(ctx context.Context, _ []byte, _ crypto.Hash) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestUnreachableTSA(t *testing.T) {
	p := getPKI(t)
	o := signOpts(p, false, LevelBT)
	o.Validation.TSA = hangingTSA{}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	in := testPDF(1, 0)
	_, err := Sign(ctx, bytes.NewReader(in), int64(len(in)), &out, o)
	if !errors.Is(err, ErrTimestamp) {
		t.Fatalf("got %v, want ErrTimestamp", err)
	}
	if out.Len() != 0 {
		t.Fatal("output written despite the failure")
	}
	// Without a deadline from the caller, the TSA timeout still applies.
	o.Validation.Timeout = 100 * time.Millisecond
	start := time.Now()
	if _, err := Sign(context.Background(), bytes.NewReader(in), int64(len(in)), &out, o); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("got %v, want ErrTimestamp", err)
	}
	if time.Since(start) > 5*time.Second || out.Len() != 0 {
		t.Fatal("the TSA timeout was not applied, or output was written")
	}
}

func TestBadInput(t *testing.T) {
	p := getPKI(t)
	o := signOpts(p, false, LevelBB)
	good := testPDF(1, 0)
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"empty":     {nil, ErrNotPDF},
		"text":      {[]byte("hello, world, this is not a PDF at all"), ErrNotPDF},
		"truncated": {good[:len(good)/2], ErrMalformed},
		"no-xref":   {bytes.Replace(good, []byte("startxref"), []byte("startxxxx"), 1), ErrMalformed},
		"bad-xref":  {bytes.Replace(good, []byte("xref\n0 "), []byte("xref\nX "), 1), ErrMalformed},
		"encrypted": {bytes.Replace(good, []byte("/Root 1 0 R>>"), []byte("/Root 1 0 R /Encrypt <</Filter /Standard>>>>"), 1), ErrEncrypted},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Sign(context.Background(), bytes.NewReader(tc.in), int64(len(tc.in)), &out, o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if out.Len() != 0 {
				t.Fatal("output written")
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for s, want := range map[string]Level{"B-B": LevelBB, "b-t": LevelBT, "PAdES-B-LT": LevelBLT, "B-LTA": LevelBLTA} {
		got, err := ParseLevel(s)
		if err != nil || got != want || (got.String() != strings.TrimPrefix(strings.ToUpper(s), "PADES-")) {
			t.Fatalf("ParseLevel(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseLevel("B-X"); !errors.Is(err, ErrOptions) {
		t.Fatalf("ParseLevel(B-X): %v", err)
	}
}

func TestBeforeSignRefusal(t *testing.T) {
	p := getPKI(t)
	o := signOpts(p, false, LevelBB)
	refused := errors.New("SAD not bound to this hash")
	var gotDoc, gotDTBS []byte
	o.BeforeSign = func(_ context.Context, doc, dtbs []byte) error {
		gotDoc, gotDTBS = doc, dtbs
		return refused
	}
	var out bytes.Buffer
	in := testPDF(1, 0)
	if _, err := Sign(context.Background(), bytes.NewReader(in), int64(len(in)), &out, o); !errors.Is(err, refused) {
		t.Fatalf("got %v", err)
	}
	if out.Len() != 0 || len(gotDoc) != 32 || len(gotDTBS) != 32 {
		t.Fatalf("output %d bytes, digests %d/%d", out.Len(), len(gotDoc), len(gotDTBS))
	}
}

func TestNoSuchPage(t *testing.T) {
	p := getPKI(t)
	o := signOpts(p, false, LevelBB)
	o.Page = 5
	if _, err := SignBytes(context.Background(), testPDF(2, 0), o); !errors.Is(err, ErrOptions) {
		t.Fatalf("got %v, want ErrOptions", err)
	}
}

// TestVisibleAppearance renders the page with poppler's pdftoppm and checks
// the signature box is drawn (grey fill, dark text, the image) where it was
// asked for.
func TestVisibleAppearance(t *testing.T) {
	p := getPKI(t)
	var jpg bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 10, 10, 90, 255
	}
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	for _, withImage := range []bool{false, true} {
		o := signOpts(p, false, LevelBB)
		o.Appearance = &Appearance{Rect: [4]float64{100, 100, 400, 160}}
		if withImage {
			o.Appearance.JPEG = jpg.Bytes()
		}
		out, err := SignBytes(context.Background(), testPDF(1, 0), o)
		if err != nil {
			t.Fatal(err)
		}
		assertPdfsig(t, p, out, 1)
		qpdfCheck(t, out)
		w, h, px := renderPage(t, out)
		_ = w
		grey, dark := 0, 0
		for y := h - 160; y < h-100; y++ {
			for x := 100; x < 400; x++ {
				switch v := px(x, y); {
				case v > 230 && v < 250:
					grey++
				case v < 128:
					dark++
				}
			}
		}
		if grey < 5000 || dark < 50 {
			t.Fatalf("signature box not drawn: %d grey, %d dark pixels", grey, dark)
		}
		if px(50, h-50) != 255 {
			t.Fatal("page outside the box is not white")
		}
		if withImage {
			// The image fills x 102..202 (a third of the box), 50 points high.
			imgDark := 0
			for y := h - 150; y < h-110; y++ {
				for x := 106; x < 198; x++ {
					if px(x, y) < 100 {
						imgDark++
					}
				}
			}
			if imgDark < 40*92*9/10 {
				t.Fatalf("image not drawn: %d dark pixels", imgDark)
			}
		}
	}
}

// renderPage renders page 1 at 72 dpi in grey with pdftoppm.
func renderPage(t *testing.T, pdf []byte) (int, int, func(x, y int) byte) {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "v.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, testenv.Tool(t, "pdftoppm"), "-r", "72", "-gray", "-f", "1", "-l", "1", f, filepath.Join(dir, "page"))
	matches, _ := filepath.Glob(filepath.Join(dir, "page*.pgm"))
	if len(matches) != 1 {
		t.Fatalf("pdftoppm output: %v", matches)
	}
	img, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	var w, h, maxv, hdr int
	if _, err := fmt.Sscanf(string(img), "P5\n%d %d\n%d\n", &w, &h, &maxv); err != nil {
		t.Fatalf("pgm header: %v", err)
	}
	for n, i := 0, 0; i < len(img); i++ {
		if img[i] == '\n' {
			n++
			if n == 3 {
				hdr = i + 1
				break
			}
		}
	}
	if len(img) < hdr+w*h {
		t.Fatal("short pgm")
	}
	return w, h, func(x, y int) byte { return img[hdr+y*w+x] } // y from the top
}

// withEmptyField adds an unsigned, visible signature field named name.
func withEmptyField(t *testing.T, in []byte, name string) []byte {
	t.Helper()
	rd, err := pdfdoc.Open(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := rd.Catalog()
	pageRef, page, err := rd.Page(0)
	if err != nil {
		t.Fatal(err)
	}
	u := pdfdoc.NewUpdate(rd)
	f := u.Alloc()
	u.WriteObject(f, pdfdoc.Dict{"Type": pdfdoc.Name("Annot"), "Subtype": pdfdoc.Name("Widget"), "FT": pdfdoc.Name("Sig"),
		"T": pdfdoc.String(name), "P": pageRef, "Rect": pdfdoc.Array{int64(300), int64(600), int64(500), int64(650)}, "F": int64(4)})
	page = page.Clone()
	page["Annots"] = pdfdoc.Array{f}
	u.WriteObject(pageRef, page)
	cat = cat.Clone()
	cat["AcroForm"] = pdfdoc.Dict{"Fields": pdfdoc.Array{f}}
	u.WriteObject(rd.RootRef(), cat)
	upd, err := u.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte(nil), in...), upd...)
}

func TestFillExistingField(t *testing.T) {
	p := getPKI(t)
	in := withEmptyField(t, testPDF(1, 0), "Approver")
	o := signOpts(p, false, LevelBB)
	o.FieldName = "Approver"
	out, err := SignBytes(context.Background(), in, o)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("(Signature1)")) {
		t.Fatal("a new field was created instead of filling Approver")
	}
	qpdfCheck(t, out)
	assertPdfsig(t, p, out, 1)
	if s := pdfsig(t, p, out); !strings.Contains(s, "Signature Field Name: Approver") {
		t.Fatalf("pdfsig: %s", s)
	}
	if _, err := SignBytes(context.Background(), out, o); !errors.Is(err, ErrOptions) {
		t.Fatalf("signing a signed field: got %v, want ErrOptions", err)
	}
	// Without a name, a new field is added next to the filled one. (Another
	// signer: poppler 22.12 reports "Unknown issue with Certificate" for
	// the second of two signatures by the same certificate, even though
	// both verify; openssl checks each one.)
	o2 := signOpts(p, true, LevelBB)
	again, err := SignBytes(context.Background(), out, o2)
	if err != nil {
		t.Fatal(err)
	}
	assertPdfsig(t, p, again, 2)
	assertOpenSSL(t, p, again, false)
}
