package pdfdoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// minimalPDF returns a one-page PDF with a classic cross-reference table.
func minimalPDF() []byte {
	var b bytes.Buffer
	var offs []int
	b.WriteString("%PDF-1.4\n")
	for _, o := range []string{
		"<</Type /Catalog /Pages 2 0 R>>",
		"<</Type /Pages /Kids [3 0 R] /Count 1>>",
		"<</Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Annots [] >>",
		"<</Length 5 0 R>>\nstream\nBT ET\nendstream",
		"6",
	} {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d /Root 1 0 R /ID [<0102> <0102>]>>\nstartxref\n%d\n%%%%EOF", len(offs)+1, x)
	return b.Bytes()
}

func exercise(rd *Reader) {
	_, _ = rd.Catalog()
	_, _, _ = rd.Page(0)
	for n := 0; n < rd.NextObjectNumber() && n < 1000; n++ {
		o, err := rd.Get(Ref{Num: n})
		if s, ok := o.(*Stream); ok && err == nil {
			_, _ = rd.StreamData(s, 1<<20)
		}
	}
}

func TestReadAndUpdate(t *testing.T) {
	qpdf := testenv.Tool(t, "qpdf")
	classic := minimalPDF()
	dir := t.TempDir()
	in, conv := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "stream.pdf")
	if err := os.WriteFile(in, classic, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(qpdf, "--object-streams=generate", in, conv).CombinedOutput(); err != nil {
		t.Fatalf("qpdf: %v %s", err, out)
	}
	stream, err := os.ReadFile(conv)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string][]byte{"classic": classic, "xref-stream": stream} {
		t.Run(name, func(t *testing.T) {
			rd, err := Open(bytes.NewReader(doc), int64(len(doc)))
			if err != nil {
				t.Fatal(err)
			}
			if rd.XrefStream != (name == "xref-stream") {
				t.Fatalf("XrefStream = %v", rd.XrefStream)
			}
			ref, page, err := rd.Page(0)
			if err != nil || page.Name("Type") != "Page" {
				t.Fatalf("page: %v %v", page, err)
			}
			u := NewUpdate(rd)
			page = page.Clone()
			page["Rotate"] = int64(90)
			u.WriteObject(ref, page)
			extra := u.Alloc()
			if err := u.WriteStream(extra, Dict{"Type": Name("Test")}, []byte("hello (world) \\ "), true); err != nil {
				t.Fatal(err)
			}
			upd, err := u.Finish()
			if err != nil {
				t.Fatal(err)
			}
			full := append(append([]byte(nil), doc...), upd...)
			rd2, err := Open(bytes.NewReader(full), int64(len(full)))
			if err != nil {
				t.Fatal(err)
			}
			if rd2.XrefStream != rd.XrefStream {
				t.Fatal("the update changed the cross-reference kind")
			}
			_, p2, err := rd2.Page(0)
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := p2.Int("Rotate"); r != 90 {
				t.Fatal("updated page not read back")
			}
			o, err := rd2.Get(extra)
			s, ok := o.(*Stream)
			if err != nil || !ok {
				t.Fatalf("new stream: %v %v", o, err)
			}
			data, err := rd2.StreamData(s, 1024)
			if err != nil || string(data) != "hello (world) \\ " {
				t.Fatalf("stream data %q %v", data, err)
			}
			f := filepath.Join(t.TempDir(), "u.pdf")
			_ = os.WriteFile(f, full, 0o600)
			if out, err := exec.Command(qpdf, "--check", f).CombinedOutput(); err != nil || bytes.Contains(out, []byte("WARNING")) {
				t.Fatalf("qpdf --check: %v\n%s", err, out)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	good := minimalPDF()
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"not-pdf":    {[]byte("GIF89a"), ErrNotPDF},
		"truncated":  {good[:len(good)-40], ErrMalformed},
		"bad-offset": {bytes.Replace(good, []byte("startxref\n"), []byte("startxref\n9"), 1), ErrMalformed},
		"loop":       {bytes.Replace(good, []byte("/Size 6"), []byte("/Prev 0 /Size 6"), 1), nil},
		"encrypted":  {bytes.Replace(good, []byte("/Size 6"), []byte("/Encrypt 9 0 R /Size 6"), 1), ErrEncrypted},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tc.in), int64(len(tc.in)))
			if tc.want == nil {
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendObjectRoundTrip(t *testing.T) {
	d := Dict{"A": Array{int64(1), 2.5, true, nil, Name("N a#me"), String("s(t)r\\\n"), HexString{0, 0xff}, Ref{3, 0}}, "B": Dict{"C": Name("D")}}
	b := AppendObject(nil, d)
	lx := newBytesLexer(b)
	o, err := lx.object(0)
	if err != nil {
		t.Fatal(err)
	}
	again := AppendObject(nil, o)
	// HexString reads back as String; compare through a second round.
	lx = newBytesLexer(again)
	o2, err := lx.object(0)
	if err != nil || !bytes.Equal(AppendObject(nil, o2), again) {
		t.Fatalf("round trip: %s vs %s (%v)", b, again, err)
	}
}

// FuzzReadPDF opens arbitrary bytes as a PDF and walks its objects; it must
// never panic.
func FuzzReadPDF(f *testing.F) {
	f.Add(minimalPDF())
	f.Fuzz(func(t *testing.T, b []byte) {
		var r io.ReaderAt = bytes.NewReader(b)
		if len(b)%2 == 0 { // parsed in place: the input must stay untouched
			r = memory(b)
			orig := bytes.Clone(b)
			defer func() {
				if !bytes.Equal(b, orig) {
					t.Fatal("parsing in place changed the input")
				}
			}()
		}
		rd, err := Open(r, int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrNotPDF) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrEncrypted) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		exercise(rd)
		u := NewUpdate(rd)
		u.WriteObject(u.Alloc(), Dict{"X": int64(1)})
		if _, err := u.Finish(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSlicer: a file in memory is lent, not copied, by Concat, on both
// sides of the base/tail boundary; a base that cannot lend is read.
func TestSlicer(t *testing.T) {
	c := &Concat{Base: memory("0123456789"), BaseSize: 10, Tail: []byte("abcdef")}
	for _, tc := range []struct {
		off  int64
		n    int
		want string
	}{{0, 4, "0123"}, {8, 10, "89"}, {10, 3, "abc"}, {14, 9, "ef"}, {16, 1, ""}, {-1, 3, ""}, {3, 0, ""}} {
		if got := string(c.Slice(tc.off, tc.n)); got != tc.want {
			t.Fatalf("Slice(%d, %d) = %q, want %q", tc.off, tc.n, got, tc.want)
		}
	}
	if got := (&Concat{Base: bytes.NewReader([]byte("0123")), BaseSize: 4}).Slice(0, 2); got != nil {
		t.Fatalf("a plain reader lent %q", got)
	}
	// The same file parses alike lent or read.
	var f bytes.Buffer
	f.WriteString("%PDF-1.7\n")
	off := f.Len()
	f.WriteString("1 0 obj\n<</Type /Catalog /Pages 2 0 R /Name (x y)>>\nendobj\n")
	xref := f.Len()
	fmt.Fprintf(&f, "xref\n0 2\n0000000000 65535 f\r\n%010d 00000 n\r\ntrailer\n<</Size 2 /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n", off, xref)
	for _, r := range []io.ReaderAt{memory(f.Bytes()), bytes.NewReader(f.Bytes())} {
		rd, err := Open(r, int64(f.Len()))
		if err != nil {
			t.Fatal(err)
		}
		cat, err := rd.Catalog()
		if name, _ := cat["Name"].(String); err != nil || cat.Name("Type") != "Catalog" || string(name) != "x y" {
			t.Fatalf("%T: catalog %v %v", r, cat, err)
		}
	}
}

// TestWriteObjectFunc writes the same update as WriteObject with Raw.
func TestWriteObjectFunc(t *testing.T) {
	in := minimalPDF()
	var outs [2][]byte
	var ats [2]int64
	for i := range outs {
		rd, err := Open(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			t.Fatal(err)
		}
		u := NewUpdate(rd)
		body := []byte("<</A 1 /B (two)>>")
		if i == 0 {
			ats[i] = u.WriteObject(u.Alloc(), Raw(body))
		} else {
			ats[i] = u.WriteObjectFunc(u.Alloc(), 4, func(b []byte) []byte { return append(b, body...) })
		}
		if outs[i], err = u.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(outs[0], outs[1]) || ats[0] != ats[1] {
		t.Fatalf("WriteObjectFunc wrote\n%s\nat %d, WriteObject\n%s\nat %d", outs[1], ats[1], outs[0], ats[0])
	}
}
