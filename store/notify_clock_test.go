package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/thiqa/thiqa/notify"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestNotifyRemindersNodeClocksApart pins why the reminders need no
// database clock: two nodes whose clocks are 20 minutes apart hand the
// lease over after every reminder; each node decides the windows by its
// own clock (the node ahead sees the certificates inside the small window,
// the one behind only inside the large one), yet no reminder (one
// certificate, one window: the notification's id) is sent twice, and every
// certificate is reminded. A certificate the node behind reminds for the
// large window is reminded for the small one by the node ahead: one
// reminder per window, as when it enters the small window by the next
// day's pass. What was sent is recorded per certificate and
// window in the database (notify_reminders, its primary key), whatever the
// clock of the node that sent it; a clock only moves the moment a
// certificate enters a window.
func TestNotifyRemindersNodeClocksApart(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			a := newAuthority(t, db.Certificates(nil))
			var first time.Time
			for i := range 4 {
				req := citizenRequest(t)
				req.Subject["civilNumber"] = fmt.Sprintf("1111111%d", i)
				got, err := a.Issue(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = got.Certificate.NotAfter
				}
			}
			// The small window ends 5 minutes before the first
			// certificate's end: inside it by the clock 10 minutes ahead,
			// outside by the clock 10 minutes behind (and by the true one).
			small := (time.Until(first) - 5*time.Minute).Truncate(time.Second)
			large := small + 48*time.Hour
			windows := []time.Duration{large, small}
			g := newNotifyGateway(t)
			skew := [2]time.Duration{10 * time.Minute, -10 * time.Minute}
			var nodes [2]*notify.Notifier
			for i := range nodes {
				nodes[i] = newNotifier(t, db, g, notify.Options{Holder: fmt.Sprint("node-", i),
					Now:    func() time.Time { return time.Now().Add(skew[i]) },
					Config: notify.Config{ExpiryReminders: windows, Batch: 1}})
			}
			for round := range 40 {
				i := []int{1, 0}[round%2] // the node behind first
				if _, err := nodes[i].Round(ctx); err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
				if err := db.Notify().ReleaseLease(ctx, fmt.Sprint("node-", i)); err != nil {
					t.Fatal(err)
				}
			}
			ids, serials := map[string]int{}, map[string]bool{}
			for _, x := range g.got {
				ids[x.ID]++
				serials[x.Serial] = true
			}
			for id, n := range ids {
				if n > 1 {
					t.Errorf("reminder %s sent %d times", id, n)
				}
			}
			if len(serials) != 4 {
				t.Fatalf("%d certificates reminded, want 4: %+v", len(serials), g.got)
			}
			t.Logf("%d reminders: %v", len(g.got), ids)
		})
	}
}
