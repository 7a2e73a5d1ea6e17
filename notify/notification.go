package notify

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
)

// Notification is one message to one citizen, the JSON body of one POST
// to the gateway.
type Notification struct {
	// ID is stable across retries and nodes, the gateway's idempotency
	// key: "audit-<seq>-<hash>" for an audit record, hash the first 6
	// bytes of the record's chain hash in hex, as a restore uses the seqs
	// after the backup's head again for other records
	// ("audit-<seq>-<hash>-<civil number>" when one record concerns
	// several citizens), and "expiry-<serial>-<window>" for a reminder.
	ID          string    `json:"id"`
	CivilNumber string    `json:"civilNumber"`
	Event       string    `json:"event"`
	Time        time.Time `json:"time"`
	Description Text      `json:"description"`
	// Serial is the holder's certificate the notification is about.
	Serial string `json:"serial,omitempty"`
	// Details are what the activity allowlist shows of the record (by
	// as a role, client, method, credential, newSerial, profile, reason,
	// documentDigest, level, denied, firstPIN), or a reminder's notAfter
	// and window.
	Details map[string]any `json:"details,omitempty"`

	seq int64 // the audit record's, 0 for a reminder
}

// Text is a description in English and Arabic.
type Text struct {
	EN string `json:"en"`
	AR string `json:"ar"`
}

// arabic are the Arabic descriptions of the notified actions (the English
// ones are identity/activity's).
var arabic = map[string]string{
	EventIssue:       "إصدار شهادة",
	EventRenew:       "تجديد شهادة",
	EventRevoke:      "إلغاء شهادة",
	EventPINSet:      "تعيين الرمز السري",
	EventPINChange:   "تغيير الرمز السري",
	EventPINLocked:   "قفل الرمز السري بعد محاولات خاطئة كثيرة",
	EventPINReset:    "إعادة تعيين الرمز السري (إصدار رمز تفعيل)",
	EventPINActivate: "تعيين الرمز السري برمز تفعيل",
	EventLogin:       "تسجيل دخول إلى بوابة بهويتك الرقمية",
	EventDenyAll:     "رفض جميع تسجيلات الدخول المعلّقة",
	EventSign:        "توقيع مستند",
	EventHashSign:    "توقيع بشهادتك",
}

// arabicFirstPIN is the Arabic description of the credential.pin.reset that
// issued the activation code of a new credential's first PIN
// (activity.Entry.FirstPIN): no PIN was reset.
const arabicFirstPIN = "إصدار رمز تفعيل لرمزك السري الأول للتوقيع"

// Owner is the holder of a certificate or credential that an audit record
// names.
type Owner struct {
	CivilNumber string
	// Credential says the object is a credential ID (else a serial).
	Credential bool
}

// candidates returns the objects of rec whose owners are to be looked up:
// its object and, for "cert:<serial>", its actor's serial.
func candidates(rec activity.Record) []string {
	out := []string{rec.Object}
	if s, ok := strings.CutPrefix(rec.Actor, "cert:"); ok {
		out = append(out, s)
	}
	return out
}

// notifications turns one audit record into its notifications: one for
// each citizen it concerns (the holder of its object, the citizen it
// names, the citizen who made it) who, by the activity's rules, is to see
// it. Only successes are told.
func notifications(rec activity.Record, owners map[string]Owner, clients map[string]string) []Notification {
	if rec.Outcome != "success" {
		return nil
	}
	subjects := map[string]*activity.Subject{}
	var order []string
	add := func(civil string) *activity.Subject {
		if civil == "" {
			return nil
		}
		s, ok := subjects[civil]
		if !ok {
			s = &activity.Subject{CivilNumber: civil}
			subjects[civil] = s
			order = append(order, civil)
		}
		return s
	}
	for _, obj := range candidates(rec) {
		if o, ok := owners[obj]; ok {
			s := add(o.CivilNumber)
			if o.Credential {
				s.Credentials = append(s.Credentials, obj)
			} else {
				s.Serials = append(s.Serials, obj)
			}
		}
	}
	if c, ok := strings.CutPrefix(rec.Object, "citizen:"); ok {
		add(c)
	}
	if c, ok := strings.CutPrefix(rec.Actor, "citizen:"); ok {
		add(c)
	} else if civilNumber(rec.Actor) {
		add(rec.Actor)
	}
	var out []Notification
	for _, civil := range order {
		e, ok := activity.Describe(*subjects[civil], rec, clients)
		if !ok {
			continue
		}
		out = append(out, fromEntry(civil, rec, e))
	}
	if len(out) > 1 {
		for i := range out {
			out[i].ID += "-" + out[i].CivilNumber
		}
	}
	return out
}

// civilNumber reports whether s looks like a civil number (digits alone),
// the subject of a citizen's API calls.
func civilNumber(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}

// fromEntry is the notification of an activity entry.
func fromEntry(civil string, rec activity.Record, e activity.Entry) Notification {
	n := Notification{ID: auditID(rec), CivilNumber: civil, Event: rec.Action,
		Time: rec.Time.UTC(), Description: Text{EN: e.Description, AR: arabic[rec.Action]}, Serial: e.Serial, seq: rec.Seq}
	if e.FirstPIN {
		n.Description.AR = arabicFirstPIN
	}
	d := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			d[k] = v
		}
	}
	set("by", e.By)
	set("client", e.Client)
	set("method", e.Method)
	set("credential", e.Credential)
	set("newSerial", e.NewSerial)
	set("profile", e.Profile)
	set("reason", e.Reason)
	set("documentDigest", e.DocumentDigest)
	set("level", e.Level)
	if e.Denied != nil {
		d["denied"] = *e.Denied
	}
	if e.FirstPIN {
		d["firstPIN"] = true
	}
	if len(d) > 0 {
		n.Details = d
	}
	return n
}

// auditID is the id of rec's notification: its seq and, as the seqs past
// a restored backup's head are used again, the start of its hash.
func auditID(rec activity.Record) string {
	id := "audit-" + strconv.FormatInt(rec.Seq, 10)
	if len(rec.Hash) > 0 {
		id += "-" + hex.EncodeToString(rec.Hash[:min(len(rec.Hash), 6)])
	}
	return id
}

// reminder is the notification that x expires within window.
func reminder(x Expiring, window time.Duration, now time.Time) Notification {
	days := int(math.Ceil(x.NotAfter.Sub(now).Hours() / 24))
	days = max(days, 0)
	name := windowName(window)
	return Notification{ID: "expiry-" + x.Serial + "-" + name, CivilNumber: x.CivilNumber, Event: EventExpiring,
		Time: now.UTC().Truncate(time.Second), Serial: x.Serial,
		Description: Text{
			EN: fmt.Sprintf("Your certificate expires in %d days: renew it", days),
			AR: fmt.Sprintf("تنتهي صلاحية شهادتك خلال %d يومًا: جدّدها", days),
		},
		Details: map[string]any{"notAfter": x.NotAfter.UTC().Format(time.RFC3339), "window": name}}
}
