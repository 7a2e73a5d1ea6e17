package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/outage"
)

// KeyType is a key algorithm and size Thiqa generates and signs with.
type KeyType int

// Key types. The zero value is no supported type.
const (
	ECP256 KeyType = iota + 1
	ECP384
	RSA2048
	RSA3072
	RSA4096
)

var keyTypeNames = [...]string{"", "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"}

// String returns the configuration name ("ec-p256", "rsa-2048", …).
func (k KeyType) String() string {
	if k > 0 && int(k) < len(keyTypeNames) {
		return keyTypeNames[k]
	}
	return "unsupported"
}

// ParseKeyType parses "ec-p256", "ec-p384", "rsa-2048", "rsa-3072" or "rsa-4096".
func ParseKeyType(s string) (KeyType, error) {
	for i, n := range keyTypeNames {
		if i > 0 && n == s {
			return KeyType(i), nil
		}
	}
	return 0, fmt.Errorf("hsm: unknown key type %q (want one of %s)", s, strings.Join(keyTypeNames[1:], ", "))
}

// IsRSA reports whether k is an RSA key type.
func (k KeyType) IsRSA() bool { return k >= RSA2048 && k <= RSA4096 }

func (k KeyType) rsaBits() int {
	switch k {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
)

func (k KeyType) curve() (elliptic.Curve, asn1.ObjectIdentifier) {
	switch k {
	case ECP256:
		return elliptic.P256(), oidP256
	case ECP384:
		return elliptic.P384(), oidP384
	}
	return nil, nil
}

// KeyInfo describes a private key on the token.
type KeyInfo struct {
	Label string
	ID    string // CKA_ID, lower-case hex
	Type  KeyType
	URI   string // RFC 7512 URI naming the private key
	// Public is the key's public half (nil when the token does not show it).
	Public crypto.PublicKey
	// Deviations are the attributes whose value differs from that of a
	// key Thiqa generates ("CKA_EXTRACTABLE=true", …; none for its own):
	// first those that make FindKey refuse the key, then those it warns
	// about.
	Deviations []string
}

// GenerateKey generates a key pair on the token: the private half is
// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE and may only
// sign, with the mechanisms Signer uses (CKA_ALLOWED_MECHANISMS, when the
// token knows it); both halves carry label and a fresh random CKA_ID. An existing
// object with that label is never overwritten: ErrKeyExists.
func (t *Token) GenerateKey(ctx context.Context, label string, kt KeyType) (*Signer, error) {
	if label == "" {
		return nil, errors.New("hsm: a key needs a label")
	}
	if kt.String() == "unsupported" {
		return nil, fmt.Errorf("hsm: cannot generate key type %d", int(kt))
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("hsm: drawing a key id: %w", err)
	}
	mech, pub, priv := keyTemplates(label, id, kt)
	// Key generation can take long on a hardware token (RSA-4096): only
	// the caller's context bounds it, not the call timeout.
	var sg *Signer
	err := t.doUntil(ctx, func(s *session) error {
		// Serialise check-then-create within this process, in the call
		// itself: a generation its caller gave up on keeps the lock
		// until it returns.
		t.genMu.Lock()
		defer t.genMu.Unlock()
		n, err := findObjects(t.p, s.h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}, 1)
		if err != nil {
			return err
		}
		if len(n) > 0 {
			return fmt.Errorf("%w: token %q already holds an object labelled %q", ErrKeyExists, t.label, label)
		}
		_, privH, err := t.p.GenerateKeyPair(s.h, mech, pub, priv)
		if err != nil && mechanismsRefused(err) {
			// A token older than PKCS#11 v2.40 that does not know
			// CKA_ALLOWED_MECHANISMS: the key is made as before, still
			// sensitive and not extractable, and the gap is said.
			t.log.Warn("hsm token refused CKA_ALLOWED_MECHANISMS; the key is generated without it", "key", label, "error", err)
			_, privH, err = t.p.GenerateKeyPair(s.h, mech, pub, withoutAttribute(priv, pkcs11.CKA_ALLOWED_MECHANISMS))
		}
		if err != nil {
			if faultReason(err) == "" {
				t.removeHalfMade(s, label, id)
			}
			return fmt.Errorf("%w: %w", errCreate, err)
		}
		sg, err = t.newSigner(s, label, id, kt, privH)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrKeyExists) {
			return nil, err
		}
		if errors.Is(err, errCreate) {
			if full := t.tokenFull(err); full != nil {
				err = outage.Mark(fmt.Errorf("hsm: generating %s key %q on token %q: %w: %w", kt, label, t.label, full, err))
				if t.m != nil {
					t.m.tokenFull.Inc()
				}
				t.log.Error(tokenFullAdvice, "key", label, "err", err)
				return nil, err
			}
		}
		return nil, fmt.Errorf("hsm: generating %s key %q on token %q: %w", kt, label, t.label, err)
	}
	t.log.Info("hsm key generated", "key", label, "type", kt.String(), "id", hex.EncodeToString(id))
	return sg, nil
}

