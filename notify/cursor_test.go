package notify

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStatusJSONKeys pins the keys of `thiqa notify status --json`, a
// contract documented in docs/operations.md: enabled, cursor, head, lag,
// lease (holder, until, live); cursor and lease null without a cursor,
// until absent for a lease given up.
func TestStatusJSONKeys(t *testing.T) {
	until := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		s    Status
		want string
	}{
		{Status{Cursor: Cursor{Head: 7}}, `{"cursor":null,"enabled":false,"head":7,"lag":0,"lease":null}`},
		{Status{Enabled: true, Cursor: Cursor{Set: true, Seq: 3, Head: 7, Holder: "node-1", LeaseUntil: until, LeaseLive: true}},
			`{"cursor":3,"enabled":true,"head":7,"lag":4,"lease":{"holder":"node-1","live":true,"until":"2026-12-05T08:00:00Z"}}`},
		{Status{Cursor: Cursor{Set: true, Seq: 7, Head: 7, Holder: "node-1"}},
			`{"cursor":7,"enabled":false,"head":7,"lag":0,"lease":{"holder":"node-1","live":false}}`},
	} {
		var b bytes.Buffer
		if err := tc.s.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		canon, _ := json.Marshal(m) // keys sorted
		if string(canon) != tc.want {
			t.Errorf("notify status --json of %+v:\n%s\nwant %s", tc.s, canon, tc.want)
		}
		var text bytes.Buffer
		if err := tc.s.WriteText(&text); err != nil || !strings.Contains(text.String(), "audit head     7") {
			t.Errorf("notify status text: %v\n%s", err, text.String())
		}
	}
}
