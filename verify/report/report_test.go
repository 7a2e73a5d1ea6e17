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
