package tsp

import (
	"fmt"
	"strconv"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// PKIStatus is the status of a time-stamp response (RFC 3161 §2.4.2).
type PKIStatus int

// PKIStatus values.
const (
	StatusGranted                PKIStatus = 0
	StatusGrantedWithMods        PKIStatus = 1
	StatusRejection              PKIStatus = 2
	StatusWaiting                PKIStatus = 3
	StatusRevocationWarning      PKIStatus = 4
	StatusRevocationNotification PKIStatus = 5
)

// String implements fmt.Stringer.
func (s PKIStatus) String() string {
	switch s {
	case StatusGranted:
		return "granted"
	case StatusGrantedWithMods:
		return "grantedWithMods"
	case StatusRejection:
		return "rejection"
	case StatusWaiting:
		return "waiting"
	case StatusRevocationWarning:
		return "revocationWarning"
	case StatusRevocationNotification:
		return "revocationNotification"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// FailInfo is one PKIFailureInfo bit (RFC 3161 §2.4.2).
type FailInfo int

// PKIFailureInfo bits. NoFailInfo means the field is absent.
const (
	NoFailInfo          FailInfo = -1
	BadAlg              FailInfo = 0
	BadRequest          FailInfo = 2
	BadDataFormat       FailInfo = 5
	TimeNotAvailable    FailInfo = 14
	UnacceptedPolicy    FailInfo = 15
	UnacceptedExtension FailInfo = 16
	AddInfoNotAvailable FailInfo = 17
	SystemFailure       FailInfo = 25
)

// String implements fmt.Stringer.
func (f FailInfo) String() string {
	switch f {
	case NoFailInfo:
		return "none"
	case BadAlg:
		return "badAlg"
	case BadRequest:
		return "badRequest"
	case BadDataFormat:
		return "badDataFormat"
	case TimeNotAvailable:
		return "timeNotAvailable"
	case UnacceptedPolicy:
		return "unacceptedPolicy"
	case UnacceptedExtension:
		return "unacceptedExtension"
	case AddInfoNotAvailable:
		return "addInfoNotAvailable"
	case SystemFailure:
		return "systemFailure"
	}
	return "failInfo(" + strconv.Itoa(int(f)) + ")"
}

// StatusInfo is a PKIStatusInfo.
type StatusInfo struct {
	Status PKIStatus
	// Text is the statusString (PKIFreeText); empty when absent.
	Text []string
	// FailInfo is the lowest failure bit set, NoFailInfo when absent.
	FailInfo FailInfo
}

// String implements fmt.Stringer.
func (s StatusInfo) String() string {
	out := s.Status.String()
	if s.FailInfo != NoFailInfo {
		out += " (" + s.FailInfo.String() + ")"
	}
	for _, t := range s.Text {
		out += ": " + t
	}
	return out
}

// Response is a TimeStampResp.
type Response struct {
	Status StatusInfo
	// Token is the DER ContentInfo of the time-stamp token, nil when absent.
	Token []byte
}

func addStatusInfo(b *cryptobyte.Builder, s StatusInfo) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(s.Status))
		if len(s.Text) > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, t := range s.Text {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(t)) })
				}
			})
		}
		if s.FailInfo >= 0 {
			// A named BIT STRING in DER drops trailing zero bits, so the
			// last bit encoded is the one set.
			n := int(s.FailInfo)
			bits := make([]byte, n/8+1)
			bits[n/8] = 0x80 >> (n % 8)
			unused := 7 - n%8
			b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
				b.AddUint8(uint8(unused))
				b.AddBytes(bits)
			})
		}
	})
}

// GrantedHeadroom is the room EncodeGrantedInPlace needs before a token.
const GrantedHeadroom = 6 + 5 // SEQUENCE header of at most 6 bytes, PKIStatusInfo {granted}

