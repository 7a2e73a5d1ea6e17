package tsl_test

import (
	"crypto/x509"
	"encoding/asn1"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

// qcExt builds a QCStatements extension: QcCompliance, optionally QcSSCD
// and a QcType.
func qcExt(t *testing.T, sscd bool, qcType string) func(*x509.Certificate) {
	return func(c *x509.Certificate) {
		type st struct {
			ID   asn1.ObjectIdentifier
			Info asn1.RawValue `asn1:"optional"`
		}
		stmts := []st{{ID: asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 1}}}
		if sscd {
			stmts = append(stmts, st{ID: asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 4}})
		}
		if qcType != "" {
			oid := map[string]asn1.ObjectIdentifier{"esign": {0, 4, 0, 1862, 1, 6, 1}, "eseal": {0, 4, 0, 1862, 1, 6, 2}, "web": {0, 4, 0, 1862, 1, 6, 3}}[qcType]
			der, err := asn1.Marshal([]asn1.ObjectIdentifier{oid})
			if err != nil {
				t.Fatal(err)
			}
			stmts = append(stmts, st{ID: asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6}, Info: asn1.RawValue{FullBytes: der}})
		}
		der, err := asn1.Marshal(stmts)
		if err != nil {
			t.Fatal(err)
		}
		c.ExtraExtensions = append(c.ExtraExtensions, pkixExt(der))
	}
}

// TestQualifyTS119615 walks the qualification rules: status granted at
// issuance and at the signing time, withdrawn afterwards, qualifiers
// overriding the certificate, additional service information, unlisted
// issuers, and qualified time-stamp services.
func TestQualifyTS119615(t *testing.T) {
	caKey := ecKey(t)
	ca := testCert(t, "Listed CA", caKey, nil, nil, true, nil)
	other := testCert(t, "Unlisted CA", caKey, nil, nil, true, nil)
	seal := testCert(t, "Agency seal", ecKey(t), ca, caKey, false, qcExt(t, true, "eseal"))
	sign := testCert(t, "Citizen", ecKey(t), ca, caKey, false, qcExt(t, false, "esign"))
	plain := testCert(t, "No QC", ecKey(t), ca, caKey, false, nil)
	withdrawn := t0.AddDate(1, 0, 0)
	svc := tsl.Service{
		Current: tsl.Status{Type: tsl.SvcTypeCAQC, Name: "Listed CA/QC", Status: tsl.StatusWithdrawn, Since: withdrawn,
			Identity: tsl.Identity{Certificates: []*x509.Certificate{ca}}},
		History: []tsl.Status{{Type: tsl.SvcTypeCAQC, Name: "Listed CA/QC", Status: tsl.StatusGranted, Since: t0.AddDate(-2, 0, 0),
			Identity:       tsl.Identity{Certificates: []*x509.Certificate{ca}},
			AdditionalInfo: []string{tsl.ASiForeSignatures, tsl.ASiForeSeals},
			Qualifications: []tsl.Qualification{{Qualifiers: []string{"http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/QCWithQSCD"},
				Criteria: tsl.Criteria{Assert: "all", KeyUsage: []map[string]bool{{"nonRepudiation": true}}}}}}},
	}
	tsa := testCert(t, "TSA unit", ecKey(t), ca, caKey, false, nil)
	list := &tsl.List{Version: 5, SequenceNumber: 9, Territory: "OM", Providers: []tsl.Provider{{Name: "Thiqa", Services: []tsl.Service{svc,
		{Current: tsl.Status{Type: tsl.SvcTypeTSAQTST, Name: "QTST", Status: tsl.StatusGranted, Since: t0.AddDate(-2, 0, 0),
			Identity: tsl.Identity{Certificates: []*x509.Certificate{tsa}}}}}}}}
	trust := tsl.NewTrust(tsl.Loaded{Location: "test", List: list})

	at := t0
	v := trust.Qualify(tsl.ForSignatures, []*x509.Certificate{ca, seal}, at)
	if !v.Qualified || !v.QSCD || v.Types[0] != "eseal" || v.Detail.QualifiedFrom != report.FromCertificate || v.Detail.QSCDFrom != report.FromTrustedList ||
		v.Detail.TrustedList.Territory != "OM" || v.Detail.TrustedList.Status != tsl.StatusGranted {
		t.Fatalf("seal: %+v %+v", v, v.Detail)
	}
	// QCWithQSCD applies (nonRepudiation): QSCD from the list, not the certificate.
	if v := trust.Qualify(tsl.ForSignatures, []*x509.Certificate{ca, sign}, at); !v.Qualified || !v.QSCD || v.Detail.QSCDFrom != report.FromTrustedList || v.Detail.Certificate.QcSSCD {
		t.Fatalf("signature: %+v %+v", v, v.Detail)
	}
	if v := trust.Qualify(tsl.ForSignatures, []*x509.Certificate{ca, plain}, at); v.Qualified || v.Detail.Status != report.QualificationNotQualified {
		t.Fatalf("no QcCompliance: %+v", v.Detail)
	}
	if v := trust.Qualify(tsl.ForSignatures, []*x509.Certificate{ca, seal}, withdrawn.Add(time.Hour)); v.Qualified || v.Detail.Reason == "" {
		t.Fatalf("after withdrawal: %+v", v.Detail)
	}
	if v := trust.Qualify(tsl.ForSignatures, []*x509.Certificate{other, seal}, at); v.Qualified || v.Detail.TrustedList != nil {
		t.Fatalf("unlisted issuer: %+v", v.Detail)
	}
	// Anchors: the CA for signatures; the TSA unit only for timestamps.
	if a := trust.AnchorsFor(tsl.ForSignatures, []*x509.Certificate{seal}); len(a) != 1 || !a[0].Equal(ca) {
		t.Fatalf("anchors: %v", a)
	}
	if a := trust.AnchorsFor(tsl.ForSignatures, []*x509.Certificate{tsa}); len(a) != 1 {
		t.Fatalf("anchors for the TSA as a signer: %d", len(a))
	}
	if a := trust.AnchorsFor(tsl.ForTimestamps, []*x509.Certificate{tsa}); len(a) != 2 {
		t.Fatalf("anchors for a timestamp: %d", len(a))
	}
	if v := trust.Qualify(tsl.ForTimestamps, []*x509.Certificate{ca, tsa}, at); !v.Qualified || v.Detail.TrustedList.ServiceType != tsl.SvcTypeTSAQTST {
		t.Fatalf("QTST: %+v", v.Detail)
	}
	// ASi ForeSignatures only: an e-seal certificate is not qualified under it.
	list.Providers[0].Services[0].History[0].AdditionalInfo = []string{tsl.ASiForeSignatures}
	trust = tsl.NewTrust(tsl.Loaded{Location: "test", List: list})
	if v := trust.Qualify(tsl.ForSignatures, []*x509.Certificate{ca, seal}, at); v.Qualified {
		t.Fatalf("e-seal under a ForeSignatures service: %+v", v.Detail)
	}
	// NotQualified overrides QcCompliance.
	list.Providers[0].Services[0].History[0].Qualifications[0].Qualifiers = []string{"http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/NotQualified"}
	trust = tsl.NewTrust(tsl.Loaded{Location: "test", List: list})
	if v := trust.Qualify(tsl.ForSignatures, []*x509.Certificate{ca, sign}, at); v.Qualified || v.Detail.QualifiedFrom != report.FromTrustedList {
		t.Fatalf("NotQualified: %+v", v.Detail)
	}
}
