package portal

// The citizen's own activity (GET /my/activity): what the service recorded
// of the use of their digital ID, as GET /api/v1/me/activity answers it,
// fifty records a page with a link to older ones. The page shows what the
// API allows and nothing more.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// activityEntry is one record of GET /api/v1/me/activity.
type activityEntry struct {
	Seq            int64     `json:"seq"`
	Time           time.Time `json:"time"`
	Action         string    `json:"action"`
	Outcome        string    `json:"outcome"`
	By             string    `json:"by"`
	Client         string    `json:"client"`
	Method         string    `json:"method"`
	Credential     string    `json:"credential"`
	Serial         string    `json:"serial"`
	NewSerial      string    `json:"newSerial"`
	Profile        string    `json:"profile"`
	Reason         string    `json:"reason"`
	DocumentDigest string    `json:"documentDigest"`
	Level          string    `json:"level"`
	Denied         *int      `json:"denied"`
	// FirstPIN marks the credential.pin.reset that issued the activation
	// code of a new credential's first PIN: no PIN was reset.
	FirstPIN bool `json:"firstPIN"`
	// HasDenied and DeniedCount are Denied for the template.
	HasDenied   bool `json:"-"`
	DeniedCount int  `json:"-"`
	// Key is the catalogue key that describes the action:
	// activity.other for one the pages do not know.
	Key string `json:"-"`
	// Times counts the records of this row: more than 1 when foldReadings
	// folded a run of the same reading into it.
	Times int `json:"-"`
	// First is the time of the oldest record folded into this row (Time
	// is the newest's): the page shows when the run began.
	First time.Time `json:"-"`
	// ProfileKey is the catalogue key that names Profile in the page's
	// language; "" for a profile the pages do not name (shown as its code).
	ProfileKey string `json:"-"`
}

// activityActions are the actions the pages describe in their own words
// (the API's allowlist); another shows as activity.other.
var activityActions = []string{"oidc.login", "oidc.login.approve", "oidc.login.deny-all", "oidc.mobile.enrol", "web.login",
	"document.sign", "document.sign.prepare", "hash.sign", "credential.authorize", "credential.pin.set", "credential.pin.change",
	"credential.pin.activate", "credential.pin.locked", "credential.pin.reset", "credential.info", "credential.list",
	"credential.list.own", "certificate.issue", "certificate.renew", "certificate.revoke", "certificate.read", "audit.read", "activity.read.own"}

// activityBy are the API's values of "by".
var activityBy = []string{"you", "registration-officer", "operator", "staff", "enrolment", "service", "someone-else"}

// activityOutcomes are the outcomes the page names.
var activityOutcomes = []string{"success", "refused", "failure"}

// myActivity shows one page of the citizen's activity.
func (p *Portal) myActivity(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	before := r.URL.Query().Get("before")
	path := "/api/v1/me/activity"
	if before != "" {
		path += "?" + url.Values{"before": {before}}.Encode()
	}
	ans, err := v.call(who, http.MethodGet, path, "", nil, nil, 4<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	if ans.status == http.StatusBadRequest {
		v.render(http.StatusBadRequest, "my_activity", "activity.title", map[string]any{"Error": v.t("activity.bad_cursor"), "Paged": true})
		return
	}
	if !ans.ok() {
		v.apiFail(&apiError{status: ans.status, detail: problemDetail(ans.body)})
		return
	}
	var out struct {
		Entries    []activityEntry `json:"entries"`
		NextBefore int64           `json:"nextBefore"`
		Truncated  bool            `json:"truncated"`
	}
	if err := json.Unmarshal(ans.body, &out); err != nil {
		v.apiFail(err)
		return
	}
	for i := range out.Entries {
		e := &out.Entries[i]
		e.Key = "activity.other"
		if slices.Contains(activityActions, e.Action) {
			e.Key = "activity." + e.Action
		}
		if e.Action == "credential.pin.reset" && e.FirstPIN {
			e.Key = "activity.credential.pin.first_code"
		}
		if !slices.Contains(activityBy, e.By) {
			e.By = ""
		}
		if !slices.Contains(activityOutcomes, e.Outcome) {
			e.Outcome = "error"
		}
		if e.Method != "mobile" && e.Method != "mtls" {
			e.Method = ""
		}
		if !slices.Contains(reasonNames, e.Reason) {
			e.Reason = ""
		}
		if e.Denied != nil {
			e.HasDenied, e.DeniedCount = true, *e.Denied
		}
		if !slices.Contains(levels, e.Level) {
			e.Level = ""
		}
		if k := "profile." + e.Profile; e.Profile != "" && v.t(k) != k {
			e.ProfileKey = k
		}
	}
	v.render(http.StatusOK, "my_activity", "activity.title", map[string]any{"Entries": v.foldReadings(out.Entries), "Next": out.NextBefore, "Paged": before != "",
		"Truncated": out.Truncated})
}

// foldedReadings are the citizen's own readings that every page of the
// portal makes (listing the credentials on /my/, reading this page): a
// run of them is one row, with how many more there were.
var foldedReadings = []string{"credential.list", "credential.list.own", "activity.read.own", "credential.info"}

// foldReadings folds each run of the citizen's own successful readings
// that the page names alike (the API's credential.list and
// credential.list.own are both "Your credentials listed"), without
// details, into its newest record, so that the other records (signatures,
// PIN changes, what staff did) are not lost among fifty of them; any
// other record is kept as it is.
//
// The folded row shows the time of the oldest record too (First): a
// reading at an hour the citizen was not at their screen is the clue to
// a stolen session, and must not vanish into the count.
func (v *view) foldReadings(in []activityEntry) []activityEntry {
	out := make([]activityEntry, 0, len(in))
	for _, e := range in {
		if n := len(out); n > 0 && foldable(e) && foldable(out[n-1]) && v.t(out[n-1].Key) == v.t(e.Key) && sameFacts(out[n-1], e) {
			out[n-1].Times++
			out[n-1].First = e.Time
			continue
		}
		e.Times, e.First = 1, e.Time
		out = append(out, e)
	}
	return out
}

// foldable reports whether e is a reading that foldReadings may fold.
func foldable(e activityEntry) bool {
	return slices.Contains(foldedReadings, e.Action) && e.By == "you" && e.Outcome == "success" && e.Credential == "" && e.Serial == "" && e.Client == ""
}

// sameFacts reports whether a and b say the same but for their record,
// time and action's code: any detail the API adds to a reading (a method,
// a client) keeps the records apart.
func sameFacts(a, b activityEntry) bool {
	for _, e := range []*activityEntry{&a, &b} {
		e.Seq, e.Time, e.First, e.Times, e.Action, e.Key = 0, time.Time{}, time.Time{}, 0, "", ""
	}
	return a == b
}
