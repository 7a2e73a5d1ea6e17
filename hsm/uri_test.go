package hsm

import (
	"bytes"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	cases := []struct {
		in   string
		want URI
		str  string // expected String(); "" means same as in
	}{
		{in: "pkcs11:token=thiqa;object=citizen-ca", want: URI{Token: "thiqa", Object: "citizen-ca"}},
		{in: "pkcs11:", want: URI{}},
		{in: "PKCS11:token=thiqa", want: URI{Token: "thiqa"}, str: "pkcs11:token=thiqa"},
		{in: "pkcs11:id=%01%02", want: URI{ID: []byte{1, 2}}},
		{in: "pkcs11:id=%a0A", want: URI{ID: []byte{0xa0, 'A'}}, str: "pkcs11:id=%A0%41"},
		{in: "pkcs11:object=my%20key;type=private", want: URI{Object: "my key", Type: "private"}},
		{in: "pkcs11:object=a%3Bb%3Fc", want: URI{Object: "a;b?c"}},
		{in: "pkcs11:object=%D8%AB%D9%82%D8%A9", want: URI{Object: "ثقة"}},
		{in: "pkcs11:type=private;object=ca;token=thiqa", want: URI{Token: "thiqa", Object: "ca", Type: "private"},
			str: "pkcs11:token=thiqa;object=ca;type=private"},
		{in: "pkcs11:token=t;manufacturer=SoftHSM%20project;serial=1a2b;model=SoftHSM%20v2",
			want: URI{Token: "t", Manufacturer: "SoftHSM project", Serial: "1a2b", Model: "SoftHSM v2"}},
		{in: "pkcs11:slot-id=3;library-version=2.6;library-manufacturer=x;library-description=y;slot-description=z;slot-manufacturer=w",
			want: URI{SlotID: "3", LibraryVersion: "2.6", LibraryManufacturer: "x", LibraryDescription: "y", SlotDescription: "z", SlotManufacturer: "w"},
			str:  "pkcs11:library-manufacturer=x;library-description=y;library-version=2.6;slot-description=z;slot-manufacturer=w;slot-id=3"},
		{in: "pkcs11:object=ca?pin-source=file:/etc/thiqa/pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
			want: URI{Object: "ca", PINSource: "file:/etc/thiqa/pin", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}},
		{in: "pkcs11:object=ca?pin-value=1234%26x", want: URI{Object: "ca", PINValue: "1234&x"}, str: "pkcs11:object=ca"},
		{in: "pkcs11:object=ca?module-name=softhsm2", want: URI{Object: "ca", ModuleName: "softhsm2"}},
		{in: "pkcs11:object=", want: URI{}, str: "pkcs11:"},
		{in: "pkcs11:object=a:b@c", want: URI{Object: "a:b@c"}},
	}
	for _, c := range cases {
		got, err := ParseURI(c.in)
		if err != nil {
			t.Fatalf("ParseURI(%q): %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Fatalf("ParseURI(%q) = %+v, want %+v", c.in, got, c.want)
		}
		want := c.str
		if want == "" {
			want = c.in
		}
		if s := got.String(); s != want {
			t.Fatalf("String() of %q = %q, want %q", c.in, s, want)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	cases := []struct{ in, mention string }{
		{"", "pkcs11:"},
		{"pkcs11", "pkcs11:"},
		{"http://x", "pkcs11:"},
		{"pkcs11:label=ca", `"label"`},
		{"pkcs11:x-vendor=1", `"x-vendor"`},
		{"pkcs11:token", "no value"},
		{"pkcs11:token=a;token=b", "repeats"},
		{"pkcs11:type=secret", `"secret"`},
		{"pkcs11:id=%0", "truncated"},
		{"pkcs11:id=%zz", "percent"},
		{"pkcs11:object=a b", "percent-encoded"},
		{"pkcs11:object=a/b", "percent-encoded"},
		{"pkcs11:object=a?pin-value=x;y", "pin-value"},
		{"pkcs11:object=a?foo=bar", `"foo"`},
		{"pkcs11:object=a?pin-source=f&pin-value=p", "both"},
		{"pkcs11:object=a;", "no value"},
	}
	for _, c := range cases {
		_, err := ParseURI(c.in)
		if err == nil {
			t.Fatalf("ParseURI(%q) succeeded", c.in)
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Fatalf("ParseURI(%q) error %q does not mention %q", c.in, err, c.mention)
		}
	}
}

func TestURINeverShowsPINValue(t *testing.T) {
	const pin = "s3cr3t-PIN"
	u, err := ParseURI("pkcs11:token=thiqa;object=ca?pin-value=" + pin)
	if err != nil {
		t.Fatal(err)
	}
	if u.PINValue != pin {
		t.Fatalf("PINValue = %q", u.PINValue)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("key", "uri", u)
	for _, s := range []string{u.String(), fmt.Sprint(u), fmt.Sprintf("%v", u), buf.String()} {
		if strings.Contains(s, pin) {
			t.Fatalf("pin-value shown: %s", s)
		}
	}
	// Malformed pin-values are reported without their text.
	_, err = ParseURI("pkcs11:object=a?pin-value=" + pin + "%zz")
	if err == nil || strings.Contains(err.Error(), pin) {
		t.Fatalf("malformed pin-value error: %v", err)
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=thiqa;object=citizen-ca",
		"pkcs11:id=%01%02;type=private",
		"pkcs11:object=a%20b?pin-source=file:/x&module-path=/m.so",
		"pkcs11:object=ca?pin-value=1234",
		"pkcs11:",
		"pkcs11:token=a;token=b",
		"pkcs11:id=%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if u.PINValue != "" || u.Token != "" || u.Object != "" {
				t.Fatalf("error with a non-zero URI: %+v", u)
			}
			return
		}
		// Formatting and parsing again gives the same URI (less pin-value).
		out := u.String()
		v, err := ParseURI(out)
		if err != nil {
			t.Fatalf("ParseURI(%q) (from %q): %v", out, s, err)
		}
		u.PINValue = ""
		if !reflect.DeepEqual(u, v) {
			t.Fatalf("round trip of %q via %q: %+v != %+v", s, out, u, v)
		}
		if v.String() != out {
			t.Fatalf("String not stable: %q then %q", out, v.String())
		}
	})
}

// TestObjectLabel: the object label of a URI on the configured token, and
// one clear message for a URI on another token, without an object label, or
// not a pkcs11: URI at all (a plain label is refused, not taken as a label).
func TestObjectLabel(t *testing.T) {
	h := TokenConfig{TokenLabel: "thiqa"}
	for _, c := range []struct{ uri, want, err string }{
		{uri: "pkcs11:object=tsa-1", want: "tsa-1"},
		{uri: "pkcs11:token=thiqa;object=citizen-ca;type=private", want: "citizen-ca"},
		{uri: "pkcs11:token=other;object=citizen-ca",
			err: `key URI "pkcs11:token=other;object=citizen-ca" names token "other", but the configured token is "thiqa"`},
		{uri: "pkcs11:token=thiqa", err: `key URI "pkcs11:token=thiqa" has no object label`},
		{uri: "tsa-1", err: `key URI "tsa-1": hsm: key URI must start with "pkcs11:"`},
		{uri: "pkcs11:object=a;object=b", err: `key URI "pkcs11:object=a;object=b": hsm: `},
	} {
		got, err := h.KeyLabel(c.uri)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("KeyLabel(%q) = %q, %v; want %q", c.uri, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), c.err) || got != "" {
			t.Errorf("KeyLabel(%q) = %q, %v; want an error starting %q", c.uri, got, err, c.err)
		}
	}
	_, err := ObjectLabel("rootKey", "pkcs11:token=online;object=root", "offline-root", "offline")
	if want := `rootKey "pkcs11:token=online;object=root" names token "online", but the offline token is "offline-root"`; err == nil || err.Error() != want {
		t.Errorf("ObjectLabel on another token: %v; want %q", err, want)
	}
}
