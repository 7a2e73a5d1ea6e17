package signer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var largeFlag = flag.Bool("large", false, "sign a 200 MB PDF in TestLargePDF (default 50 MB)")

// writeBigPDF writes a one-page PDF of about size bytes (one large content
// stream) to path without holding it in memory.
func writeBigPDF(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	var offs []int64
	write := func(s string) { n, _ := w.WriteString(s); off += int64(n) }
	obj := func(s string) {
		offs = append(offs, off)
		write(fmt.Sprintf("%d 0 obj\n%s\nendobj\n", len(offs), s))
	}
	write("%PDF-1.7\n")
	obj("<</Type /Catalog /Pages 2 0 R>>")
	obj("<</Type /Pages /Kids [3 0 R] /Count 1>>")
	obj("<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R>>")
	line := "% a large content stream line for the streaming signature test ....\n"
	n := size / int64(len(line))
	offs = append(offs, off)
	write(fmt.Sprintf("4 0 obj\n<</Length %d>>\nstream\n", n*int64(len(line))))
	for i := int64(0); i < n; i++ {
		write(line)
	}
	write("\nendstream\nendobj\n")
	xref := off
	write(fmt.Sprintf("xref\n0 %d\n0000000000 65535 f\r\n", len(offs)+1))
	for _, o := range offs {
		write(fmt.Sprintf("%010d 00000 n\r\n", o))
	}
	write(fmt.Sprintf("trailer\n<</Size %d /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestLargePDF signs a 50 MB PDF (200 MB with -large) at B-T in a child
// process and asserts the child's peak RSS (VmHWM) stays under 100 MB and
// well under the file size, then checks the result with pdfsig.
func TestLargePDF(t *testing.T) {
	size := int64(50 << 20)
	if *largeFlag {
		size = 200 << 20
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "big.pdf"), filepath.Join(dir, "big-signed.pdf")
	writeBigPDF(t, in, size)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLargeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "THIQA_SIGNER_LARGE_IN="+in, "THIQA_SIGNER_LARGE_OUT="+out)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, res)
	}
	i := strings.Index(string(res), "VMHWM_KB=")
	if i < 0 {
		t.Fatalf("child printed no VmHWM:\n%s", res)
	}
	kb, _ := strconv.ParseInt(strings.Fields(string(res[i+len("VMHWM_KB="):]))[0], 10, 64)
	t.Logf("signing a %d MB PDF at B-T: peak RSS %d MB", size>>20, kb>>10)
	// Reading the whole file into memory would take at least its size.
	// Half of it is the bound; under the race detector, whose shadow
	// memory about triples a process's RSS, the whole of it.
	bound := size / 2
	if raceBuild {
		bound = size
	}
	if kb<<10 > 100<<20 || kb<<10 > bound {
		t.Fatalf("peak RSS %d kB is too high for a %d MB file", kb, size>>20)
	}
	signed, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	head := make([]byte, 1<<20)
	if _, err := orig.ReadAt(head, size/2); err != nil || !bytes.Equal(head, signed[size/2:size/2+1<<20]) {
		t.Fatal("original bytes changed")
	}
	rootDER, err := os.ReadFile(out + ".root")
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	assertPdfsig(t, &testPKI{root: root}, signed, 1)
}

// TestLargeChild is the child process of TestLargePDF.
func TestLargeChild(t *testing.T) {
	in, out := os.Getenv("THIQA_SIGNER_LARGE_IN"), os.Getenv("THIQA_SIGNER_LARGE_OUT")
	if in == "" {
		return // only meaningful as TestLargePDF's child
	}
	p := getPKI(t)
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(o, 1<<20)
	if _, err := Sign(context.Background(), f, st.Size(), w, signOpts(p, false, LevelBT)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out+".root", p.root.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			fmt.Printf("VMHWM_KB=%s\n", strings.Fields(l)[1])
		}
	}
}
