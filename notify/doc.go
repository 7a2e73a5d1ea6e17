// Package notify tells citizens what happens to their digital ID, as it
// happens: a certificate issued, renewed or revoked on their ID, their
// signing PIN set, changed, locked or reset, a login to a portal with
// their digital ID, all pending logins denied, and, before a certificate
// expires, a reminder to renew it. Thiqa knows no one's phone number or
// e-mail address; the government's notification gateway knows them by
// civil number, so each notification is POSTed there (Webhook), signed
// with HMAC-SHA256.
//
// The source is the audit log, tailed: every such event leaves its
// hash-chained record before its answer. A Notifier reads the records
// after a cursor kept in the database, in seq order, in bounded batches,
// and describes those about a citizen by the allowlist and privacy rules
// of the citizen's own activity (package identity/activity: a role, never
// a name; no address, no raw details). The cursor moves past an item only
// once the gateway took it (2xx) or refused it for good (4xx but 408 and
// 429): an outage of the gateway delays notifications, never loses them,
// and blocks nothing else (at-least-once; the id is the idempotency key).
//
// The nodes of a cluster share the database: one of them at a time holds
// the lease (a row with an expiry) and delivers.
//
// Like the services, it imports neither the store nor the configuration
// package: it declares what it consumes (Store) and owns its section of
// thiqa.yaml (Config).
package notify
