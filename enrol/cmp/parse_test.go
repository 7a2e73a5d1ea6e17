package cmp

import (
	"os"
	"path/filepath"
	"testing"
)

// TestParseOpenSSLRequests: the requests openssl cmp sends parse, with the
// body types and parts the server reads.
func TestParseOpenSSLRequests(t *testing.T) {
	for name, want := range map[string]int{"ir.der": bodyIR, "kur.der": bodyKUR, "rr.der": bodyRR, "genm.der": bodyGenM,
		"ir-certconf.der": bodyCertConf, "kur-certconf.der": bodyCertConf} {
		der, err := os.ReadFile(filepath.Join("testdata", "openssl", name))
		if err != nil {
			t.Fatal(err)
		}
		m, e := parseMessage(der)
		if e != nil || m.bodyType != want {
			t.Fatalf("%s: %v, body %d", name, e, m.bodyType)
		}
		switch want {
		case bodyIR, bodyKUR:
			r, e := parseCertReqMessages(m.body)
			if e != nil {
				t.Fatalf("%s: %v", name, e)
			}
			if e := r.checkPOP(); e != nil {
				t.Fatalf("%s: POP: %v", name, e)
			}
			if want == bodyKUR && r.oldCert == nil {
				t.Fatalf("%s: no oldCertID", name)
			}
		case bodyRR:
			if sn, _, _, e := parseRevDetails(m.body); e != nil || sn.Sign() <= 0 {
				t.Fatalf("%s: %v", name, e)
			}
		}
	}
}
