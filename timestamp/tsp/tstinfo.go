package tsp

import (
	"encoding/asn1"
	"errors"
	"math/big"
	"strconv"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TSTInfo is the content of a time-stamp token (RFC 3161 §2.4.2).
type TSTInfo struct {
	Policy asn1.ObjectIdentifier
	// MessageImprint is copied from the request; Raw is encoded verbatim
	// when set.
	MessageImprint MessageImprint
	SerialNumber   *big.Int
	// GenTime is encoded in UTC with millisecond precision.
	GenTime time.Time
	// Accuracy is the declared accuracy; zero omits the field.
	Accuracy time.Duration
	// Ordering is encoded only when true.
	Ordering bool
	// Nonce is nil when absent.
	Nonce *big.Int
	// TSAName is the DER Name (RDNSequence) put in tsa as a directoryName;
	// nil omits the field.
	TSAName    []byte
	Extensions []Extension
}

// AppendGeneralizedTime appends t as the contents of a DER GeneralizedTime
// in UTC with millisecond precision: YYYYMMDDHHMMSS[.fff]Z with trailing
// zeros (and a bare decimal point) removed, as X.690 §11.7 requires.
func AppendGeneralizedTime(dst []byte, t time.Time) []byte {
	t = t.UTC().Truncate(time.Millisecond)
	dst = t.AppendFormat(dst, "20060102150405")
	if ms := t.Nanosecond() / int(time.Millisecond); ms != 0 {
		frac := []byte{'.', byte('0' + ms/100), byte('0' + ms/10%10), byte('0' + ms%10)}
		for frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		dst = append(dst, frac...)
	}
	return append(dst, 'Z')
}

// ParseGeneralizedTime decodes the contents of a DER GeneralizedTime with an
// optional fraction of a second.
func ParseGeneralizedTime(b []byte) (time.Time, error) {
	s := string(b)
	if len(s) < 15 || s[len(s)-1] != 'Z' {
		return time.Time{}, errors.New("GeneralizedTime must be YYYYMMDDHHMMSS[.f]Z")
	}
	base, frac := s[:14], s[14:len(s)-1]
	t, err := time.Parse("20060102150405", base)
	if err != nil {
		return time.Time{}, err
	}
	if frac == "" {
		return t, nil
	}
	if len(frac) < 2 || frac[0] != '.' || frac[len(frac)-1] == '0' || len(frac) > 10 {
		return time.Time{}, errors.New("GeneralizedTime fraction is not DER")
	}
	digits := frac[1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return time.Time{}, errors.New("GeneralizedTime fraction is not decimal")
		}
	}
	ns, _ := strconv.Atoi((digits + "000000000")[:9])
	return t.Add(time.Duration(ns)), nil
}

// Marshal encodes the TSTInfo as DER.
func (t *TSTInfo) Marshal() ([]byte, error) {
	if t.SerialNumber == nil || t.SerialNumber.Sign() <= 0 {
		return nil, errors.New("tsp: TSTInfo needs a positive serial number")
	}
	// The contents are written after 5 spare bytes, and the SEQUENCE
	// header is then put right before them: no copy.
	const spare = 5
	b := make([]byte, spare, 192+len(t.TSAName))
	b = append(b, tagInteger, 1, 1)
	var ok bool
	if b, ok = appendOID(b, t.Policy); !ok {
		return nil, errors.New("tsp: TSTInfo policy is not a valid OID")
	}
	if t.MessageImprint.Raw != nil {
		b = append(b, t.MessageImprint.Raw...)
	} else {
		var alg []byte
		if alg, ok = appendOID(make([]byte, 0, 16), t.MessageImprint.HashAlgorithm); !ok {
			return nil, errors.New("tsp: TSTInfo hash algorithm is not a valid OID")
		}
		alg = append(alg, t.MessageImprint.HashParams...)
		h := t.MessageImprint.HashedMessage
		b = appendHeader(b, tagSequence, tlvSize(len(alg))+tlvSize(len(h)))
		b = appendTLV(b, tagSequence, alg)
		b = appendTLV(b, tagOctetString, h)
	}
	b = appendInteger(b, t.SerialNumber)
	var gt [24]byte
	b = appendTLV(b, tagGeneralizedTime, AppendGeneralizedTime(gt[:0], t.GenTime))
	if t.Accuracy > 0 {
		b = appendAccuracy(b, t.Accuracy)
	}
	if t.Ordering {
		b = append(b, tagBoolean, 1, 0xff)
	}
	if t.Nonce != nil {
		b = appendInteger(b, t.Nonce)
	}
	if t.TSAName != nil {
		b = appendHeader(b, tagContext0, tlvSize(len(t.TSAName)))
		b = appendTLV(b, tagContext4, t.TSAName)
	}
	if len(t.Extensions) > 0 {
		var eb cryptobyte.Builder
		eb.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			addExtensions(b, t.Extensions)
		})
		exts, err := eb.Bytes()
		if err != nil {
			return nil, err
		}
		b = append(b, exts...)
	}
	n := len(b) - spare
	h := 1 + lenSize(n)
	appendHeader(b[spare-h:spare-h], tagSequence, n)
	return b[spare-h:], nil
}

// appendAccuracy appends the Accuracy SEQUENCE for d (d > 0).
func appendAccuracy(dst []byte, d time.Duration) []byte {
	secs := int64(d / time.Second)
	millis := int64(d % time.Second / time.Millisecond)
	micros := int64(d % time.Millisecond / time.Microsecond)
	var buf [24]byte
	body := buf[:0]
	if secs > 0 {
		body = appendSmallInt(body, tagInteger, secs)
	}
	if millis > 0 {
		body = appendSmallInt(body, tagImplicit0, millis)
	}
	if micros > 0 {
		body = appendSmallInt(body, tagImplicit1, micros)
	}
	return appendTLV(dst, tagSequence, body)
}

