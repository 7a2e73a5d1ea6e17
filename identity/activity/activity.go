// Package activity shows citizens how their digital ID was used
// (GET /api/v1/me/activity): the audit records about their certificates
// and credentials (issuance, renewal, revocation, signatures, PINs), the
// records they made themselves (logins, reads) and those about them
// (deny-all), newest first, described in plain terms, so that they can spot
// a use that was not theirs.
//
// It lives in its own package under identity because the transparency log
// belongs to the digital ID and its holder, while the records it reads are
// written by ca, signing and identity alike: importing none of them, it
// declares the narrow Store it reads (package store implements it) and
// keeps, in describe.go, the one allowlist of what a record may show its
// holder. It never shows another person's data: no staff name or address,
// no raw details.
package activity

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// Path is the endpoint: GET /api/v1/me/activity[?before=SEQ].
const Path = "/api/v1/me/activity"

// ActionRead is the audit action of a reading (and of its refusals).
const ActionRead = string(policies.ActionReadOwnActivity)

// PageSize bounds one answer.
const PageSize = 50

// MaxHoldings bounds the certificates of one citizen whose records are
// looked up (newest first): each is two index searches per page. A
// citizen who holds more is told so (Response.Truncated).
const MaxHoldings = 100

// Record is one audit record as the store reads it.
type Record struct {
	Seq     int64
	Time    time.Time
	Actor   string
	Action  string
	Object  string
	Outcome string
	Details json.RawMessage
	// Hash is the record's hash in the chain, when the store read it
	// (package notify's tail does; the activity page needs none).
	Hash []byte
}

// Holding is one certificate issued to a citizen: its serial and, when
// its key is on the service's token, its credential ID.
type Holding struct {
	Serial       string
	CredentialID string
}

// Query asks for the records whose object is one of Objects or whose
// actor is one of Actors, with a seq below Before (0: no bound), newest
// first, at most Limit.
type Query struct {
	Objects []string
	Actors  []string
	Before  int64
	Limit   int
}

// Store is what the service reads (package store implements it).
type Store interface {
	// Holdings returns the certificates issued to the citizen with this
	// civil number, newest first, at most limit.
	Holdings(ctx context.Context, civilNumber string, limit int) ([]Holding, error)
	// ActivityRecords answers q in one statement through the indexes on
	// (object, seq) and (actor, seq).
	ActivityRecords(ctx context.Context, q Query) ([]Record, error)
	// ClientNames returns the registered names of the OpenID Connect
	// clients among ids (an unknown ID is absent from the map).
	ClientNames(ctx context.Context, ids []string) (map[string]string, error)
}

// Auditor appends audit records (internal/audit.Log implements it).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// ErrBadCursor is a before= that is not a record's seq.
var ErrBadCursor = errors.New("activity: before is not a record's seq")

// Entry is one record as its holder sees it. Only Seq, Time, Action,
// Outcome and Description are always present; the rest is what describe.go
// allows for the action, when the record carries it.
type Entry struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	Outcome string    `json:"outcome"`
	// Description says in plain words what happened.
	Description string `json:"description"`
	// By is who did it, as a role: you, registration-officer, operator,
	// service or someone-else (never a name); absent when the record does
	// not say (a login refused under a civil number typed into the form).
	By string `json:"by,omitempty"`
	// Client is the registered name of the portal a login was for.
	Client string `json:"client,omitempty"`
	// Method is how a login was made (mobile, mtls).
	Method string `json:"method,omitempty"`
	// Credential is the holder's credential the record is about.
	Credential string `json:"credential,omitempty"`
	// Serial is the holder's certificate the record is about.
	Serial string `json:"serial,omitempty"`
	// NewSerial is the certificate a renewal issued.
	NewSerial string `json:"newSerial,omitempty"`
	// Profile is an issued certificate's profile.
	Profile string `json:"profile,omitempty"`
	// Reason is a revocation's reason as the records name it (keyCompromise, superseded, …).
	Reason string `json:"reason,omitempty"`
	// DocumentDigest is the hex digest of the signed document, and Level
	// the signature level, when the record carries them.
	DocumentDigest string `json:"documentDigest,omitempty"`
	Level          string `json:"level,omitempty"`
	// Denied is how many pending logins a deny-all denied.
	Denied *int `json:"denied,omitempty"`
	// FirstPIN marks the credential.pin.reset that issued the activation
	// code of a new credential's first PIN (no PIN was reset): its
	// Description says so. Absent otherwise.
	FirstPIN bool `json:"firstPIN,omitempty"`
}

// Response is the answer of GET /api/v1/me/activity.
type Response struct {
	Entries []Entry `json:"entries"`
	// NextBefore is the cursor of the next (older) page: ?before=NextBefore.
	// Absent on the last page.
	NextBefore int64 `json:"nextBefore,omitempty"`
	// Truncated says that the citizen holds more than MaxHoldings
	// certificates: the records about the older ones are not shown (the
	// records the citizen made still are). Absent otherwise.
	Truncated bool `json:"truncated,omitempty"`
}
