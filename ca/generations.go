package ca

import "context"

// Generations is the authority as the OCSP responders of every CA
// generation need it (revocation.Certifier): a request names its
// generation by issuer name (citizen, citizen_2) as its CA, and each
// generation certifies its own responder, the current one or not.
type Generations struct{ *Authority }

// Issue issues from the generation req.CA names (Request.Issuer).
func (g Generations) Issue(ctx context.Context, req Request) (*Issued, error) {
	req.Issuer, req.CA = req.CA, ""
	return g.Authority.Issue(ctx, req)
}
