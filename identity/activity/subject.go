package activity

import "slices"

// Subject is one citizen as a single record is described for them outside
// a page of their activity (package notify tells them of it as it
// happens): their civil number and those of their certificates and
// credentials the record names, as its object or, "cert:" followed by a
// serial, as its actor.
type Subject struct {
	CivilNumber string
	Serials     []string
	Credentials []string
}

// Describe returns rec as the citizen s sees it, by the one allowlist and
// privacy rules of GET /api/v1/me/activity (a role, never a name; no
// address, subject or raw details), and whether it is theirs to see at all:
// a record made under their civil number by staff whose subject merely
// equals it, on what is not theirs, is not. clients maps OpenID Connect
// client IDs to their registered names (nil: no portal is named).
func Describe(s Subject, rec Record, clients map[string]string) (Entry, bool) {
	if s.CivilNumber == "" {
		return Entry{}, false
	}
	h := &holder{actors: CitizenActors(s.CivilNumber), serials: map[string]bool{}, credentials: map[string]bool{},
		person: "citizen:" + s.CivilNumber, clients: clients}
	for _, x := range s.Serials {
		h.serials[x] = true
	}
	for _, x := range s.Credentials {
		h.credentials[x] = true
	}
	if !h.owns(rec.Object) && !h.ownKey(rec.Actor) && !slices.Contains(h.actors, rec.Actor) {
		return Entry{}, false // neither about the citizen nor by them
	}
	if !h.shows(rec) {
		return Entry{}, false
	}
	return h.describe(rec), true
}

// ShowsClient reports whether action's records name the portal (the
// OpenID Connect client, their object) a login was for: the caller looks
// the names up for Describe.
func ShowsClient(action string) bool { return allowlist[action].fields&fClient != 0 }
