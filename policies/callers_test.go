package policies

import "testing"

// TestCheckCallerSubject: each role's subject form.
func TestCheckCallerSubject(t *testing.T) {
	for _, c := range []struct {
		role    Role
		subject string
		ok      bool
	}{
		{RoleAgency, "NTROM-1234567", true}, {RoleAgency, "ministry", false},
		{RoleCitizen, "12345678", true}, {RoleCitizen, "12a", false},
		{RoleOperator, "alice@ops", true}, {RoleOperator, "alice smith", false}, {RoleOperator, "", false},
	} {
		if err := CheckCallerSubject(c.role, c.subject); (err == nil) != c.ok {
			t.Errorf("%s %q: %v", c.role, c.subject, err)
		}
	}
}
