package signer

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/thiqa/thiqa/signer/cades"
	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// validationData is what goes into the DSS.
type validationData struct {
	certs, ocsps, crls [][]byte
	// missing names the certificates left without revocation data
	// (AllowMissingRevocation).
	missing []string
}

// certPool is an ordered, de-duplicated set of certificates.
type certPool struct {
	list []*x509.Certificate
	seen map[[32]byte]bool
}

func (p *certPool) add(cs ...*x509.Certificate) {
	if p.seen == nil {
		p.seen = map[[32]byte]bool{}
	}
	for _, c := range cs {
		if c == nil {
			continue
		}
		k := sha256.Sum256(c.Raw)
		if !p.seen[k] {
			p.seen[k] = true
			p.list = append(p.list, c)
		}
	}
}

// issuerOf finds c's issuer by name and key identifier. Collecting
// validation data needs no signature check (the verifier does that), so a
// signature is checked only to choose between look-alike candidates.
func (p *certPool) issuerOf(c *x509.Certificate) *x509.Certificate {
	var cands []*x509.Certificate
	for _, cand := range p.list {
		if cand == c || !bytes.Equal(cand.RawSubject, c.RawIssuer) {
			continue
		}
		if len(c.AuthorityKeyId) > 0 && len(cand.SubjectKeyId) > 0 && !bytes.Equal(c.AuthorityKeyId, cand.SubjectKeyId) {
			continue
		}
		cands = append(cands, cand)
	}
	if len(cands) == 1 {
		return cands[0]
	}
	for _, cand := range cands {
		if c.CheckSignatureFrom(cand) == nil {
			return cand
		}
	}
	return nil
}

// selfSigned reports a certificate that is its own issuer (a root: no
// revocation data is gathered for it).
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	if len(c.AuthorityKeyId) > 0 && len(c.SubjectKeyId) > 0 {
		return bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
	}
	return c.CheckSignatureFrom(c) == nil
}

// gather collects certificates and revocation data for every certificate
// the signatures (CMS DER) and their time-stamps rely on.
func gather(ctx context.Context, v ValidationOptions, sigs [][]byte, chain []*x509.Certificate) (*validationData, error) {
	var pool certPool
	pool.add(chain...)
	var raw [][]byte // certificates crypto/x509 may not parse
	for _, der := range sigs {
		p, err := cades.ParseWith(der, v.Cache.parseCertificate)
		if err != nil {
			return nil, fmt.Errorf("signer: reading a signature for the DSS: %w", err)
		}
		pool.add(p.Certificates...)
		raw = append(raw, p.RawCertificates...)
		for _, tok := range p.Timestamps {
			if tp, err := cades.ParseWith(tok, v.Cache.parseCertificate); err == nil {
				pool.add(tp.Certificates...)
				raw = append(raw, tp.RawCertificates...)
			}
		}
	}
	pool.add(v.ExtraCerts...)
	vd := &validationData{}
	seenCert := map[[32]byte]bool{}
	addCert := func(b []byte) {
		k := sha256.Sum256(b)
		if !seenCert[k] {
			seenCert[k] = true
			vd.certs = append(vd.certs, b)
		}
	}
	seenRev := map[[32]byte]bool{}
	addRev := func(list *[][]byte, b []byte) {
		k := sha256.Sum256(b)
		if !seenRev[k] {
			seenRev[k] = true
			*list = append(*list, b)
		}
	}
	var responders [][]byte // certificates the OCSP responses carry
	targets := append([]*x509.Certificate(nil), pool.list...)
	for i := 0; i < len(targets); i++ {
		c := targets[i]
		if v.Cache.isSelfSigned(c) {
			continue
		}
		issuer := pool.issuerOf(c)
		if issuer == nil {
			if f, ok := v.Revocation.(IssuerFetcher); ok {
				cctx, cancel := v.callContext(ctx)
				if got, err := f.Issuer(cctx, c); err == nil && got != nil && c.CheckSignatureFrom(got) == nil {
					pool.add(got)
					issuer = got
					if !v.Cache.isSelfSigned(got) {
						targets = append(targets, got)
					}
				}
				cancel()
			}
		}
		if issuer == nil {
			if v.AllowMissingRevocation {
				vd.missing = append(vd.missing, c.Subject.String()+": issuer certificate not available")
				continue
			}
			return nil, fmt.Errorf("%w: issuer of %q not available", ErrRevocation, c.Subject.String())
		}
		if v.Revocation == nil {
			return nil, fmt.Errorf("%w: no revocation source", ErrRevocation)
		}
		cctx, cancel := v.callContext(ctx)
		resp, oerr := v.Revocation.OCSP(cctx, c, issuer)
		cancel()
		if oerr == nil && len(resp) > 0 {
			addRev(&vd.ocsps, resp)
			responders = append(responders, ocspCertificates(resp)...)
			continue
		}
		cctx, cancel = v.callContext(ctx)
		crl, cerr := v.Revocation.CRL(cctx, issuer)
		cancel()
		if cerr == nil && len(crl) > 0 {
			addRev(&vd.crls, crl)
			continue
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %v", ErrRevocation, ctx.Err())
		}
		if !v.AllowMissingRevocation {
			return nil, fmt.Errorf("%w: %q: OCSP: %v; CRL: %v", ErrRevocation, c.Subject.String(), oerr, cerr)
		}
		vd.missing = append(vd.missing, fmt.Sprintf("%s: OCSP: %v; CRL: %v", c.Subject.String(), oerr, cerr))
	}
	for _, c := range pool.list {
		addCert(c.Raw)
	}
	for _, b := range responders {
		addCert(b)
	}
	for _, b := range raw {
		addCert(b)
	}
	return vd, nil
}

