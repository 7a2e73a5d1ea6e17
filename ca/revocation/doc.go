// Package revocation is the CA's revocation room. It holds:
//
//   - the RFC 5280 reason codes a revocation may give (Reason);
//   - the revocation service (Service): it checks and records a
//     revocation, audits it and every refusal, carries it at once to the
//     OCSP responder, the CRL publisher and the certificate status checker
//     of this process, and polls for the revocations other processes
//     record (`thiqa revoke`, other instances) to do the same for them;
//   - its HTTP API, POST /api/v1/certificates/{serial}/revoke, with the
//     routes of the CRLs and the OCSP responder it serves alongside;
//   - the delegated OCSP responders of the issuing CAs (Responders): a key
//     on the token and an ocsp-responder certificate from the CA, renewed
//     before it expires;
//   - the certificate status checker (Checker) that every
//     client-certificate login and API call goes through.
//
// The records, the token and the CA are reached through the interfaces
// declared here (Store, Certificates, KeyStore, Certifier,
// ResponderRenewals); package store implements the first two and the
// last (the nodes of a cluster renew each responder once), hsm/keyring
// the third (keyring.Ring over the token), and cmd/thiqa passes the CA
// (ca.Generations).
package revocation
