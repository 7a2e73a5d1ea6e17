package store

import (
	"context"
	"strings"

	"github.com/thiqa/thiqa/ca"
)

// SearchCertificates implements ca.Searcher: the issued certificates whose
// subject (its RFC 4514 string, lower-cased) contains every one of
// contains, newest first, at most limit. The caller checks the candidates
// exactly; this narrows them.
func (c *Certificates) SearchCertificates(ctx context.Context, contains []string, limit int) ([]ca.CertificateRecord, error) {
	q := certSelect + ` WHERE c.state = 'issued'`
	args := make([]any, 0, len(contains)+1)
	for _, s := range contains {
		q += ` AND lower(c.subject) LIKE ? ESCAPE '\'`
		args = append(args, "%"+likeEscape(strings.ToLower(s))+"%")
	}
	q += ` ORDER BY c.issued_at DESC, c.serial LIMIT ?`
	args = append(args, limit)
	rows, err := c.db.query(ctx, q, args...)
	if err != nil {
		return nil, mapErr("store: searching certificates", err)
	}
	defer rows.Close()
	var out []ca.CertificateRecord
	for rows.Next() {
		rec, err := scanCertificate(rows)
		if err != nil {
			return nil, mapErr("store: searching certificates", err)
		}
		out = append(out, *rec)
	}
	return out, mapErr("store: searching certificates", rows.Err())
}

// likeEscape escapes LIKE's wildcards (and its escape character).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
