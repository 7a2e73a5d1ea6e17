// Package timestamp is Thiqa's RFC 3161 / RFC 5816 time-stamping authority
// (TSA) profiled by ETSI EN 319 421/422: it checks requests, allocates
// serial numbers in blocks that are never reused, refuses to issue when its
// clock is not known to be within the declared accuracy, records every token
// before it leaves, signs tokens with a crypto.Signer and serves them over
// HTTP (Authority). Around one unit, Service keeps the TSA running: it
// loads the unit (Units: its key on the token, its certificate files),
// renews it with a new key before its certificate expires and swaps it in.
// For the services that need timestamps it offers an HTTP Client and an
// InProcessClient for this server's own TSA.
//
// The ASN.1 and CMS encoding lives in the tsp subpackage, the clock sources
// in clock. The store, the audit log, the token and the CA are reached
// through the narrow interfaces declared here (SerialBlockStore, Recorder,
// AuditLog, ClockChecker, KeyStore, Certifier, crypto.Signer).
package timestamp
