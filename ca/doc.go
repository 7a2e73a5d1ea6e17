// Package ca issues certificates: it builds the CA hierarchy (root and the
// issuing CAs citizen, organisation and tsa), applies the certificate
// profiles of package policies to validated requests, allocates serials,
// lints every certificate before signing it (zlint on the exact TBS, built
// under a look-alike issuer with a throwaway key, as Boulder does), signs with the issuing CA's crypto.Signer, checks that the
// signed certificate is the linted one, and records intent, certificate and
// audit entry through the narrow Store and Auditor interfaces it declares.
//
// The package never sees PKCS#11: it takes a crypto.Signer (an HSM key in
// production, an in-process key in unit tests).
package ca
