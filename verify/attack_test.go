package verify

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"sort"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

// appendUpdate appends an incremental update defining objs (number → body)
// with the given /Root.
func appendUpdate(b []byte, objs map[int]string, root int) []byte {
	start := len(b)
	var u bytes.Buffer
	var nums []int
	for n := range objs {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	offs := map[int]int{}
	size := 0
	for _, n := range nums {
		offs[n] = start + u.Len()
		fmt.Fprintf(&u, "%d 0 obj\n%s\nendobj\n", n, objs[n])
		if n+1 > size {
			size = n + 1
		}
	}
	prev := bytes.LastIndex(b, []byte("startxref\n"))
	var prevOff int
	fmt.Sscanf(string(b[prev+len("startxref\n"):]), "%d", &prevOff) //nolint:errcheck
	xref := start + u.Len()
	u.WriteString("xref\n")
	for _, n := range nums {
		fmt.Fprintf(&u, "%d 1\n%010d 00000 n \n", n, offs[n])
	}
	if size < 8 {
		size = 8
	}
	fmt.Fprintf(&u, "trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", size, root, prevOff, xref)
	return append(b, u.Bytes()...)
}

func TestShadowAttacks(t *testing.T) {
	p := newTestPKI(t)
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	for _, c := range []struct {
		name string
		objs map[int]string
		root int
		want report.Indication
	}{
		{"new catalog with a new page tree", map[int]string{
			9:  "<< /Type /Catalog /Pages 10 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>",
			10: "<< /Type /Pages /Kids [11 0 R] /Count 1 >>",
			11: "<< /Type /Page /Parent 10 0 R /MediaBox [0 0 200 200] >>"}, 9, report.TotalFailed},
		{"signature field removed", map[int]string{1: "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] >> >>"}, 1, report.TotalFailed},
		{"page content replaced", map[int]string{6: "<< /Length 10 >>\nstream\nBT ET q Q \nendstream"}, 1, report.TotalFailed},
		{"signature value replaced", map[int]string{5: "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange [0 1 2 3] /Contents <00> >>"}, 1, report.TotalFailed},
		{"open action added", map[int]string{1: "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>"}, 1, report.TotalFailed},
		{"unchanged re-save", map[int]string{2: "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"}, 1, report.TotalPassed},
		{"document information", map[int]string{12: "<< /Producer (x) >>"}, 1, report.TotalPassed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := verifyBytes(t, opts, appendUpdate(p.signPDF(t, signOpts{}), c.objs, c.root))
			if len(r.Signatures) != 1 {
				t.Fatalf("want the one signature reported: %s", summary(r))
			}
			if r.Signatures[0].Indication != c.want {
				t.Fatalf("got %s, want %s: %s", r.Signatures[0].Indication, c.want, summary(r))
			}
		})
	}
}
