package report

import (
	"encoding/json"
	"strings"
	"testing"
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
