package signer

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func signOpts(p *testPKI, rsaKey bool, level Level) Options {
	key, chain := p.chain(rsaKey)
	return Options{Level: level, Signer: key, Chain: chain, Reason: "Approval", Location: "Muscat", Validation: p.validation()}
}

func TestSignBB(t *testing.T) {
	p := getPKI(t)
	for _, tc := range []struct {
		name   string
		rsa    bool
		stream bool
	}{{"ecdsa", false, false}, {"rsa", true, false}, {"ecdsa-xrefstream", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			in := testPDF(2, 0)
			if tc.stream {
				in = toXrefStream(t, in)
			}
			out, err := SignBytes(context.Background(), in, signOpts(p, tc.rsa, LevelBB))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out[:len(in)], in) {
				t.Fatal("original bytes changed")
			}
			qpdfCheck(t, out)
			assertOpenSSL(t, p, out, false)
			assertPdfsig(t, p, out, 1)
		})
	}
}

func TestSignLevels(t *testing.T) {
	p := getPKI(t)
	for _, level := range []Level{LevelBT, LevelBLT, LevelBLTA} {
		for _, rsaKey := range []bool{false, true} {
			name := level.String() + map[bool]string{false: "/ecdsa", true: "/rsa"}[rsaKey]
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				in := testPDF(1, 0)
				if rsaKey {
					in = toXrefStream(t, in)
				}
				out, err := SignBytes(ctx, in, signOpts(p, rsaKey, level))
				if err != nil {
					t.Fatal(err)
				}
				qpdfCheck(t, out)
				assertOpenSSL(t, p, out, true)
				assertPdfsig(t, p, out, 1)
				if level >= LevelBLT {
					if !bytes.Contains(out, []byte("/DSS")) {
						t.Fatal("no /DSS")
					}
					// The VRI key is the SHA-1 of the whole /Contents string.
					br := extractSignatures(t, out)[0].byteRange
					raw, err := hex.DecodeString(string(out[br[1]+1 : br[2]-1]))
					if err != nil {
						t.Fatal(err)
					}
					sum := sha1.Sum(raw)
					if !bytes.Contains(out, []byte("/"+strings.ToUpper(hex.EncodeToString(sum[:])))) {
						t.Fatal("no /VRI entry for the signature")
					}
				}
				if level == LevelBLTA && !bytes.Contains(out, []byte("/ETSI.RFC3161")) {
					t.Fatal("no document time-stamp")
				}
			})
		}
	}
}
