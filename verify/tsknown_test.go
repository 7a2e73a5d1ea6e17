package verify

import (
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// A document timestamp's report claims only what the verifier knows: a
// token without the TSA certificate, a token whose certificate is named
// but whose imprint does not match, and a token that cannot be read leave
// out the certificate details and the time they lack (no empty issuer or
// serial, no 0001-01-01 date a relying party could display or compare), in
// the JSON, as the OpenAPI document describes it, and in the CLI text; nor
// do they give a provenSigningTime, which an unverified token does not
// prove. A timestamp whose certificate is known keeps every key as before.
func TestDocTimestampReportClaimsOnlyWhatIsKnown(t *testing.T) {
	p := newTestPKI(t)
	base := p.signPDF(t, signOpts{})
	const catalog = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 20 0 R] /SigFlags 3 >> >>"
	opts := Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}
	now := time.Now()
	cases := []struct {
		name  string
		token func(signed []byte) []byte
		known bool // the TSA certificate and the token's time are known
	}{
		{"embedded TSA certificate", func(s []byte) []byte { return p.timestampToken(t, s, now) }, true},
		{"no TSA certificate", func(s []byte) []byte { return p.timestampTokenWith(t, s, now, signOpts{noCerts: true}) }, false},
		{"imprint of other bytes", func([]byte) []byte { return p.timestampToken(t, []byte("other bytes"), now) }, false},
		{"not a token", func([]byte) []byte { return []byte{0x30, 0x03, 0x02, 0x01, 0x01} }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := verifyBytes(t, opts, p.appendDocTimestampWith(t, base, catalog, c.token))
			if len(r.Signatures) != 2 || r.Signatures[1].Kind != "document-timestamp" || len(r.Signatures[1].Timestamps) != 1 {
				t.Fatalf("want a signature and a document timestamp: %s", summary(r))
			}
			checkReportDescribed(t, r)
			body, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			js := string(body)
			for _, bad := range []string{"0001-01-01", `"issuer":""`, `"certificateSerial":""`, `"time":"0001`} {
				if strings.Contains(js, bad) {
					t.Errorf("the report claims an unknown value (%s):\n%s", bad, js)
				}
			}
			var text strings.Builder
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(text.String(), "0001-01-01") || strings.Contains(text.String(), "issuer: \n") {
				t.Errorf("the text claims an unknown value:\n%s", text.String())
			}
			var raw struct {
				Signatures []struct {
					Signer     map[string]any   `json:"signer"`
					Timestamps []map[string]any `json:"timestamps"`
				} `json:"signatures"`
			}
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			d := raw.Signatures[1]
			if !c.known {
				if r.Signatures[1].Indication == report.TotalPassed {
					t.Errorf("a document timestamp without what it needs passed: %s", summary(r))
				}
				if r.Signatures[1].ProvenSigningTime != nil {
					t.Errorf("a token that did not verify proves no signing time: %s", js)
				}
				return
			}
			if r.Signatures[1].ProvenSigningTime == nil {
				t.Errorf("the verified token's time is not the proven signing time: %s", js)
			}
			for _, k := range []string{"name", "issuer", "certificateSerial", "notBefore", "notAfter", "qualified", "qscd"} {
				if _, ok := d.Signer[k]; !ok {
					t.Errorf("the TSA certificate is known but the signer lacks %s: %s", k, js)
				}
			}
			if _, ok := d.Timestamps[0]["time"]; !ok {
				t.Errorf("the token's time is known but absent: %s", js)
			}
		})
	}
}

// An intact document timestamp whose TSA is not trusted proves no signing
// time, as a signature's timestamps prove one only when they pass: anyone
// can make a TSA certificate and a token over the document with any
// genTime. Its certificate is known, so the signer keeps every key and the
// token's time is still reported under timestamps.
func TestUntrustedDocTimestampProvesNoTime(t *testing.T) {
	p := newTestPKI(t)
	const catalog = "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 20 0 R] /SigFlags 3 >> >>"
	r := verifyBytes(t, Options{Revocation: RevocationIgnored}, p.appendDocTimestamp(t, p.signPDF(t, signOpts{}), catalog))
	if len(r.Signatures) != 2 || r.Signatures[1].Kind != "document-timestamp" || len(r.Signatures[1].Timestamps) != 1 {
		t.Fatalf("want a signature and a document timestamp: %s", summary(r))
	}
	d := r.Signatures[1]
	if !d.SignatureIntact || d.Indication != report.Indeterminate {
		t.Fatalf("want an intact, INDETERMINATE document timestamp: %s", summary(r))
	}
	if d.ProvenSigningTime != nil {
		t.Errorf("an untrusted TSA's token proves no signing time, got %s", d.ProvenSigningTime)
	}
	if d.Timestamps[0].Time.IsZero() {
		t.Error("the token's time is known but not reported")
	}
	if d.Signer == nil || d.Signer.Issuer == "" || d.Signer.CertificateSerial == "" || d.Signer.NotBefore.IsZero() || d.Signer.NotAfter.IsZero() {
		t.Errorf("the TSA certificate is known but the signer lacks its details: %+v", d.Signer)
	}
	checkReportDescribed(t, r)
}

// Of a signature's timestamps only the valid ones prove its time: an
// earlier token whose imprint does not match is reported but is not the
// provenSigningTime; the later valid one is.
func TestProvenSigningTimeSkipsFailedTimestamp(t *testing.T) {
	p := newTestPKI(t)
	r := verifyBytes(t, Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}, p.signPDF(t, signOpts{timestamp: true, badEarlyTS: true}))
	if len(r.Signatures) != 1 || len(r.Signatures[0].Timestamps) != 2 {
		t.Fatalf("want one signature with two timestamps: %s", summary(r))
	}
	s := r.Signatures[0]
	bad, good := s.Timestamps[0], s.Timestamps[1]
	if bad.Intact { // a DER SET is sorted: the order follows the bytes
		bad, good = good, bad
	}
	if bad.Indication != report.TotalFailed || bad.Intact || good.Indication != report.TotalPassed {
		t.Fatalf("want a failed then a valid timestamp: %+v", s.Timestamps)
	}
	if s.ProvenSigningTime == nil || !s.ProvenSigningTime.Equal(good.Time) {
		t.Errorf("provenSigningTime %v, want the valid token's %s (not the failed one's %s)", s.ProvenSigningTime, good.Time, bad.Time)
	}
	if s.Indication != report.TotalPassed {
		t.Errorf("a failed extra timestamp changed the verdict: %s", summary(r))
	}
}
