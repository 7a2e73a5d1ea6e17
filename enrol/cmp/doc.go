// Package cmp is Thiqa's CMP server: the Certificate Management Protocol
// (RFC 4210, updated by RFC 9480) over HTTP (RFC 6712) in the Lightweight
// CMP profile (RFC 9483), at POST /.well-known/cmp and
// /.well-known/cmp/p/{profile}.
//
// It answers ir, cr and p10cr (enrolment), kur (key update: a new
// certificate for the holder's current one, with a new key), rr
// (revocation by the holder or an RA), certConf (with pkiConf) and genm
// (the CA certificates, the root CA update), and refuses everything else
// with an error message whose PKIFailureInfo says why. A certificate sent
// without implicit confirmation must be confirmed within
// enrol.ConfirmWaitTime, announced as confirmWaitTime: ExpireUnconfirmed
// revokes one whose certConf did not come (confirm.go).
//
// Requests are protected with the password-based MAC of RFC 4210
// (id-PasswordBasedMac) under a one-time enrolment's reference and secret
// (package enrol), or PBMAC1 (RFC 9481), or signed by the holder's current
// certificate (kur, rr, certConf) or by an RA certificate. Responses to a
// MAC-protected request carry a MAC made with the same secret; every other
// response is signed by the CMP server's key on the token.
//
// The ASN.1 of CMP and CRMF (RFC 4211) is written here with encoding/asn1.
// No Go CMP library is fit to use: none is maintained for the server side
// (the few on GitHub are client stubs or abandoned), and the messages are a
// small, fixed set of structures whose DER the protection covers byte for
// byte, so the parser keeps each part's raw bytes as received. CMP's own
// module uses explicit tags and CRMF's implicit ones; the types say which.
package cmp
