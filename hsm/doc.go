// Package hsm is Thiqa's PKCS#11 layer: every service key lives on a token
// and every signature goes through this package.
//
// It loads a PKCS#11 module by path, finds a token by label, logs in once as
// the user, and keeps a bounded pool of sessions (one per concurrent
// operation). Keys are generated on the token (sensitive, non-extractable),
// found by label or by RFC 7512 pkcs11: URI, and exposed as crypto.Signer
// values for ECDSA, RSA PKCS#1 v1.5 and RSA-PSS.
//
// A Signer survives token faults: when the module reports a closed or invalid
// session, a logged-out user, an invalid key handle, a removed token or a
// finalized library, the Token recovers once (re-initialising the library if
// needed, re-finding the slot by label, logging in again, dropping every
// session of the old generation and re-finding key handles) and the operation
// is retried. When the token stays unusable (the recovery fails, the fault
// comes back, the device reports an error or runs out of memory or
// sessions, no session frees up before the caller's deadline) the error is
// marked with outage.Mark, and the services answer "try again later"; a
// refused PIN, a missing key or bad input are not marked. A key the token
// cannot store (its object memory used up, a SoftHSM token folder on a full
// or read-only disk: Config.StorageDir) fails with ErrTokenFull, marked
// too, and leaves nothing on the token (tokenfull.go).
//
// No request waits on the token for ever: a PKCS#11 call cannot be
// interrupted, so operations run their calls in a goroutine and give up at
// the caller's deadline or the call timeout (Config.CallTimeout), with
// ErrTimeout marked as an outage. The call that does not return keeps its
// session out of the pool until it does, and Ping (/readyz) fails while
// such calls are outstanding past the timeout (timeout.go).
//
// Keys that sign all day (time-stamping units, e-seals, OCSP responders,
// issuing CAs) can sign with a session-object copy made inside the token
// (Signer.UseSessionCopies), which spares SoftHSM re-reading the token
// object on every signature.
//
// The package knows nothing of certificates. Only cmd/ (and tests) import it;
// every other package receives a crypto.Signer.
package hsm
