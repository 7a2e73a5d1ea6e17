package path

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

func mustName(t testing.TB, rdns ...[]pkix.AttributeTypeAndValue) []byte {
	t.Helper()
	var seq pkix.RDNSequence
	for _, r := range rdns {
		seq = append(seq, pkix.RelativeDistinguishedNameSET(r))
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
)

func atv(oid asn1.ObjectIdentifier, v any) []pkix.AttributeTypeAndValue {
	return []pkix.AttributeTypeAndValue{{Type: oid, Value: v}}
}

// utf8Value is an attribute value encoded as a UTF8String.
func utf8Value(s string) asn1.RawValue {
	return asn1.RawValue{Tag: asn1.TagUTF8String, Class: asn1.ClassUniversal, Bytes: []byte(s)}
}

func TestFastNameEqual(t *testing.T) {
	base := mustName(t, atv(oidC, "OM"), atv(oidO, "Thiqa Trust Services"), atv(oidCN, "Thiqa Root CA"))
	for _, c := range []struct {
		name   string
		other  []byte
		equal  bool
		answer bool // the fast path answers (else the slow path decides)
	}{
		{"same", mustName(t, atv(oidC, "OM"), atv(oidO, "Thiqa Trust Services"), atv(oidCN, "Thiqa Root CA")), true, true},
		{"case and spaces", mustName(t, atv(oidC, "om"), atv(oidO, "  thiqa   TRUST\tServices "), atv(oidCN, "THIQA ROOT CA")), true, true},
		{"UTF8String against PrintableString", mustName(t, atv(oidC, "OM"), atv(oidO, utf8Value("Thiqa Trust Services")), atv(oidCN, utf8Value("thiqa root ca"))), true, true},
		{"other value", mustName(t, atv(oidC, "OM"), atv(oidO, "Thiqa Trust Services"), atv(oidCN, "Thiqa Issuing CA")), false, true},
		{"other type", mustName(t, atv(oidC, "OM"), atv(oidCN, "Thiqa Trust Services"), atv(oidCN, "Thiqa Root CA")), false, true},
		{"fewer RDNs", mustName(t, atv(oidC, "OM"), atv(oidO, "Thiqa Trust Services")), false, true},
		{"inner space kept", mustName(t, atv(oidC, "OM"), atv(oidO, "ThiqaTrust Services"), atv(oidCN, "Thiqa Root CA")), false, true},
		{"non-ASCII value", mustName(t, atv(oidC, "OM"), atv(oidO, utf8Value("ثقة")), atv(oidCN, "Thiqa Root CA")), false, false},
		{"multi-valued RDN", mustName(t, atv(oidC, "OM"), []pkix.AttributeTypeAndValue{{Type: oidO, Value: "Thiqa Trust Services"}, {Type: oidCN, Value: "x"}}), false, false},
		{"not a name", []byte{0x30, 0x03, 0x31, 0x01}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			eq, ok := fastNameEqual(base, c.other)
			if ok != c.answer || (ok && eq != c.equal) {
				t.Fatalf("fastNameEqual = %v, %v; want %v, answered %v", eq, ok, c.equal, c.answer)
			}
			if got := nameEqual(base, c.other); got != c.equal || got != slowNameEqual(base, c.other) {
				t.Fatalf("nameEqual = %v, slow path %v; want %v", got, slowNameEqual(base, c.other), c.equal)
			}
			if got := newNameMemo().equal(base, c.other); got != c.equal {
				t.Fatalf("nameMemo.equal = %v; want %v", got, c.equal)
			}
		})
	}
}

// FuzzNameEqual checks that the fast comparison, where it answers, agrees
// with the encoding/asn1 one on arbitrary DER.
func FuzzNameEqual(f *testing.F) {
	a := mustName(f, atv(oidC, "OM"), atv(oidO, "Thiqa Trust Services"), atv(oidCN, "Thiqa Root CA"))
	f.Add(a, mustName(f, atv(oidC, "om"), atv(oidO, " thiqa  trust services"), atv(oidCN, utf8Value("THIQA ROOT CA"))))
	f.Add(a, mustName(f, atv(oidC, "OM"), atv(oidO, "Thiqa Trust Services")))
	f.Add(mustName(f, atv(oidCN, "a*&b")), mustName(f, atv(oidCN, utf8Value("A*&B\v"))))
	f.Add(mustName(f, atv(asn1.ObjectIdentifier{2, 5, 4, 2147483647}, "x")), mustName(f, atv(asn1.ObjectIdentifier{2, 5, 4, 2147483647}, "X")))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if eq, ok := fastNameEqual(a, b); ok && eq != slowNameEqual(a, b) {
			t.Fatalf("fast %v, slow %v for %x and %x", eq, !eq, a, b)
		}
		if m := newNameMemo(); m.equal(a, b) != nameEqual(a, b) || m.equal(a, b) != nameEqual(a, b) {
			t.Fatalf("the memo disagrees with nameEqual for %x and %x", a, b)
		}
	})
}

// FuzzNameValues compares names that differ only in one attribute value
// and its string type, where the fast path's case and white-space folding
// must match normValue's.
func FuzzNameValues(f *testing.F) {
	f.Add("Thiqa Root CA", " thiqa\troot  ca ", uint8(asn1.TagPrintableString), uint8(asn1.TagUTF8String))
	f.Add("A\v", "a", uint8(asn1.TagIA5String), uint8(asn1.TagUTF8String))
	f.Add("Ünïcode", "ünïcode", uint8(asn1.TagUTF8String), uint8(asn1.TagUTF8String))
	f.Fuzz(func(t *testing.T, v1, v2 string, tag1, tag2 uint8) {
		tags := []int{asn1.TagPrintableString, asn1.TagUTF8String, asn1.TagIA5String, asn1.TagT61String, asn1.TagNumericString}
		name := func(v string, tag uint8) []byte {
			raw := asn1.RawValue{Tag: tags[int(tag)%len(tags)], Class: asn1.ClassUniversal, Bytes: []byte(v)}
			der, err := asn1.Marshal(pkix.RDNSequence{{{Type: oidC, Value: "OM"}}, {{Type: oidCN, Value: raw}}})
			if err != nil {
				t.Skip()
			}
			return der
		}
		a, b := name(v1, tag1), name(v2, tag2)
		if eq, ok := fastNameEqual(a, b); ok && eq != slowNameEqual(a, b) {
			t.Fatalf("fast %v, slow %v for %q (tag %d) and %q (tag %d)", eq, !eq, v1, tag1, v2, tag2)
		}
		if newNameMemo().equal(a, b) != nameEqual(a, b) {
			t.Fatalf("the memo disagrees with nameEqual for %q (tag %d) and %q (tag %d)", v1, tag1, v2, tag2)
		}
	})
}