// readOptionalInt reads an optional INTEGER, implicitly tagged with tag.
func readOptionalInt(s *cryptobyte.String, out *int64, tag cbasn1.Tag) bool {
	if !s.PeekASN1Tag(tag) {
		return true
	}
	return s.ReadASN1Int64WithTag(out, tag)
}

// ParseTSTInfo decodes a DER TSTInfo.
func ParseTSTInfo(der []byte) (*TSTInfo, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, malformed("TSTInfo is not one DER SEQUENCE")
	}
	var version int64
	if !seq.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) || version != 1 {
		return nil, malformed("TSTInfo version")
	}
	t := &TSTInfo{}
	if !seq.ReadASN1ObjectIdentifier(&t.Policy) {
		return nil, malformed("TSTInfo policy")
	}
	mi, err := readMessageImprint(&seq)
	if err != nil {
		return nil, err
	}
	t.MessageImprint = mi
	var serial, gt cryptobyte.String
	if !seq.ReadASN1(&serial, cbasn1.INTEGER) {
		return nil, malformed("TSTInfo serialNumber")
	}
	if t.SerialNumber, err = parseInteger(serial); err != nil {
		return nil, malformed("TSTInfo serialNumber: " + err.Error())
	}
	if !seq.ReadASN1(&gt, cbasn1.GeneralizedTime) {
		return nil, malformed("TSTInfo genTime")
	}
	if t.GenTime, err = ParseGeneralizedTime(gt); err != nil {
		return nil, malformed("TSTInfo genTime: " + err.Error())
	}
	if seq.PeekASN1Tag(cbasn1.SEQUENCE) {
		var acc cryptobyte.String
		var secs, millis, micros int64
		if !seq.ReadASN1(&acc, cbasn1.SEQUENCE) ||
			!readOptionalInt(&acc, &secs, cbasn1.INTEGER) ||
			!readOptionalInt(&acc, &millis, cbasn1.Tag(0).ContextSpecific()) ||
			!readOptionalInt(&acc, &micros, cbasn1.Tag(1).ContextSpecific()) ||
			!acc.Empty() || secs < 0 || secs > 1<<20 || millis < 0 || millis > 999 || micros < 0 || micros > 999 {
			return nil, malformed("TSTInfo accuracy")
		}
		t.Accuracy = time.Duration(secs)*time.Second + time.Duration(millis)*time.Millisecond + time.Duration(micros)*time.Microsecond
	}
	if seq.PeekASN1Tag(cbasn1.BOOLEAN) {
		if !seq.ReadASN1Boolean(&t.Ordering) || !t.Ordering {
			return nil, malformed("TSTInfo ordering")
		}
	}
	if seq.PeekASN1Tag(cbasn1.INTEGER) {
		var n cryptobyte.String
		if !seq.ReadASN1(&n, cbasn1.INTEGER) || len(n) > MaxNonceBytes+1 {
			return nil, malformed("TSTInfo nonce")
		}
		if t.Nonce, err = parseInteger(n); err != nil {
			return nil, malformed("TSTInfo nonce: " + err.Error())
		}
	}
	if seq.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var gn, name cryptobyte.String
		if !seq.ReadASN1(&gn, cbasn1.Tag(0).ContextSpecific().Constructed()) {
			return nil, malformed("TSTInfo tsa")
		}
		if gn.PeekASN1Tag(cbasn1.Tag(4).ContextSpecific().Constructed()) &&
			gn.ReadASN1(&name, cbasn1.Tag(4).ContextSpecific().Constructed()) && gn.Empty() {
			t.TSAName = name
		}
	}
	if seq.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		var exts cryptobyte.String
		if !seq.ReadASN1(&exts, cbasn1.Tag(1).ContextSpecific().Constructed()) {
			return nil, malformed("TSTInfo extensions")
		}
		if t.Extensions, err = parseExtensions(exts); err != nil {
			return nil, err
		}
	}
	if !seq.Empty() {
		return nil, malformed("TSTInfo: unexpected trailing fields")
	}
	return t, nil
}

// QualifiedStatementExtension returns the qcStatements extension holding
// esi4-qtstStatement-1 (EN 319 422 §9.1): the token is an EU qualified
// electronic time-stamp.
func QualifiedStatementExtension() Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(OIDQTSTStatement)
		})
	})
	v, _ := b.Bytes() // constant input: cannot fail
	return Extension{ID: OIDQCStatements, Value: v}
}

// HasQualifiedStatement reports whether the TSTInfo carries the
// esi4-qtstStatement-1 statement.
func (t *TSTInfo) HasQualifiedStatement() bool {
	for _, e := range t.Extensions {
		if !e.ID.Equal(OIDQCStatements) {
			continue
		}
		s := cryptobyte.String(e.Value)
		var stmts cryptobyte.String
		if !s.ReadASN1(&stmts, cbasn1.SEQUENCE) {
			return false
		}
		for !stmts.Empty() {
			var st cryptobyte.String
			var id asn1.ObjectIdentifier
			if !stmts.ReadASN1(&st, cbasn1.SEQUENCE) || !st.ReadASN1ObjectIdentifier(&id) {
				return false
			}
			if id.Equal(OIDQTSTStatement) {
				return true
			}
		}
	}
	return false
}
