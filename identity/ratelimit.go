package identity

import (
	"net/http"
	"net/url"

	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/ratelimit"
)

// limited takes a token from limit for the client IP of r (clientip,
// behind the trusted proxies). When there is none left it sets
// Retry-After, counts the refusal in thiqa_oidc_rate_limited_total and
// records it: the first refusal of each run of refusals of the address
// goes into the audit log (action, object), with the address, the limit
// and the wait, so that an address that keeps knocking leaves one record,
// not one per request; the others are counted only. It returns whether
// the request was refused, and the error of the audit append (the caller
// answers a refusal without its record as a failure).
func (p *Provider) limited(w http.ResponseWriter, r *http.Request, limit *ratelimit.Limiter, name, action, object string, details map[string]any) (refused bool, err error) {
	addr := clientip.FromRequest(r).Key()
	d := limit.Take(addr)
	if d.Allowed {
		return false, nil
	}
	p.m.limited.WithLabelValues(name).Inc()
	if d.Streak == 1 {
		if details == nil {
			details = map[string]any{}
		}
		details["reason"] = "too many requests from this address (rate limit " + name + ")"
		details["limit"], details["address"], details["remote"] = name, addr, r.RemoteAddr
		details["retryAfter"] = ratelimit.RetryAfter(d.Wait)
		details["note"] = "further refusals of this address in a row are counted in thiqa_oidc_rate_limited_total, not recorded"
		if err := p.audit(r.Context(), "", action, object, "refused", details); err != nil {
			// Answered as a failure: the next refusal is the first of the
			// run again, so that the run does not go unrecorded.
			limit.ResetStreak(addr)
			return true, err
		}
	}
	w.Header().Set("Retry-After", ratelimit.RetryAfter(d.Wait))
	return true, nil
}

// msgTooManyFromAddress is the login page's message when the address has
// started too many logins.
const msgTooManyFromAddress = "Too many logins were started from your network. Try again in a few minutes. " +
	"بدأت طلبات دخول كثيرة من شبكتك. حاول مرة أخرى بعد بضع دقائق."

// loginRateLimited applies the login-start limit (Config.LoginRate) to a
// request that would start a mobile login. When refused it has recorded
// the refusal (the first of a run: limited) and shown the login form again
// with 429 and Retry-After, as past MaxPendingLogins.
func (p *Provider) loginRateLimited(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest, form url.Values) bool {
	refused, err := p.limited(w, r, p.logins, limitLogin, "oidc.login", c.ID, map[string]any{"method": MethodMobile})
	if !refused {
		return false
	}
	if err != nil {
		renderPage(w, http.StatusServiceUnavailable, "error", errorPage{Error: errServerError + ": " + descRefusalUnrecorded})
		return true
	}
	p.m.logins.WithLabelValues(MethodMobile, "refused").Inc()
	p.showLogin(w, c, form, req.Kind, msgTooManyFromAddress, http.StatusTooManyRequests)
	return true
}

// errTemporarilyUnavailable is the OAuth error of a token request refused
// by the rate limit. RFC 6749 section 5.2 has no code for it (it defines
// temporarily_unavailable for the authorization endpoint, section
// 4.1.2.1): the answer's status, 429, and its Retry-After say what to do,
// and the code says it in OAuth's words, as the CSC API's errors do.
const errTemporarilyUnavailable = "temporarily_unavailable"

// tokenRateLimited applies the token limit (Config.TokenRate) at ep. When
// refused it has recorded the refusal (the first of a run: limited) and
// answered 429 with Retry-After and an OAuth error body.
func (p *Provider) tokenRateLimited(w http.ResponseWriter, r *http.Request, ep tokenEndpoint) bool {
	refused, err := p.limited(w, r, p.tokens, limitToken, ep.action, ep.path, nil)
	if !refused {
		return false
	}
	if err != nil {
		p.m.tokens.WithLabelValues(errServerError).Inc()
		writeOAuthError(w, http.StatusServiceUnavailable, errServerError, descRefusalUnrecorded)
		return true
	}
	p.m.tokens.WithLabelValues(errTemporarilyUnavailable).Inc()
	writeOAuthError(w, http.StatusTooManyRequests, errTemporarilyUnavailable, "too many token requests from this address; retry after "+w.Header().Get("Retry-After")+" s")
	return true
}

