package cms

import (
	"bytes"
	"testing"
)

func TestNormalizeBER(t *testing.T) {
	// SEQUENCE (indefinite) { INTEGER 1, OCTET STRING (constructed, indefinite) { "ab", "c" } }
	ber := []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x24, 0x80, 0x04, 0x02, 'a', 'b', 0x04, 0x01, 'c', 0, 0, 0, 0}
	der, err := normalizeBER(ber)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x24, 0x07, 0x04, 0x02, 'a', 'b', 0x04, 0x01, 'c'}
	if !bytes.Equal(der, want) {
		t.Fatalf("got % x, want % x", der, want)
	}
	if _, err := normalizeBER(append(bytes.Repeat([]byte{0x30, 0x80}, 100), 0, 0)); err == nil {
		t.Fatal("deep nesting accepted")
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range [][]byte{nil, {0x30}, {0x30, 0x00}, bytes.Repeat([]byte{0xff}, 100)} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(% x) succeeded", in)
		}
	}
}