// EncodeGrantedInPlace encodes a granted TimeStampResp around a token
// already in place: b[:headroom] is free (headroom at least
// GrantedHeadroom) and b[headroom:] is the token's DER. It writes the
// response header just before the token and returns the response, a
// subslice of b: no allocation, no copy of the token.
func EncodeGrantedInPlace(b []byte, headroom int) ([]byte, error) {
	if headroom < GrantedHeadroom || headroom > len(b) {
		return nil, fmt.Errorf("tsp: %d bytes of headroom for a response, need %d", headroom, GrantedHeadroom)
	}
	n := len(grantedStatusDER) + len(b) - headroom // SEQUENCE content
	hl := tlvSize(n) - n                           // its tag and length
	start := headroom - len(grantedStatusDER) - hl
	appendHeader(b[start:start], tagSequence, n)
	copy(b[start+hl:], grantedStatusDER)
	return b[start:], nil
}

// grantedStatusDER is the PKIStatusInfo {granted}.
var grantedStatusDER = []byte{tagSequence, 3, tagInteger, 1, 0}

// Marshal encodes the response as DER.
func (r *Response) Marshal() ([]byte, error) {
	if r.Status.Status == StatusGranted && r.Status.FailInfo < 0 && len(r.Status.Text) == 0 {
		// The common case, written directly: one allocation, one copy of
		// the token.
		n := len(grantedStatusDER) + len(r.Token)
		b := appendHeader(make([]byte, 0, tlvSize(n)), tagSequence, n)
		b = append(b, grantedStatusDER...)
		return append(b, r.Token...), nil
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addStatusInfo(b, r.Status)
		if r.Token != nil {
			b.AddBytes(r.Token)
		}
	})
	return b.Bytes()
}

// ParseResponse decodes a DER TimeStampResp. The token is returned as its
// DER bytes; ParseToken decodes it.
func ParseResponse(der []byte) (*Response, error) {
	in := cryptobyte.String(der)
	var seq, si cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, malformed("response is not one DER SEQUENCE")
	}
	if !seq.ReadASN1(&si, cbasn1.SEQUENCE) {
		return nil, malformed("status")
	}
	resp := &Response{Status: StatusInfo{FailInfo: NoFailInfo}}
	var status int64
	if !si.ReadASN1Int64WithTag(&status, cbasn1.INTEGER) || status < 0 || status > 5 {
		return nil, malformed("PKIStatus")
	}
	resp.Status.Status = PKIStatus(status)
	if si.PeekASN1Tag(cbasn1.SEQUENCE) {
		var texts cryptobyte.String
		if !si.ReadASN1(&texts, cbasn1.SEQUENCE) {
			return nil, malformed("statusString")
		}
		for !texts.Empty() {
			var t cryptobyte.String
			if !texts.ReadASN1(&t, cbasn1.UTF8String) {
				return nil, malformed("statusString")
			}
			resp.Status.Text = append(resp.Status.Text, string(t))
		}
	}
	if si.PeekASN1Tag(cbasn1.BIT_STRING) {
		var bits cryptobyte.String
		if !si.ReadASN1(&bits, cbasn1.BIT_STRING) || len(bits) == 0 || bits[0] > 7 {
			return nil, malformed("failInfo")
		}
		found := false
		for i := 0; i < (len(bits)-1)*8 && !found; i++ {
			if bits[1+i/8]&(0x80>>(i%8)) != 0 {
				resp.Status.FailInfo, found = FailInfo(i), true
			}
		}
	}
	if !si.Empty() {
		return nil, malformed("PKIStatusInfo")
	}
	if !seq.Empty() {
		var tok cryptobyte.String
		if !seq.ReadASN1Element(&tok, cbasn1.SEQUENCE) || !seq.Empty() {
			return nil, malformed("timeStampToken")
		}
		resp.Token = tok
	}
	if (resp.Status.Status == StatusGranted || resp.Status.Status == StatusGrantedWithMods) != (resp.Token != nil) {
		return nil, malformed(fmt.Sprintf("status %s with token present=%t", resp.Status.Status, resp.Token != nil))
	}
	return resp, nil
}
