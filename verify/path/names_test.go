package path

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidMailbox(t *testing.T) {
	for s, want := range map[string]bool{
		"good@example.com":                 true,
		"first.last@example.com":           true,
		"*@example.com":                    true,
		"**@example.com":                   true,
		"a+tag@sub.example.com":            true,
		`"a@b"@example.com`:                true,
		`"a\"b"@example.com`:               true,
		"invalid@address@example.com":      false,
		"@example.com":                     false,
		"user@":                            false,
		"user":                             false,
		".user@example.com":                false,
		"us..er@example.com":               false,
		"user.@example.com":                false,
		"us er@example.com":                false,
		`"unterminated@example.com`:        false,
		`"a"b"@example.com`:                false,
		"user@exa_mple.com":                false,
		"user@-example.com":                false,
		strings.Repeat("a", 65) + "@x.com": false,
	} {
		if got := validMailbox(s); got != want {
			t.Errorf("validMailbox(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestWildcardMeetsSubtree(t *testing.T) {
	for _, tc := range []struct {
		base, constraint string
		want             bool
	}{
		{"example.com", "bar.example.com", true},      // *.example.com covers bar.example.com
		{"example.com", "BAR.Example.COM.", true},     // case and trailing dot
		{"example.com", "example.com", true},          // whole subtree excluded
		{"example.com", "com", true},                  // an ancestor excluded
		{"example.com", "", true},                     // empty constraint: every name
		{"example.com", "foo.bar.example.com", false}, // two labels deeper: * is one label
		{"example.com", "example.org", false},
		{"example.com", "barexample.com", false},
		{"foo.example.com", "bar.example.com", false},
	} {
		if got := wildcardMeetsSubtree(tc.base, tc.constraint); got != tc.want {
			t.Errorf("wildcardMeetsSubtree(%q, %q) = %v, want %v", tc.base, tc.constraint, got, tc.want)
		}
	}
}

// ncPath builds root -> ICA (with the given constraints) -> leaf (with the
// given SANs) and validates it.
func ncPath(t *testing.T, permittedDNS, excludedDNS, permittedEmail, dns, email []string) error {
	t.Helper()
	nb, na := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	root := issue(t, nil, caTemplate("Root", nb, na))
	icaTmpl := caTemplate("Constrained CA", nb, na)
	icaTmpl.PermittedDNSDomains = permittedDNS
	icaTmpl.ExcludedDNSDomains = excludedDNS
	icaTmpl.PermittedEmailAddresses = permittedEmail
	icaTmpl.PermittedDNSDomainsCritical = true
	ica := issue(t, root, icaTmpl)
	lt := leafTemplate("leaf", nb, na)
	lt.DNSNames, lt.EmailAddresses = dns, email
	leaf := issue(t, ica, lt)
	_, err := New(Options{Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{ica.cert}}).Validate(leaf.cert)
	return err
}

// TestExcludedSubtreeCatchesWildcard: a CA forbidden bar.example.com must not
// certify *.example.com, which a relying party would accept for
// bar.example.com (limbo rfc5280::nc::nc-forbids-dnsname-wildcard-san,
// cve::cve-2025-61727).
func TestExcludedSubtreeCatchesWildcard(t *testing.T) {
	perm, excl := []string{"example.com"}, []string{"bar.example.com"}
	var pe *Error
	if err := ncPath(t, perm, excl, nil, []string{"*.example.com"}, nil); !errors.As(err, &pe) || !strings.Contains(pe.Msg, "excluded") {
		t.Fatalf("*.example.com under excluded bar.example.com: got %v, want excluded", err)
	}
	for _, ok := range [][]string{{"foo.example.com"}, {"*.foo.example.com"}, {"*.bar.example.org"}} {
		p := perm
		if strings.HasSuffix(ok[0], ".org") {
			p = nil
		}
		if err := ncPath(t, p, excl, nil, ok, nil); err != nil {
			t.Errorf("%v under excluded bar.example.com: %v", ok, err)
		}
	}
	if err := ncPath(t, perm, excl, nil, []string{"bar.example.com"}, nil); err == nil {
		t.Error("bar.example.com itself validated under its exclusion")
	}
}

// TestMalformedEmailUnderConstraints: a SAN that is not an RFC 5321 mailbox
// cannot be shown to lie within a permitted email subtree, even if its text
// ends in the permitted domain (limbo rfc5280::nc::nc-permits-invalid-email-san).
func TestMalformedEmailUnderConstraints(t *testing.T) {
	perm := []string{"example.com"}
	if err := ncPath(t, nil, nil, perm, nil, []string{"good@example.com", "alsogood@example.com"}); err != nil {
		t.Fatalf("well-formed mailboxes: %v", err)
	}
	var pe *Error
	err := ncPath(t, nil, nil, perm, nil, []string{"good@example.com", "invalid@address@example.com"})
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "malformed email") {
		t.Fatalf("invalid@address@example.com: got %v, want a malformed email failure", err)
	}
}
