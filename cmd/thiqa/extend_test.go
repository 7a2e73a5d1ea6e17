package main

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signing"
)

// TestArchiveThroughTheBinary: `thiqa seal` with a visible appearance and a
// reason that `thiqa verify` shows; `thiqa extend` of one file in process
// (--data) and through the server (--url); the archive job over a folder:
// renews what has no document time-stamp, skips the unsigned, the broken
// and what is not a PDF, saying why, and does nothing more when run again.
func TestArchiveThroughTheBinary(t *testing.T) {
	f := newSignFixture(t)
	agency := f.token(t, "NTROM-1234567", "agency")
	cred := f.credential(t, "organisation-seal", orgSubject())
	in := f.path("plain.pdf")
	writeFile(t, in, string(samplePDF(t, 8<<10)))

	// A visible seal by the operator's CLI; thiqa verify shows the reason.
	mustThiqa(t, nil, "seal", "--data", f.dir, "--credential", cred, "--level", "B-T", "--in", in, "--out", f.path("visible.pdf"),
		"--visible", "--page", "1", "--rect", "300,40,580,130", "--reason", "Issued", "--location", "Muscat")
	visible := []byte(mustRead(t, f.path("visible.pdf")))
	f.checkPDF(t, "visible.pdf", visible, "B-T")
	if out, err := exec.Command(testenv.Tool(t, "pdftotext"), f.path("visible.pdf"), "-").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "Ministry of") || !strings.Contains(string(out), "Reason: Issued") {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	r := thiqa(t, nil, "verify", f.path("visible.pdf"), "--data", f.dir)
	if !strings.Contains(r.stdout, "reason: Issued") || !strings.Contains(r.stdout, "location: Muscat") {
		t.Fatalf("thiqa verify does not show the reason and location:\n%s", r.stdout)
	}
	r = thiqa(t, nil, "seal", "--data", f.dir, "--credential", cred, "--in", in, "--out", f.path("x.pdf"), "--visible", "--rect", "900,900,990,990")
	if r.code != 1 || !strings.Contains(r.stderr, "outside page 1") {
		t.Fatalf("a rectangle outside the page: %d %s", r.code, r.stderr)
	}

	// One file, in process and through the server.
	mustThiqa(t, nil, "extend", "--data", f.dir, "--in", f.path("visible.pdf"), "--out", f.path("lta.pdf"), "--level", "B-LTA")
	f.checkPDF(t, "lta.pdf", []byte(mustRead(t, f.path("lta.pdf"))), "B-LTA")
	writeFile(t, f.path("agency.jwt"), agency)
	mustThiqa(t, nil, "extend", "--url", f.srv.base, "--token-file", f.path("agency.jwt"), "--in", f.path("visible.pdf"),
		"--out", f.path("lta-remote.pdf"), "--level", "B-LTA")
	f.checkPDF(t, "lta-remote.pdf", []byte(mustRead(t, f.path("lta-remote.pdf"))), "B-LTA")
	r = thiqa(t, nil, "extend", "--data", f.dir, "--in", in, "--out", f.path("nothing.pdf"))
	if r.code != 1 || !strings.Contains(r.stderr, "no signature") {
		t.Fatalf("extending an unsigned PDF: %d %s", r.code, r.stderr)
	}

	// The archive job.
	archive := filepath.Join(f.tmp, "archive")
	if err := os.MkdirAll(filepath.Join(archive, "2026"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.pdf", "2026/b.pdf"} {
		code, _, body := vfySend(t, f.srv, "/api/v1/seal?level=B-T&credential="+cred, agency, "application/pdf", samplePDF(t, 4<<10))
		if code != http.StatusOK {
			t.Fatalf("seal: %d %s", code, body)
		}
		writeFile(t, filepath.Join(archive, name), string(body))
	}
	broken := bytes.Replace(visible, []byte("Thiqa sample"), []byte("Thiqa simple"), 1)
	writeFile(t, filepath.Join(archive, "broken.pdf"), string(broken))
	writeFile(t, filepath.Join(archive, "unsigned.pdf"), mustRead(t, in))
	writeFile(t, filepath.Join(archive, "notes.PDF"), "not a PDF at all")
	r = mustThiqa(t, nil, "extend", "--data", f.dir, "--dir", archive, "--level", "B-LTA", "--renew-before", "90d")
	for _, want := range []string{"a.pdf: renewed (no document time-stamp yet)", "b.pdf: renewed", "broken.pdf: skipped: ",
		"unsigned.pdf: skipped: no signature", "notes.PDF: skipped: not a readable signed PDF", "5 PDF(s): 2 renewed, 3 skipped, 0 failed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("archive job output lacks %q:\n%s", want, r.stdout)
		}
	}
	f.checkPDF(t, "a-renewed.pdf", []byte(mustRead(t, filepath.Join(archive, "a.pdf"))), "B-LTA")
	sums := func() [32]byte {
		var all []byte
		for _, n := range []string{"a.pdf", "2026/b.pdf", "broken.pdf"} {
			all = append(all, mustRead(t, filepath.Join(archive, n))...)
		}
		return sha256.Sum256(all)
	}
	before := sums()
	// Again: nothing to do (idempotent), and a window longer than the TSA
	// certificate's life does not renew what was just renewed.
	for _, period := range []string{"90d", "3650d"} {
		r = mustThiqa(t, nil, "extend", "--data", f.dir, "--dir", archive, "--renew-before", period)
		if !strings.Contains(r.stdout, "0 renewed, 5 skipped, 0 failed") || sums() != before {
			t.Fatalf("second run (%s) changed something:\n%s", period, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "renew the TSA unit's certificate") {
		t.Fatalf("the job does not say why it keeps a just-renewed file:\n%s", r.stdout)
	}
	// A JAdES seal of a JSON document, verified by `thiqa verify FILE.json`.
	doc := []byte(`{"type":"birth-certificate","child":"Aisha","born":"2026-05-14"}`)
	for _, detached := range []bool{false, true} {
		q := "/api/v1/seal/jades?level=B-T&credential=" + cred
		if detached {
			q += "&detached=1"
		}
		code, _, jws := vfySend(t, f.srv, q, agency, "application/json", doc)
		if code != http.StatusOK {
			t.Fatalf("JAdES seal: %d %s", code, jws)
		}
		writeFile(t, f.path("seal.json"), string(jws))
		writeFile(t, f.path("doc.json"), string(doc))
		args := []string{"verify", f.path("seal.json"), "--data", f.dir}
		if detached {
			args = append(args, "--payload", f.path("doc.json"))
		}
		r = thiqa(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "(JAdES): TOTAL-PASSED") || !strings.Contains(r.stdout, "level: B-T") {
			t.Fatalf("thiqa verify of a JAdES seal (detached %v): %d\n%s%s", detached, r.code, r.stdout, r.stderr)
		}
	}
	writeFile(t, f.path("doc.json"), strings.Replace(string(doc), "Aisha", "Aysha", 1))
	if r = thiqa(t, nil, "verify", f.path("seal.json"), "--data", f.dir, "--payload", f.path("doc.json")); r.code != 1 {
		t.Fatalf("thiqa verify of a changed payload: %d\n%s", r.code, r.stdout)
	}
	dbPath := filepath.Join(f.dir, "thiqa.db")
	if n := auditCount(t, dbPath, signing.ActionExtend, "success", "cli:"); n < 3 {
		t.Fatalf("%d extensions by the operator audited, want at least 3", n)
	}
	f.srv.stop(t)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}
