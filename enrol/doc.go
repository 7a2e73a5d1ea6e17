// Package enrol is the room of the standard enrolment protocols' common
// ground: the one-time enrolment records a registration officer creates
// (POST /api/v1/enrolments: a reference and a secret for one certificate
// of one profile for one subject, the secret shown once), and the two ways
// a protocol request becomes a certificate through the CA's one issuance
// path (profile rules, zlint, the key-compromise block, the audit log):
//
//   - Enrol: a request authenticated by an enrolment's secret (a CMP
//     password-based MAC, EST HTTP Basic). The subject and the profile come
//     from the record, never from the request; the record is claimed
//     while the CA issues, used once the certificate exists, and open again
//     when the CA refuses the request.
//   - Reenrol: a request authenticated by the holder's current certificate
//     (CMP kur, EST simplereenroll), a renewal with a new key under the
//     CA's renewal rules (CARenewer over ca.Renewer): the current
//     certificate's subject and profile, refused for a revoked or blocked
//     key or a certificate renewed already, the current one superseded.
//
// The secret of an enrolment is not stored: it is derived from the
// reference with a key on the token (SecretKey), and the store keeps its
// SHA-256 only. A CMP MAC needs the secret itself (the client picks the
// salt), which the derivation gives without a readable copy anywhere.
//
// Records outlive their use for a while only: PurgeEvery deletes used or
// expired enrolments after EnrolmentRetention and closed CMP transactions
// after TransactionRetention (the audit log keeps what happened).
//
// The protocols live in enrol/cmp (RFC 9483 Lightweight CMP) and enrol/est
// (RFC 7030 EST). Package store implements Store.
package enrol
