// Package timestamp is Thiqa's RFC 3161 / RFC 5816 time-stamping authority
// (TSA) profiled by ETSI EN 319 421/422: it checks requests, allocates
// serial numbers in blocks that are never reused, refuses to issue when its
// clock is not known to be within the declared accuracy, records every token
// before it leaves, signs tokens with a crypto.Signer, serves them over
// HTTP, and offers a client for the services that need timestamps.
//
// The ASN.1 and CMS encoding lives in the tsp subpackage. The store, the
// audit log and the HSM are reached through the narrow interfaces declared
// here (SerialBlockStore, Recorder, ClockChecker, crypto.Signer).
package timestamp
