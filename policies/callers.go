package policies

import (
	"errors"
	"fmt"
	"regexp"
)

var (
	// organisationIdentifier is EN 319 412-1's NTR identifier: NTR +
	// country + '-' + registration number.
	organisationIdentifier = regexp.MustCompile(`^NTR[A-Z]{2}-[0-9A-Za-z]{1,32}$`)
	// civilNumber is a citizen's national identity number.
	civilNumber = regexp.MustCompile(`^[0-9]{4,20}$`)
	// plainSubject is any other subject: printable, no spaces.
	plainSubject = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// CheckCallerSubject checks the form of an API caller's subject for its
// role: an agency is named by its organizationIdentifier (NTROM-1234567),
// a citizen by a civil number (4 to 20 digits), anyone by 1 to 128
// printable characters without spaces.
func CheckCallerSubject(role Role, subject string) error {
	switch {
	case subject == "":
		return errors.New("no subject")
	case role == RoleAgency && !organisationIdentifier.MatchString(subject):
		return fmt.Errorf("agency subject %q is not an organizationIdentifier like NTROM-1234567", subject)
	case role == RoleCitizen && !civilNumber.MatchString(subject):
		return fmt.Errorf("citizen subject %q is not a civil number (4 to 20 digits)", subject)
	case !plainSubject.MatchString(subject):
		return fmt.Errorf("subject %q must be 1 to 128 printable characters without spaces", subject)
	}
	return nil
}
