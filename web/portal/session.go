package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
)

// session is one browser's state on the server. The cookie carries only
// a random identifier; the store keys sessions by its hash, so a memory
// dump of the store does not hand out cookies.
type session struct {
	key     [32]byte // sha256 of the cookie value
	csrf    string
	created time.Time
	seen    time.Time
	// who signed in (nil: nobody yet) and when; the session dies with
	// the login: at most maxAge after it, when the credential it was made
	// with expires (who.Expires), and at logout.
	who      *auth.Principal
	loggedIn time.Time
	// kind says how the person signed in: "citizen" (digital ID),
	// "officer" or "phone" (an API credential of the person's own).
	kind string
	// name is the person's name as the sign-in gave it (display only).
	name string
	// oidc is the login in flight: state, nonce and PKCE verifier.
	oidc *pendingLogin
	// signed is the last signed document, for download and its report.
	signed *signedDocument
	// approving is the document an approval is signing now, if any.
	approving *signedDocument
	// flash is a message for the next page (key into the catalogue).
	flash, flashKind string
}

// pendingLogin is an authorisation request sent to the provider.
type pendingLogin struct {
	state, nonce, verifier string
	started                time.Time
}

// sessions is the in-memory session store: bounded in number, idle and
// absolute lifetimes enforced on every read; sessions past them are
// swept when a session is created and by Portal.SweepSessions.
type sessions struct {
	mu     sync.Mutex
	byKey  map[[32]byte]*session
	idle   time.Duration
	maxAge time.Duration
	max    int
	now    func() time.Time
	// onDrop runs (under the lock) for every session that ends: it
	// releases what the session held.
	onDrop func(*session)
}

func newSessions(idle, maxAge time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{byKey: map[[32]byte]*session{}, idle: idle, maxAge: maxAge, max: max, now: now}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// keyOf hashes a cookie value; values of the wrong shape never match.
func keyOf(cookie string) ([32]byte, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(raw) != 32 {
		return [32]byte{}, false
	}
	return sha256.Sum256(raw), true
}

// create starts a session and returns it with its cookie value. When
// the store is full the least recently seen session is dropped.
func (s *sessions) create() (*session, string) {
	value := randomToken()
	k, _ := keyOf(value)
	now := s.now()
	se := &session{key: k, csrf: randomToken(), created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if len(s.byKey) >= s.max {
		// Anonymous sessions go first: a flood of visitors must not sign
		// people out.
		var oldest *session
		for _, o := range s.byKey {
			if oldest == nil || (o.who == nil) != (oldest.who == nil) && o.who == nil || (o.who == nil) == (oldest.who == nil) && o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		s.deleteLocked(oldest)
	}
	s.byKey[k] = se
	return se, value
}

// get returns the live session of a cookie value and marks it seen.
func (s *sessions) get(cookie string) (*session, bool) {
	k, ok := keyOf(cookie)
	if !ok {
		return nil, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.byKey[k]
	if !ok {
		return nil, false
	}
	if s.expired(se, now) {
		s.deleteLocked(se)
		return nil, false
	}
	se.seen = now
	return se, true
}

// expired reports whether se is past its idle or absolute lifetime.
func (s *sessions) expired(se *session, now time.Time) bool {
	if now.Sub(se.seen) > s.idle || now.Sub(se.created) > s.maxAge {
		return true
	}
	if se.who == nil {
		return false
	}
	// The login lasts maxAge at most, and never beyond the credential it
	// was made with (an officer's token or certificate).
	return now.Sub(se.loggedIn) > s.maxAge || !se.who.Expires.IsZero() && now.After(se.who.Expires)
}

// expireLocked ends the sessions past their lifetimes and returns how
// many ended. The caller holds the lock.
func (s *sessions) expireLocked(now time.Time) int {
	n := 0
	for _, se := range s.byKey {
		if s.expired(se, now) {
			s.deleteLocked(se)
			n++
		}
	}
	return n
}

// sweep ends the sessions past their lifetimes, releasing what they held,
// and returns how many ended.
func (s *sessions) sweep() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expireLocked(now)
}

// liveLocked reports whether se is still in the store (not ended by
// logout, expiry or eviction). The caller holds the lock.
func (s *sessions) liveLocked(se *session) bool { return s.byKey[se.key] == se }

// drop ends a session.
func (s *sessions) drop(se *session) {
	s.mu.Lock()
	s.deleteLocked(se)
	s.mu.Unlock()
}

// deleteLocked removes se and releases what it held.
func (s *sessions) deleteLocked(se *session) {
	if _, ok := s.byKey[se.key]; !ok {
		return
	}
	delete(s.byKey, se.key)
	if s.onDrop != nil {
		s.onDrop(se)
	}
}

// login binds a fresh session to who (a new identifier and CSRF token:
// nothing chosen before the login survives it) and drops old.
func (s *sessions) login(old *session, who *auth.Principal, kind string) (*session, string) {
	if old != nil {
		s.drop(old)
	}
	se, value := s.create()
	s.mu.Lock()
	se.who, se.kind, se.loggedIn = who, kind, s.now()
	s.mu.Unlock()
	return se, value
}

// locked runs f under the store's lock (session fields are shared by the
// requests of one browser).
func (s *sessions) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// validCSRF compares a submitted token with the session's in constant time.
func (se *session) validCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) == 1
}

// cookieName is the session cookie's name: the __Host- prefix under TLS
// (the browser then insists on Secure, Path=/ and no Domain).
func cookieName(secure bool) string {
	if secure {
		return "__Host-thiqa-session"
	}
	return "thiqa-session"
}

// setCookie sends the session cookie: HttpOnly, SameSite=Lax (the
// provider's redirect back to /my/callback is a top-level GET, which Lax
// lets carry it; Strict would lose the login), Secure under TLS, no
// Max-Age (a browser session; the server enforces the lifetimes).
func setCookie(w http.ResponseWriter, secure bool, value string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(secure), Value: value, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
}

// clearCookie removes the session cookie.
func clearCookie(w http.ResponseWriter, secure bool) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(secure), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
}

// SweepSessions ends, every interval until ctx ends, the sessions past
// their idle or absolute lifetime, and releases the documents they held:
// without it an abandoned session would keep its memory, and its share of
// MaxHeldBytes, until the next sign-in or visit creates a session. `thiqa
// serve` runs it in the background.
func (p *Portal) SweepSessions(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := p.ses.sweep(); n > 0 {
				p.log.Debug("portal sessions expired", "sessions", n)
			}
		}
	}
}