// vriKey returns the /VRI key of a signature: the uppercase hex SHA-1 of
// the bytes of its /Contents string, padding included (what EU DSS and
// Adobe write and look up).
func vriKey(contents []byte) pdfdoc.Name {
	s := sha1.Sum(contents)
	return pdfdoc.Name(strings.ToUpper(hex.EncodeToString(s[:])))
}

// IssuerFetcher is an optional interface of a RevocationSource: it fetches
// the issuer certificate of cert (from its AIA caIssuers URL) when the
// signatures and ExtraCerts do not hold it.
type IssuerFetcher interface {
	Issuer(ctx context.Context, cert *x509.Certificate) (*x509.Certificate, error)
}

// addDSSMissing is addDSS for an extension: it returns what could not be
// had (with AllowMissingRevocation).
func (d *document) addDSSMissing(ctx context.Context, v ValidationOptions, sigs [][]byte) ([]string, error) {
	vd, err := gather(ctx, v, sigs, nil)
	if err != nil {
		return nil, err
	}
	return vd.missing, d.writeDSS(v, vd, sigs)
}

// addDSS appends an incremental update adding (or extending) the /DSS
// dictionary with the validation data of sigs (the /Contents bytes of the
// signatures and document time-stamps to cover).
func (d *document) addDSS(ctx context.Context, v ValidationOptions, sigs [][]byte, chain []*x509.Certificate) error {
	vd, err := gather(ctx, v, sigs, chain)
	if err != nil {
		return err
	}
	return d.writeDSS(v, vd, sigs)
}

// writeDSS appends the DSS update holding vd.
func (d *document) writeDSS(v ValidationOptions, vd *validationData, sigs [][]byte) error {
	rd, err := d.open()
	if err != nil {
		return err
	}
	cat, err := rd.Catalog()
	if err != nil {
		return mapErr("reading the catalog", err)
	}
	u := pdfdoc.NewUpdate(rd)
	old, err := rd.ResolveDict(cat["DSS"])
	if err != nil {
		return mapErr("reading the existing /DSS", err)
	}
	dss := pdfdoc.Dict{"Type": pdfdoc.Name("DSS")}
	for k, val := range old {
		dss[k] = val
	}
	for _, part := range []struct {
		key  pdfdoc.Name
		list [][]byte
	}{{"Certs", vd.certs}, {"OCSPs", vd.ocsps}, {"CRLs", vd.crls}} {
		existing, have, err := existingStreams(rd, old[part.key])
		if err != nil {
			return err
		}
		arr := append(pdfdoc.Array{}, existing...)
		for _, b := range part.list {
			if have[sha256.Sum256(b)] {
				continue
			}
			ref := u.Alloc()
			if err := u.WriteStream(ref, pdfdoc.Dict{}, b, false); err != nil {
				return err
			}
			arr = append(arr, ref)
		}
		if len(arr) > 0 {
			dss[part.key] = arr
		}
	}
	if v.VRI {
		vri, err := rd.ResolveDict(old["VRI"])
		if err != nil {
			return mapErr("reading /VRI", err)
		}
		vri = vri.Clone()
		entry := pdfdoc.Dict{}
		for k, key := range map[pdfdoc.Name]pdfdoc.Name{"Cert": "Certs", "OCSP": "OCSPs", "CRL": "CRLs"} {
			if a, ok := dss[key].(pdfdoc.Array); ok {
				entry[k] = a
			}
		}
		for _, s := range sigs {
			vri[vriKey(s)] = entry
		}
		dss["VRI"] = vri
	}
	dssRef := u.Alloc()
	u.WriteObject(dssRef, dss)
	newCat := cat.Clone()
	newCat["DSS"] = dssRef
	ext, _ := rd.ResolveDict(cat["Extensions"])
	ext = ext.Clone()
	if _, ok := ext["ADBE"]; !ok {
		ext["ADBE"] = pdfdoc.Dict{"BaseVersion": pdfdoc.Name("1.7"), "ExtensionLevel": int64(5)}
		newCat["Extensions"] = ext
	}
	u.WriteObject(rd.RootRef(), newCat)
	data, err := u.Finish()
	if err != nil {
		return fmt.Errorf("signer: writing the DSS update: %w", err)
	}
	d.tail = append(d.tail, data...)
	return nil
}

// existingStreams resolves an existing DSS array and returns its entries and
// the hashes of their (decoded) contents.
func existingStreams(rd *pdfdoc.Reader, o pdfdoc.Object) (pdfdoc.Array, map[[32]byte]bool, error) {
	have := map[[32]byte]bool{}
	if o == nil {
		return nil, have, nil
	}
	v, err := rd.Resolve(o)
	if err != nil {
		return nil, nil, mapErr("reading the existing /DSS", err)
	}
	arr, _ := v.(pdfdoc.Array)
	for _, e := range arr {
		s, err := rd.Resolve(e)
		if err != nil {
			return nil, nil, mapErr("reading the existing /DSS", err)
		}
		if st, ok := s.(*pdfdoc.Stream); ok {
			if b, err := rd.StreamData(st, 16<<20); err == nil {
				have[sha256.Sum256(b)] = true
			}
		}
	}
	return arr, have, nil
}
