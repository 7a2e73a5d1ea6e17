package timestamp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// FuzzParseRequest feeds arbitrary bodies to the request parser and to the
// whole responder: nothing panics, whatever parses re-encodes to the same
// bytes (strict DER), every answer is a well-formed TimeStampResp, and only
// granted requests consume a serial.
func FuzzParseRequest(f *testing.F) {
	d := sha256.Sum256([]byte("seed"))
	for _, r := range []tsp.Request{
		{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA256, HashedMessage: d[:]}},
		{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA256, HashParams: []byte{5, 0}, HashedMessage: d[:]},
			Nonce: new(big.Int).Lsh(big.NewInt(1), 200), CertReq: true, ReqPolicy: tsp.OIDETSIBestPracticesPolicy,
			Extensions: []tsp.Extension{{ID: tsp.OIDQCStatements, Critical: true, Value: []byte{0x30, 0}}}},
	} {
		b, err := r.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(bytes.Clone(b), 0))
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	tsa := newTestTSA(f, Config{}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := tsp.ParseRequest(body)
		if err == nil {
			again, err := req.Marshal()
			if err != nil || !bytes.Equal(again, body) {
				t.Fatalf("parsed request does not re-encode to its input:\n in %x\nout %x (%v)", body, again, err)
			}
		} else if !errors.Is(err, tsp.ErrMalformed) && !errors.Is(err, tsp.ErrVersion) {
			t.Fatalf("unclassified parse error %v", err)
		}
		before := tsa.serials.n.Load()
		raw, st := tsa.Respond(context.Background(), body, "")
		resp, err := tsp.ParseResponse(raw)
		if err != nil {
			t.Fatalf("our own response does not parse: %v", err)
		}
		if resp.Status.Status != st.Status || resp.Status.FailInfo != st.FailInfo {
			t.Fatalf("encoded status %v, returned %v", resp.Status, st)
		}
		consumed := tsa.serials.n.Load() - before
		if st.Status == tsp.StatusGranted {
			if _, err := tsp.ParseToken(resp.Token); err != nil || consumed != 1 {
				t.Fatalf("granted: token %v, %d serials", err, consumed)
			}
		} else if consumed != 0 {
			t.Fatalf("rejected (%v) but %d serials consumed", st, consumed)
		}
	})
}

// FuzzParseResponse feeds arbitrary replies to the client's parsers.
func FuzzParseResponse(f *testing.F) {
	tsa := newTestTSA(f, Config{Qualified: true, IncludeTSAName: true, IncludeChain: true}, nil)
	d := sha256.Sum256([]byte("seed"))
	req := tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA256, HashedMessage: d[:]}, Nonce: big.NewInt(7), CertReq: true}
	der, _ := req.Marshal()
	granted, _ := tsa.Respond(context.Background(), der, "")
	rejected, _ := tsa.Respond(context.Background(), der[:10], "")
	f.Add(granted)
	f.Add(rejected)
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp, err := tsp.ParseResponse(raw)
		if err != nil {
			return
		}
		if resp.Token != nil {
			if tok, err := tsp.ParseToken(resp.Token); err == nil {
				_ = tok.Info.HasQualifiedStatement()
			}
		}
		_, _ = checkReply(raw, &req)
	})
}

// FuzzParseChronyTracking feeds arbitrary text to the chronyc parser.
func FuzzParseChronyTracking(f *testing.F) {
	f.Add([]byte("C0A80101,192.168.1.1,3,1795862400.123456789,-0.000012345,0.000003279,0.000045612,-21.413,-0.001,0.021,0.004283929,0.000235432,64.4,Normal\n"))
	f.Add([]byte("00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseChronyTracking(b)
		if err == nil && tr.MaxError() < 0 {
			t.Fatalf("negative error bound %v", tr.MaxError())
		}
	})
}