// userinfoRecorded takes a token from the address's budget of recorded
// userinfo refusals (the token endpoints' rate, Config.TokenRate and
// TokenBurst) and says whether to record the refusal: within the budget,
// and past it the first of each run, with the address, the limit and a
// note in details. The others are counted in
// thiqa_oidc_rate_limited_total{limit="userinfo"}, not recorded: anyone
// may call the endpoint, and without the bound every forged token would
// cost an audit record. The answer is the refusal's own either way (401
// invalid_token with its challenge, RFC 6750 section 3.1): a client whose
// token expired behind a flood from its address (a NAT'd office) is told
// to get a new one, not to wait. Within the address's budget the refusal
// is also taken from the service's overall budget (userinfoRefusals,
// ratelimit.OverallBurst and OverallRate): past it the refusal is counted
// in thiqa_oidc_rate_limited_total{limit="userinfo_overall"}, not
// recorded, and the next recorded one carries their number
// (unrecordedOverall). undo, when record is true, is for a record that
// cannot be written: the run's next refusal is recorded instead.
func (p *Provider) userinfoRecorded(r *http.Request, details map[string]any) (record bool, undo func()) {
	addr := clientip.FromRequest(r).Key()
	v := p.userinfoRefusals.Take(addr)
	if v.Past {
		p.m.limited.WithLabelValues(limitUserinfo).Inc()
	}
	if !v.Record {
		if v.LeftOverall && !v.Past { // else counted once already, under limitUserinfo
			p.m.limited.WithLabelValues(limitUserinfoOverall).Inc()
		}
		return false, nil
	}
	if v.Unrecorded > 0 {
		details["unrecordedOverall"] = v.Unrecorded
	}
	if v.Past {
		details["limit"], details["address"] = limitUserinfo, addr
		details["note"] = "further refusals of this address in a row are counted in thiqa_oidc_rate_limited_total, not recorded"
	}
	return true, v.Undo
}

// authorizeRecorded takes a refused authorization request of r from its
// address's budget (ratelimit.NewAnonymousRefusalBudget) and the
// overall one (ratelimit.OverallBurst, OverallRate), as userinfoRecorded
// does, and says whether to record it: within both, and the first of each
// run past the address's (details then say so). The request is answered
// as always either way. undo, when record is true, is for a record that
// cannot be written: the run's next refusal is recorded instead.
func (p *Provider) authorizeRecorded(r *http.Request, details map[string]any) (record bool, undo func()) {
	return budgetRecorded(r, p.authorizeRefusals, details,
		"further refused authorization requests of this address in a row are not recorded")
}

// budgetRecorded takes a refusal of r from budget (that of its address
// and the overall one), and says whether to record it: within
// both, and the first of each run past the address's (details then name
// the address and carry note). Past the overall budget none is recorded,
// and the next record says how many were left out (unrecordedOverall).
// undo, when record is true, is for a record that cannot be written.
func budgetRecorded(r *http.Request, budget *ratelimit.RefusalBudget, details map[string]any, note string) (record bool, undo func()) {
	addr := clientip.FromRequest(r).Key()
	v := budget.Take(addr)
	if !v.Record {
		return false, nil
	}
	if v.Unrecorded > 0 {
		details["unrecordedOverall"] = v.Unrecorded
	}
	if v.Past {
		details["address"] = addr
		details["note"] = note
	}
	return true, v.Undo
}

// auditAuthorizeRefusal records the refusal of a malformed authorization
// request (action oidc.authorize or csc.oauth2.authorize) within the
// budgets of authorizeRecorded; it returns the error of the record's
// append (nil when it was not due).
func (p *Provider) auditAuthorizeRefusal(r *http.Request, action, clientID string, details map[string]any) error {
	record, undo := p.authorizeRecorded(r, details)
	if !record {
		return nil
	}
	if err := p.audit(r.Context(), "", action, clientID, "refused", details); err != nil {
		undo()
		return err
	}
	return nil
}
