package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

func TestParseRequestRoundTrip(t *testing.T) {
	p := newPKI(t, "Thiqa")
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		der, err := NewRequest(p.ca, big.NewInt(0x1234), h, []byte{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.CertIDs) != 1 || r.CertIDs[0].Hash != h || r.CertIDs[0].Serial.Int64() != 0x1234 || !bytes.Equal(r.Nonce, []byte{4, 3, 1, 2, 3}) {
			t.Fatalf("%s: %+v", h, r)
		}
		// Go's parser reads the same CertID.
		x, err := xocsp.ParseRequest(der)
		if err != nil || x.HashAlgorithm != h || !bytes.Equal(x.IssuerKeyHash, r.CertIDs[0].IssuerKeyHash) {
			t.Fatalf("x/crypto/ocsp: %v %+v", err, x)
		}
	}
}

func TestParseRequestRefuses(t *testing.T) {
	p := newPKI(t, "Thiqa")
	good, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA1, nil)
	id, _ := ParseRequest(good)
	raw := id.CertIDs[0].Raw
	ext := func(oid []byte, critical bool, value []byte) []byte {
		body := append([]byte{}, oid...)
		if critical {
			body = append(body, 0x01, 0x01, 0xff)
		}
		return derTLV(0x30, append(body, derTLV(0x04, value)...))
	}
	nonceOID := []byte{0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02}
	otherOID := []byte{0x06, 0x03, 0x2a, 0x03, 0x04}
	withExts := func(exts ...[]byte) []byte {
		tbs := derTLV(0x30, derTLV(0x30, raw))
		return derTLV(0x30, derTLV(0x30, append(tbs, derTLV(0xa2, derTLV(0x30, bytes.Join(exts, nil)))...)))
	}
	nineIDs := derTLV(0x30, derTLV(0x30, derTLV(0x30, bytes.Repeat(derTLV(0x30, raw), 9))))
	longLen := append([]byte{0x30, 0x81, byte(len(good) - 2)}, good[2:]...) // non-minimal length
	for name, der := range map[string][]byte{
		"nonce too long":       withExts(ext(nonceOID, false, derTLV(0x04, bytes.Repeat([]byte{1}, 33)))),
		"nonce empty":          withExts(ext(nonceOID, false, derTLV(0x04, nil))),
		"nonce raw":            withExts(ext(nonceOID, false, []byte("abcdefgh"))),
		"duplicate nonce":      withExts(ext(nonceOID, false, derTLV(0x04, []byte{1})), ext(nonceOID, false, derTLV(0x04, []byte{1}))),
		"critical unknown ext": withExts(ext(otherOID, true, []byte{5, 0})),
		"nine CertIDs":         nineIDs,
		"empty list":           derTLV(0x30, derTLV(0x30, derTLV(0x30, nil))),
		"non-minimal length":   longLen,
		"bad hash length":      bytes.Replace(good, []byte{0x04, 0x14}, []byte{0x04, 0x13}, 1),
	} {
		if _, err := ParseRequest(der); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if r, err := ParseRequest(withExts(ext(otherOID, false, []byte{5, 0}))); err != nil || r.Nonce != nil {
		t.Errorf("non-critical unknown extension: %v", err)
	}
}

// FuzzParseRequest: the parser never panics, and what it accepts is
// consistent and answerable.
func FuzzParseRequest(f *testing.F) {
	p := newPKI(f, "Fuzz")
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		der, _ := NewRequest(p.ca, big.NewInt(42), h, []byte("nonce"))
		f.Add(der)
	}
	src := &memStatus{}
	src.set("citizen", 42, Status{State: Good})
	r, err := New(testSettings(f), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(f, 48*time.Hour)}}, src, NewCache(0), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ParseRequest(der)
		if err == nil {
			if len(req.CertIDs) < 1 || len(req.CertIDs) > MaxCertIDs {
				t.Fatalf("%d CertIDs accepted", len(req.CertIDs))
			}
			for _, id := range req.CertIDs {
				if len(id.IssuerKeyHash) != id.Hash.Size() || id.Serial == nil {
					t.Fatalf("inconsistent CertID %+v", id)
				}
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not malformed: %v", err)
		}
		resp, _ := r.Respond(context.Background(), der)
		if len(resp) == 0 {
			t.Fatal("empty response")
		}
		if err != nil && !bytes.Equal(resp, respMalformed) {
			t.Fatalf("malformed input answered %x", resp)
		}
	})
}

func TestFuzzSeedsPresent(t *testing.T) {
	files, _ := filepath.Glob("testdata/fuzz/FuzzParseRequest/*")
	if len(files) < 3 {
		t.Fatalf("%d seed files", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n") {
			t.Fatalf("%s: %v", f, err)
		}
		_, err = strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(string(b), "go test fuzz v1\n[]byte("), ")\n"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

type failingSource struct{ memStatus }

func (f *failingSource) AllStatuses(ctx context.Context, issuer string, fn func(*big.Int, Status) error) error {
	for i := range 100 {
		if err := fn(big.NewInt(int64(i+1)), Status{State: Good}); err != nil {
			return err
		}
	}
	return errors.New("database went away")
}

func TestPresignCountsAndFailures(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	for i := range 500 {
		src.set("citizen", int64(i+1), Status{State: Good})
	}
	src.set("citizen", 9999, Status{State: Unknown})
	set, err := Config{PresignHashes: []string{"sha1", "SHA256"}, PresignWorkers: 3}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	cache := NewCache(0)
	r, err := New(set, []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}}, src, cache, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.PresignIssuer(context.Background(), "citizen")
	if err != nil || n != 1000 || cache.Len() != 1000 {
		t.Fatalf("n=%d len=%d err=%v", n, cache.Len(), err)
	}
	r2, _ := New(set, []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(t, 48*time.Hour)}}, &failingSource{}, NewCache(0), nil, nil)
	if _, err := r2.PresignIssuer(context.Background(), "citizen"); err == nil || !strings.Contains(err.Error(), "database went away") {
		t.Fatalf("failing source: %v", err)
	}
	// An absurd worker count would start that many goroutines and size a
	// channel four times as large (or wrap around).
	for _, c := range []Config{{Validity: time.Minute}, {PresignHashes: []string{"md5"}}, {PresignWorkers: 40}, {RenewBefore: time.Hour},
		{PresignWorkers: 1 << 40, MaxConcurrentSigns: 1 << 40}, {PresignWorkers: 1 << 62, MaxConcurrentSigns: 1 << 62}} {
		if _, err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
