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
// again only when its inode, size, mode or modification time changed (and
// then stayed so for SecretSettle).
const SecretCheckEvery = time.Second

// SecretSettle is how long a changed secret file must stay unchanged
// before it is read: a file written in place (truncated, then written in
// more than one write) is never read half-written, whose partial key
// could pass the checks and sign notifications the gateway refuses for
// good. A file renamed over the old one (the way the runbook gives) is
// taken up SecretSettle after the rename, give or take a look.
const SecretSettle = time.Second

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
	settle  time.Duration // SecretSettle (tests: shorter)
	seen    os.FileInfo   // the file's stat when last read (nil: never read, or missing)
	checked time.Time     // when it was last looked at (monotonic)
	broken  bool          // the file as last read was unusable: reported once

	// A change seen but not yet read: the file's stat then, and since
	// when it has stayed so (monotonic).
	waiting bool
	pending os.FileInfo
	since   time.Time
}

// sameStat reports whether a and b (nil: missing) are the same file as it
// was: the same inode, size, mode and modification time.
func sameStat(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.Mode() == b.Mode() && a.ModTime().Equal(b.ModTime())
}

// changed reports whether fi (nil: the file is missing) differs from the
// file as last seen: a rename over it (another inode), a write, a chmod.
func (w *secretWatch) changed(fi os.FileInfo) bool {
	switch {
	case fi == nil || w.seen == nil:
		return fi != nil || w.seen != nil || !w.broken
	}
	return !sameStat(fi, w.seen)
}

// checkSecret re-reads the webhook's secret file when it changed since it
// was last read and has stayed unchanged for SecretSettle since (looked
// at most every SecretCheckEvery unless force): a usable new key
// signs the deliveries from now on, and its change is logged with its
// fingerprint and the file's name. A file that became unusable (missing,
// readable by others, too short, not a regular file) keeps the last good key; the error is
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
		w.waiting = false // changed back, or never changed
		return
	}
	if !w.waiting || !sameStat(fi, w.pending) {
		// Perhaps still being written: wait until it stays so.
		w.waiting, w.pending, w.since = true, fi, now
	}
	if now.Sub(w.since) < w.settle {
		return
	}
	key, rfi, err := readSecret(w.path, true)
	if err != nil {
		rfi, _ = os.Stat(w.path) // nil: missing
	}
	if !sameStat(rfi, fi) {
		// Changed while being read: not the file that settled.
		w.waiting, w.pending, w.since = true, rfi, now
		return
	}
	w.waiting, w.seen = false, fi
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
