package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFinish(t *testing.T) {
	r := &Report{}
	r.Finish()
	if r.Indication != Indeterminate || r.SubIndication != NoSignatureFound {
		t.Fatalf("no signatures: %s/%s", r.Indication, r.SubIndication)
	}
	r = &Report{Signatures: []Signature{
		{Indication: TotalPassed},
		{Indication: Indeterminate, SubIndication: TryLater},
		{Indication: TotalFailed, SubIndication: HashFailure},
		{Indication: Indeterminate, SubIndication: NoCertificateChainFound},
	}}
	r.Finish()
	if r.Indication != TotalFailed || r.SubIndication != HashFailure {
		t.Fatalf("worst not chosen: %s/%s", r.Indication, r.SubIndication)
	}
	r = &Report{Signatures: []Signature{{Indication: TotalPassed}, {Indication: TotalPassed}}}
	r.Finish()
	if r.Indication != TotalPassed || r.SubIndication != None {
		t.Fatalf("all passed: %s/%s", r.Indication, r.SubIndication)
	}
	b, _ := json.Marshal(r)
	for _, k := range []string{`"indication":"TOTAL-PASSED"`, `"signatures":[`, `"signatureIntact":false`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
}

func TestTextAndExitCode(t *testing.T) {
	r := &Report{Signatures: []Signature{{Field: "Sig1", Kind: "signature", Indication: TotalFailed, SubIndication: HashFailure,
		Errors: []string{"the signed bytes were changed"}, Signer: &Signer{Name: "CN=A", CivilNumber: "123"}}}}
	r.Finish()
	if r.ExitCode() != 1 {
		t.Fatalf("exit code %d", r.ExitCode())
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Verdict: TOTAL-FAILED / HASH_FAILURE", `signature "Sig1"`, "civil number: 123", "the signed bytes were changed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	if (&Report{Indication: TotalPassed}).ExitCode() != 0 || (&Report{Indication: Indeterminate}).ExitCode() != 2 {
		t.Error("exit codes")
	}
	var text, js strings.Builder
	if err := r.Write(&text, false); err != nil || text.String() != b.String() {
		t.Fatalf("Write as text differs from WriteText: %v\n%s", err, text.String())
	}
	if err := r.Write(&js, true); err != nil || !strings.Contains(js.String(), "\n  \"indication\": \"TOTAL-FAILED\"") {
		t.Fatalf("Write as JSON: %v\n%s", err, js.String())
	}
}

// A signer known only by name (a document timestamp whose token did not
// verify) and a timestamp without a time leave those keys out of the JSON
// and the text: no empty issuer or serial, no 0001-01-01 dates.
func TestUnknownLeftOut(t *testing.T) {
	r := &Report{ValidationTime: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC), Signatures: []Signature{{Field: "DocTS", Kind: "document-timestamp", Indication: TotalFailed, SubIndication: HashFailure,
		Signer: &Signer{Name: "CN=Some TSA"}, Timestamps: []Timestamp{{Kind: "document", Indication: TotalFailed, SubIndication: FormatFailure}}}}}
	r.Finish()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"issuer"`, `"certificateSerial"`, `"notBefore"`, `"notAfter"`, `"time"`, "0001-01-01"} {
		if strings.Contains(string(b), k) {
			t.Errorf("JSON has %s for an unknown: %s", k, b)
		}
	}
	for _, k := range []string{`"name":"CN=Some TSA"`, `"qualified":false`, `"qscd":false`, `"kind":"document"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks the known %s: %s", k, b)
		}
	}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if s := text.String(); strings.Contains(s, "issuer:") || strings.Contains(s, "0001-01-01") || !strings.Contains(s, "signer: CN=Some TSA") {
		t.Errorf("text:\n%s", s)
	}
}
