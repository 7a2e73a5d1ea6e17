package tsp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
	"time"
)

func TestGeneralizedTime(t *testing.T) {
	base := time.Date(2026, 11, 22, 10, 30, 5, 0, time.UTC)
	cases := map[time.Duration]string{
		0:                        "20261122103005Z",
		500 * time.Millisecond:   "20261122103005.5Z",
		120 * time.Millisecond:   "20261122103005.12Z",
		7 * time.Millisecond:     "20261122103005.007Z",
		999*time.Millisecond + 1: "20261122103005.999Z",
		999 * time.Microsecond:   "20261122103005Z", // truncated to the millisecond
	}
	for d, want := range cases {
		got := string(AppendGeneralizedTime(nil, base.Add(d).In(time.FixedZone("GST", 4*3600))))
		if got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
		back, err := ParseGeneralizedTime([]byte(got))
		if err != nil || !back.Equal(base.Add(d).Truncate(time.Millisecond)) {
			t.Errorf("%s parses to %v, %v", got, back, err)
		}
	}
	for _, bad := range []string{"20261122103005.50Z", "20261122103005.Z", "20261122103005", "2026112210300Z", "20261122103005.5+0100"} {
		if _, err := ParseGeneralizedTime([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestFailInfoEncoding(t *testing.T) {
	cases := map[FailInfo]string{
		BadAlg:           "03020780",
		BadDataFormat:    "03020204",
		TimeNotAvailable: "0303010002",
		SystemFailure:    "030506000000" + "40",
	}
	for f, want := range cases {
		der, err := (&Response{Status: StatusInfo{Status: StatusRejection, FailInfo: f}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(der, mustHex(want)) {
			t.Errorf("%v encodes as %x, want it to contain %s", f, der, want)
		}
		back, err := ParseResponse(der)
		if err != nil || back.Status.FailInfo != f || back.Status.Status != StatusRejection {
			t.Errorf("%v round trip: %+v %v", f, back, err)
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseRequestStrict(t *testing.T) {
	imprint := bytes.Repeat([]byte{0xab}, 32)
	good, err := (&Request{MessageImprint: MessageImprint{HashAlgorithm: OIDSHA256, HashedMessage: imprint}, Nonce: big.NewInt(300), CertReq: true}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRequest(good)
	if err != nil || r.Nonce.Int64() != 300 || !r.CertReq || !bytes.Equal(r.MessageImprint.HashedMessage, imprint) {
		t.Fatalf("%+v %v", r, err)
	}
	bad := map[string][]byte{
		"long-form-length": append([]byte{0x30, 0x81, good[1]}, good[2:]...),
		"indefinite":       append(append([]byte{0x30, 0x80}, good[2:]...), 0, 0),
		"trailing":         append(bytes.Clone(good), 0x05, 0x00),
		"nonce-padded":     bytes.Replace(good, []byte{0x02, 0x02, 0x01, 0x2c}, []byte{0x02, 0x03, 0x00, 0x01, 0x2c}, 1),
		"bool-not-ff":      bytes.Replace(good, []byte{0x01, 0x01, 0xff}, []byte{0x01, 0x01, 0x01}, 1),
		"certreq-false":    bytes.Replace(good, []byte{0x01, 0x01, 0xff}, []byte{0x01, 0x01, 0x00}, 1),
		"empty":            {},
		"not-sequence":     {0x04, 0x00},
	}
	for name, b := range bad {
		if name == "nonce-padded" {
			b[1] = good[1] + 1
		}
		if _, err := ParseRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	v2 := bytes.Clone(good)
	v2[4] = 2
	if _, err := ParseRequest(v2); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
	dup := &Request{MessageImprint: MessageImprint{HashAlgorithm: OIDSHA256, HashedMessage: imprint},
		Extensions: []Extension{{ID: OIDQCStatements, Value: []byte{1}}, {ID: OIDQCStatements, Value: []byte{2}}}}
	db, _ := dup.Marshal()
	if _, err := ParseRequest(db); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate extensions: %v", err)
	}
}

func TestTSTInfoRoundTrip(t *testing.T) {
	in := &TSTInfo{
		Policy:         OIDETSIBestPracticesPolicy,
		MessageImprint: MessageImprint{HashAlgorithm: OIDSHA384, HashedMessage: bytes.Repeat([]byte{1}, 48)},
		SerialNumber:   big.NewInt(123456789), GenTime: time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC),
		Accuracy: 1001 * time.Microsecond, Nonce: new(big.Int).Lsh(big.NewInt(3), 170),
		TSAName: []byte{0x30, 0x00}, Extensions: []Extension{QualifiedStatementExtension()},
	}
	der, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseTSTInfo(der)
	if err != nil {
		t.Fatal(err)
	}
	if !out.GenTime.Equal(in.GenTime) || out.Accuracy != in.Accuracy || out.Nonce.Cmp(in.Nonce) != 0 ||
		out.SerialNumber.Cmp(in.SerialNumber) != 0 || !out.HasQualifiedStatement() || !bytes.Equal(out.TSAName, in.TSAName) {
		t.Errorf("round trip: %+v", out)
	}
	// The qcStatements value is SEQUENCE { SEQUENCE { OID 0.4.0.19422.1.1 } }.
	if got := hex.EncodeToString(QualifiedStatementExtension().Value); got != "300b30090607040081975e0101" {
		t.Errorf("qcStatements value %s", got)
	}
	if _, err := (&TSTInfo{Policy: OIDETSIBestPracticesPolicy, SerialNumber: big.NewInt(0)}).Marshal(); err == nil {
		t.Error("serial 0 accepted")
	}
}