// keyTemplates are the mechanism and the public and private templates of a
// key pair. Every usage attribute is set, true or false: PKCS#11 leaves
// the defaults to the token, and SoftHSM's are permissive (CKA_DECRYPT,
// CKA_UNWRAP and CKA_SIGN_RECOVER true on a private key, CKA_ENCRYPT,
// CKA_WRAP and CKA_VERIFY_RECOVER on a public one). CKA_ALLOWED_MECHANISMS
// limits the private key to the mechanisms Signer uses: CKA_SIGN alone
// would let an RSA key compute raw RSA (CKM_RSA_X_509), that is decrypt
// whatever was encrypted to its public key.
func keyTemplates(label string, id []byte, kt KeyType) ([]*pkcs11.Mechanism, []*pkcs11.Attribute, []*pkcs11.Attribute) {
	pub := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	priv := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if kt.IsRSA() {
		pub = append(pub,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, kt.rsaBits()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		priv = append(priv,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			allowedMechanisms(pkcs11.CKM_RSA_PKCS, pkcs11.CKM_RSA_PKCS_PSS))
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, pub, priv
	}
	_, oid := kt.curve()
	params, _ := asn1.Marshal(oid) // a fixed OID always marshals
	pub = append(pub,
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
	priv = append(priv,
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		allowedMechanisms(pkcs11.CKM_ECDSA))
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pub, priv
}

// allowedMechanisms is CKA_ALLOWED_MECHANISMS: an array of CK_ULONG
// mechanism types, encoded as the library encodes a CK_ULONG.
func allowedMechanisms(mechs ...uint) *pkcs11.Attribute {
	var v []byte
	for _, m := range mechs {
		v = append(v, pkcs11.NewAttribute(0, m).Value...)
	}
	return pkcs11.NewAttribute(pkcs11.CKA_ALLOWED_MECHANISMS, v)
}

// mechanismsRefused reports whether a key generation failed on
// CKA_ALLOWED_MECHANISMS itself: a token that does not know the attribute
// (CKR_ATTRIBUTE_TYPE_INVALID) or a mechanism in it.
func mechanismsRefused(err error) bool {
	return isRV(err, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID) || isRV(err, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID)
}

// withoutAttribute returns tmpl without the attribute of type typ.
func withoutAttribute(tmpl []*pkcs11.Attribute, typ uint) []*pkcs11.Attribute {
	out := make([]*pkcs11.Attribute, 0, len(tmpl))
	for _, a := range tmpl {
		if a.Type != typ {
			out = append(out, a)
		}
	}
	return out
}

// FindKey returns a Signer for the private key labelled label. A key that
// can leave the token (CKA_EXTRACTABLE true or CKA_SENSITIVE false, as a
// key imported or made by another tool may be) is refused with
// ErrKeyExportable; one that once could, or may also decrypt, unwrap or
// derive, is used and warned about once.
func (t *Token) FindKey(ctx context.Context, label string) (*Signer, error) {
	return t.findKey(ctx, label, nil)
}

// Signer returns a Signer for the private key a pkcs11: URI names (by
// object label, id, or both), judged as FindKey judges it. A URI naming
// another token is an error.
func (t *Token) Signer(ctx context.Context, uri string) (*Signer, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Token != "" && u.Token != t.label {
		return nil, fmt.Errorf("hsm: key URI %s names token %q but the open token is %q", u, u.Token, t.label)
	}
	if u.Type != "" && u.Type != "private" {
		return nil, fmt.Errorf("hsm: key URI %s names a %s object; a signer needs type=private", u, u.Type)
	}
	if u.Object == "" && len(u.ID) == 0 {
		return nil, fmt.Errorf("hsm: key URI %s names no object and no id", u)
	}
	if u.Manufacturer != "" || u.Serial != "" || u.Model != "" {
		if err := t.matchTokenInfo(u); err != nil {
			return nil, err
		}
	}
	return t.findKey(ctx, u.Object, u.ID)
}

// matchTokenInfo checks the URI's token manufacturer, serial and model
// against the open token.
func (t *Token) matchTokenInfo(u URI) error {
	t.rw.RLock()
	defer t.rw.RUnlock()
	if t.closed {
		return ErrClosed
	}
	ti, err := t.p.GetTokenInfo(t.slot)
	if err != nil {
		return fmt.Errorf("hsm: reading token %q information: %w", t.label, err)
	}
	for _, c := range []struct{ name, want, got string }{
		{"manufacturer", u.Manufacturer, ti.ManufacturerID},
		{"serial", u.Serial, ti.SerialNumber},
		{"model", u.Model, ti.Model},
	} {
		if c.want != "" && c.want != strings.TrimRight(c.got, " ") {
			return fmt.Errorf("hsm: key URI %s names token %s %q but token %q has %q", u, c.name, c.want, t.label, c.got)
		}
	}
	return nil
}

func (t *Token) findKey(ctx context.Context, label string, id []byte) (*Signer, error) {
	name := label
	if name == "" {
		name = "id " + hex.EncodeToString(id)
	}
	var sg *Signer
	err := t.do(ctx, func(s *session) error {
		priv, err := findPrivate(t.p, s, label, id)
		if err != nil {
			return err
		}
		attrs, err := t.p.GetAttributeValue(s.h, priv, keyInfoTemplate())
		if err != nil {
			return err
		}
		gotLabel, gotID := string(attrs[0].Value), attrs[1].Value
		refuse, doubt := judgeKeyFlags(attrs[2:])
		if len(refuse) > 0 {
			return fmt.Errorf("%w (%s): refusing to use it", ErrKeyExportable, strings.Join(refuse, ", "))
		}
		if len(doubt) > 0 {
			t.warnKeyOnce(gotLabel, doubt)
		}
		sg, err = t.newSigner(s, gotLabel, gotID, 0, priv)
		return err
	})
	if errors.Is(err, ErrKeyAmbiguous) {
		// Two nodes that generated one key at once leave two: the way out
		// is to destroy the one not in use.
		return nil, fmt.Errorf("hsm: key %q on token %q: %w; name it by id too, or destroy the key not in use "+
			"(both halves): pkcs11-tool --module %q --token-label %q --login --delete-object --type privkey --id ID, then --type pubkey --id ID",
			name, t.label, err, t.module, t.label)
	}
	if err != nil {
		return nil, fmt.Errorf("hsm: key %q on token %q: %w", name, t.label, err)
	}
	return sg, nil
}

// keyFlags are the private key attributes findKey judges, in the order it
// reads them: whether the key can leave the token (refused), once could
// (ALWAYS_SENSITIVE or NEVER_EXTRACTABLE false: copies may exist outside
// it) or may do more than sign; want is the value of a key Thiqa made.
var keyFlags = []struct {
	typ    uint
	name   string
	want   bool
	refuse bool
}{
	{pkcs11.CKA_SENSITIVE, "CKA_SENSITIVE", true, true},
	{pkcs11.CKA_EXTRACTABLE, "CKA_EXTRACTABLE", false, true},
	{pkcs11.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", true, false},
	{pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", true, false},
	{pkcs11.CKA_DECRYPT, "CKA_DECRYPT", false, false},
	{pkcs11.CKA_UNWRAP, "CKA_UNWRAP", false, false},
	{pkcs11.CKA_DERIVE, "CKA_DERIVE", false, false},
}

// keyInfoTemplate reads a private key's CKA_LABEL, CKA_ID and keyFlags.
func keyInfoTemplate() []*pkcs11.Attribute {
	tmpl := make([]*pkcs11.Attribute, 0, 2+len(keyFlags))
	tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_ID, nil))
	for _, f := range keyFlags {
		tmpl = append(tmpl, pkcs11.NewAttribute(f.typ, nil))
	}
	return tmpl
}

// judgeKeyFlags compares the values of keyFlags read from a private key
// with those of a key Thiqa generates: refuse names the attributes that
// let the key leave the token, doubt the others that differ.
func judgeKeyFlags(attrs []*pkcs11.Attribute) (refuse, doubt []string) {
	for i, f := range keyFlags {
		got := i < len(attrs) && len(attrs[i].Value) == 1 && attrs[i].Value[0] != 0
		if got == f.want {
			continue
		}
		d := fmt.Sprintf("%s=%v", f.name, got)
		if f.refuse {
			refuse = append(refuse, d)
		} else {
			doubt = append(doubt, d)
		}
	}
	return refuse, doubt
}

// warnKeyOnce warns, once per key label in this Token's life, that the key
// labelled label was not made the way Thiqa makes keys.
func (t *Token) warnKeyOnce(label string, doubt []string) {
	t.warnMu.Lock()
	first := !t.warnedKeys[label]
	if first {
		if t.warnedKeys == nil {
			t.warnedKeys = make(map[string]bool)
		}
		t.warnedKeys[label] = true
	}
	t.warnMu.Unlock()
	if first {
		t.log.Warn("hsm key is not as Thiqa generates keys: it once could leave the token, or may do more than sign; using it",
			"key", label, "attributes", strings.Join(doubt, ", "))
	}
}

// ListKeys lists the private keys on the token.
func (t *Token) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := t.do(ctx, func(s *session) error {
		out = out[:0]
		hs, err := findObjects(t.p, s.h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		}, 0)
		if err != nil {
			return err
		}
		for _, h := range hs {
			attrs, err := t.p.GetAttributeValue(s.h, h, keyInfoTemplate())
			if err != nil {
				return err
			}
			label, id := string(attrs[0].Value), attrs[1].Value
			refuse, doubt := judgeKeyFlags(attrs[2:])
			pub, kt, err := t.readPublic(s, label, id, h)
			if err != nil && faultReason(err) != "" {
				return err
			}
			out = append(out, KeyInfo{Label: label, ID: hex.EncodeToString(id), Type: kt, URI: t.keyURI(label, id), Public: pub,
				Deviations: append(refuse, doubt...)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: listing keys on token %q: %w", t.label, err)
	}
	return out, nil
}

func (t *Token) keyURI(label string, id []byte) string {
	return URI{Token: t.label, Object: label, ID: id, Type: "private"}.String()
}

// findPrivate finds the one private key with label and/or id. When nothing
// matches because the user is not logged in (private objects are invisible
// then) it reports CKR_USER_NOT_LOGGED_IN so the caller recovers.
func findPrivate(p *pkcs11.Ctx, s *session, label string, id []byte) (pkcs11.ObjectHandle, error) {
	// CKA_TOKEN: never one of this process's session copies (sessioncopy.go).
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
	}
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	if len(id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	hs, err := findObjects(p, s.h, tmpl, 2)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 1:
		return hs[0], nil
	case 0:
		si, err := p.GetSessionInfo(s.h)
		if err != nil {
			return 0, err
		}
		if si.State != pkcs11.CKS_RW_USER_FUNCTIONS && si.State != pkcs11.CKS_RO_USER_FUNCTIONS {
			return 0, pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
		}
		return 0, ErrKeyNotFound
	default:
		all, err := findObjects(p, s.h, tmpl, 0)
		if err != nil {
			return 0, err
		}
		ids := make([]string, 0, len(all))
		for _, h := range all {
			attrs, err := p.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
			if err != nil {
				return 0, err
			}
			ids = append(ids, hex.EncodeToString(attrs[0].Value))
		}
		return 0, &ambiguousKeyError{ids: ids}
	}
}

// ambiguousKeyError is ErrKeyAmbiguous with the CKA_IDs (hex) of the keys
// that match.
type ambiguousKeyError struct{ ids []string }

func (e *ambiguousKeyError) Error() string {
	return fmt.Sprintf("%v: %d keys, ids %s", ErrKeyAmbiguous, len(e.ids), strings.Join(e.ids, ", "))
}

func (e *ambiguousKeyError) Unwrap() error { return ErrKeyAmbiguous }

// findObjects returns up to limit (0: all) objects matching tmpl, always
// finishing the search so the session stays usable.
func findObjects(p *pkcs11.Ctx, sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, limit int) ([]pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	var out []pkcs11.ObjectHandle
	var ferr error
	for limit == 0 || len(out) < limit {
		hs, _, err := p.FindObjects(sh, 64)
		if err != nil {
			ferr = err
			break
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	if err := p.FindObjectsFinal(sh); err != nil && ferr == nil {
		ferr = err
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, ferr
}

// readPublic reads the public key of the pair (label, id): from the public
// key object, or for RSA from the private key, which also carries modulus
// and exponent.
func (t *Token) readPublic(s *session, label string, id []byte, priv pkcs11.ObjectHandle) (crypto.PublicKey, KeyType, error) {
	ka, err := t.p.GetAttributeValue(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, 0, err
	}
	keyType := bytesToUint(ka[0].Value)
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	pubs, err := findObjects(t.p, s.h, tmpl, 1)
	if err != nil {
		return nil, 0, err
	}
	switch keyType {
	case pkcs11.CKK_EC:
		if len(pubs) == 0 {
			return nil, 0, errors.New("hsm: EC key has no public key object on the token")
		}
		a, err := t.p.GetAttributeValue(s.h, pubs[0], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
		})
		if err != nil {
			return nil, 0, err
		}
		return parseECPublic(a[0].Value, a[1].Value)
	case pkcs11.CKK_RSA:
		obj := priv
		if len(pubs) > 0 {
			obj = pubs[0]
		}
		a, err := t.p.GetAttributeValue(s.h, obj, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, 0, err
		}
		return parseRSAPublic(a[0].Value, a[1].Value)
	}
	return nil, 0, fmt.Errorf("hsm: unsupported key type 0x%x", keyType)
}

func parseECPublic(params, point []byte) (crypto.PublicKey, KeyType, error) {
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err != nil || len(rest) > 0 {
		return nil, 0, errors.New("hsm: EC key parameters are not a named-curve OID")
	}
	var kt KeyType
	switch {
	case oid.Equal(oidP256):
		kt = ECP256
	case oid.Equal(oidP384):
		kt = ECP384
	default:
		return nil, 0, fmt.Errorf("hsm: unsupported curve %s", oid)
	}
	curve, _ := kt.curve()
	// CKA_EC_POINT is DER OCTET STRING wrapping the point; a few modules
	// store the bare point.
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) > 0 {
		raw = point
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, 0, fmt.Errorf("hsm: EC public point: %w", err)
	}
	return pub, kt, nil
}

func parseRSAPublic(mod, exp []byte) (crypto.PublicKey, KeyType, error) {
	n := new(big.Int).SetBytes(mod)
	e := new(big.Int).SetBytes(exp)
	if n.Sign() <= 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, 0, errors.New("hsm: malformed RSA public key")
	}
	pub := &rsa.PublicKey{N: n, E: int(e.Int64())}
	var kt KeyType
	switch n.BitLen() {
	case 2048:
		kt = RSA2048
	case 3072:
		kt = RSA3072
	case 4096:
		kt = RSA4096
	default:
		return nil, 0, fmt.Errorf("hsm: unsupported RSA modulus of %d bits", n.BitLen())
	}
	return pub, kt, nil
}

// bytesToUint decodes a CK_ULONG attribute (native byte order).
func bytesToUint(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}
