package auth

import "context"

// MethodSession is Principal.Method for a caller who signed in to one of
// the server's own web pages (web/portal): the page calls the API in
// process on the person's behalf with WithSession.
const MethodSession = "session"

type sessionKey struct{}

// WithSession returns a context whose requests Require authenticates as p
// (method MethodSession) instead of reading credentials from the request.
// Only code in this process can set it: the web pages pass the principal
// of a signed-in person so that every action goes through the same
// authorisation, service code and audit as the API, under that person's
// identity. p is copied; its Method becomes MethodSession.
func WithSession(ctx context.Context, p *Principal) context.Context {
	cp := *p
	cp.Method = MethodSession
	return context.WithValue(ctx, sessionKey{}, &cp)
}

// sessionOf returns the principal WithSession put in ctx.
func sessionOf(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(sessionKey{}).(*Principal)
	return p, ok && p != nil
}
