package notify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"time"
)

// SecretCheckEvery bounds how often the secret file is looked at during a
// round (once before each delivery at most this often); every round also
// looks at it once, as it starts. A look is one stat: the file is read
// again only when its inode, size, mode or modification time changed.
const SecretCheckEvery = time.Second

// Fingerprint names a webhook key in logs and runbooks without giving it
// away: the first 8 bytes of its SHA-256, in hex. An operator computes the
// same from the file with
// `printf %s "$(cat notify.secret)" | sha256sum | cut -c1-16`.
func Fingerprint(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:8])
}

// secretWatch is the secret file as the notifier last saw it (loop only).
type secretWatch struct {
	path    string
	every   time.Duration // SecretCheckEvery (tests: shorter)
	seen    os.FileInfo   // the file's last stat (nil: never seen, or missing)
	checked time.Time     // when it was last looked at (monotonic)
	broken  bool          // the file as last seen was unusable: reported once
}

// changed reports whether fi (nil: the file is missing) differs from the
// file as last seen: a rename over it (another inode), a write, a chmod.
func (w *secretWatch) changed(fi os.FileInfo) bool {
	switch {
	case fi == nil || w.seen == nil:
		return fi != nil || w.seen != nil || !w.broken
	case !os.SameFile(fi, w.seen):
		return true
	}
	return fi.Size() != w.seen.Size() || fi.Mode() != w.seen.Mode() || !fi.ModTime().Equal(w.seen.ModTime())
}

// checkSecret re-reads the webhook's secret file when it changed since the
// last look (at most every SecretCheckEvery unless force): a usable new key
// signs the deliveries from now on, and its change is logged with its
// fingerprint and the file's name. A file that became unusable (missing,
// readable by others, too short) keeps the last good key; the error is
// logged once per change of the file, naming the file, and counted in
// thiqa_notify_secret_errors_total. The key is never logged.
func (n *Notifier) checkSecret(force bool) {
	w := n.secret
	if w == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(w.checked) < w.every {
		return
	}
	w.checked = now
	fi, err := os.Stat(w.path)
	if err != nil {
		fi = nil
	}
	if !w.changed(fi) {
		return
	}
	w.seen = fi // before the read: a change while reading is seen next time
	key, err := ReadSecret(w.path)
	if err != nil {
		w.broken = true
		n.m.secretErrors.Inc()
		n.log.Error("the notification secret file cannot be used: the last good key still signs the notifications",
			"file", w.path, "err", err, "fingerprint", Fingerprint(n.hook.secret))
		return
	}
	wasBroken := w.broken
	w.broken = false
	if bytes.Equal(key, n.hook.secret) {
		if wasBroken {
			n.log.Info("the notification secret file is usable again: the key is unchanged", "file", w.path, "fingerprint", Fingerprint(key))
		}
		return
	}
	old := n.hook.secret
	n.hook.secret = key
	n.log.Info("notification secret changed: the new key signs the notifications from now on",
		"action", ActionSecretRotate, "file", w.path, "fingerprint", Fingerprint(key), "previous", Fingerprint(old))
}

// ActionSecretRotate names the change of the webhook's key in the log
// line that records it (the notifier writes no audit record of its own).
const ActionSecretRotate = "notify.secret.rotate"
