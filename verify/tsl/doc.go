// Package tsl reads ETSI TS 119 612 trusted lists for relying parties: it
// checks a list's XML signature against the signer certificates the relying
// party configured, parses the scheme information, the trust service
// providers and their services with their status history, follows the EU
// list of trusted lists (LOTL) to the national lists it points to, and
// answers the two questions verification asks of trusted lists: which
// certificates are trust anchors, and whether a certificate is qualified at
// a given time (ETSI TS 119 615).
//
// # The list's signature
//
// A trusted list carries one enveloped XAdES-BES signature (TS 119 612
// §5.7). Check accepts exactly this shape and refuses everything else:
//
//   - exactly one ds:Signature in the whole document, a child of the
//     TrustServiceStatusList root (no signature wrapping: a signature
//     elsewhere, or a second one, is a FORMAT_FAILURE);
//   - one reference covering the whole list (URI "" or "#" + the root's Id)
//     with the enveloped-signature transform and at most one canonicalisation
//     transform, and one reference to the signature's own
//     xades:SignedProperties; no other references, no XPath or XSLT
//     transforms, no duplicate Id attributes;
//   - canonicalisation: exclusive C14N 1.0 (with or without comments, with an
//     InclusiveNamespaces prefix list) or inclusive C14N 1.0 / 1.1, each done
//     by github.com/russellhaering/goxmldsig's canonicalisers on
//     github.com/beevik/etree (nothing here canonicalises by hand);
//   - signature algorithms RSA PKCS#1 v1.5 and RSA-PSS with SHA-256/384/512
//     (RSA keys of 2048 bits or more) and ECDSA with SHA-256/384/512 (the
//     XMLDSig r||s value; a DER value is also read); digests SHA-256/384/512.
//     SHA-1 anywhere except the XAdES certificate digest is
//     CRYPTO_CONSTRAINTS_FAILURE;
//   - the signing certificate (ds:KeyInfo) must be one of the configured
//     signer certificates (else NO_CERTIFICATE_CHAIN_FOUND), and the XAdES
//     SigningCertificate(V2) digest must name it.
//
// goxmldsig's own ValidationContext is not used: it gives up on any document
// of more than 1,000 elements (every real trusted list), checks only the
// reference to the root (not the XAdES SignedProperties) and reports
// failures as untyped text. The references are therefore resolved here,
// under the rules above, and the bytes each one covers are canonicalised by
// goxmldsig.
//
// # Hostile input
//
// Before any XML is built, the document is scanned as a stream: a DOCTYPE
// (and so any entity declaration) is refused, as are documents larger,
// deeper or with more elements than Limits allow, and any encoding but
// UTF-8. Loading a LOTL follows pointers one level only (from a list of
// lists to the lists it names), never the same location twice and never more
// than Loader.MaxLists lists, each fetch bounded by a timeout and the
// caller's context.
package tsl
