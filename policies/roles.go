package policies

import "fmt"

// Role is what an authenticated caller acts as.
type Role string

// The roles of a trust service's users.
const (
	// RoleOperator runs the service: key ceremonies, configuration, audit.
	RoleOperator Role = "operator"
	// RoleRegistrationOfficer proves identities and requests and revokes certificates.
	RoleRegistrationOfficer Role = "registration-officer"
	// RoleAgency is a government agency that seals the documents it issues.
	RoleAgency Role = "agency"
	// RoleCitizen is a natural person who signs with their own key.
	RoleCitizen Role = "citizen"
)

// roles lists every role, in a stable order.
var roles = []Role{RoleOperator, RoleRegistrationOfficer, RoleAgency, RoleCitizen}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want one of operator, registration-officer, agency, citizen)", s)
}

// Action is something a caller asks the service to do.
type Action string

// The actions the services authorise.
const (
	ActionIssueCertificate  Action = "certificate.issue"
	ActionReadCertificate   Action = "certificate.read"
	ActionRevokeCertificate Action = "certificate.revoke"
	ActionSeal              Action = "document.seal"
	ActionSign              Action = "document.sign"
	ActionExtend            Action = "document.extend"
	ActionReadAudit         Action = "audit.read"
	ActionManageClients     Action = "oidc.clients.manage"
	ActionWhoAmI            Action = "identity.whoami"
	ActionApproveLogin      Action = "oidc.login.approve"
	ActionReadMetrics       Action = "metrics.read"
	// ActionManagePIN is the holder managing a credential's PIN, apart
	// from signing: setting it, changing it with the old one, setting it
	// with an activation code. Access delegated for signing (a CSC OAuth2
	// token) never reaches the PIN.
	ActionManagePIN Action = "credential.pin.manage"
	// ActionResetPIN is a registration officer's reset of a PIN (after
	// identity proofing at the desk): it yields an activation code.
	ActionResetPIN Action = "credential.pin.reset"
	// The life cycle of certificates and credentials (issue 16).
	ActionRenewCertificate Action = "certificate.renew"
	ActionListCertificates Action = "certificate.list"
	ActionListCredentials  Action = "credential.list.own"
	// ActionCreateEnrolment records a one-time enrolment (reference and
	// secret) for CMP or EST.
	ActionCreateEnrolment Action = "enrolment.create"
	// ActionVoidEnrolment withdraws an unused enrolment whose secret
	// leaked (POST /api/v1/enrolments/{reference}/void).
	ActionVoidEnrolment Action = "enrolment.void"
	// ActionReadOwnActivity is a citizen reading the audit records about
	// their own digital ID (GET /api/v1/me/activity).
	ActionReadOwnActivity Action = "activity.read.own"
)

// permissions says which roles may perform each action. Ownership checks
// (an agency seals only with its own credential, a citizen revokes only their
// own certificate) are made by the service that knows the object.
var permissions = map[Action][]Role{
	ActionIssueCertificate:  {RoleRegistrationOfficer},
	ActionReadCertificate:   {RoleRegistrationOfficer, RoleOperator},
	ActionRevokeCertificate: {RoleRegistrationOfficer, RoleCitizen, RoleAgency},
	ActionSeal:              {RoleAgency},
	ActionSign:              {RoleCitizen},
	ActionManagePIN:         {RoleCitizen},
	ActionExtend:            {RoleAgency, RoleOperator}, // long-term archive: validation data and a document time-stamp
	ActionReadAudit:         {RoleOperator},
	ActionManageClients:     {RoleOperator},
	ActionWhoAmI:            {RoleOperator, RoleRegistrationOfficer, RoleAgency, RoleCitizen},
	ActionApproveLogin:      {RoleCitizen},                                      // the phone side of a remote login: only the citizen's own sessions
	ActionReadMetrics:       {RoleOperator},                                     // when metrics.requireRole asks for authentication (it may name another role)
	ActionRenewCertificate:  {RoleRegistrationOfficer, RoleCitizen, RoleAgency}, // a citizen or agency only its own (package ca checks)
	ActionListCertificates:  {RoleRegistrationOfficer},                          // what expires soon, names people
	ActionListCredentials:   {RoleCitizen, RoleAgency},                          // the caller's own only
	ActionResetPIN:          {RoleRegistrationOfficer},                          // after identity proofing at the desk
	ActionCreateEnrolment:   {RoleRegistrationOfficer},                          // a one-time reference and secret for CMP or EST
	ActionVoidEnrolment:     {RoleRegistrationOfficer},                          // the roles that create enrolments
	ActionReadOwnActivity:   {RoleCitizen},                                      // the caller's own records only (package identity/activity)
}

// Allowed reports whether a caller holding any of roles may perform action.
// Unknown actions are never allowed.
func Allowed(action Action, held []Role) bool {
	for _, want := range permissions[action] {
		for _, r := range held {
			if r == want {
				return true
			}
		}
	}
	return false
}
