package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
)

func TestSign(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/api/v1/sign" || q.Get("level") != "B-T" || q.Get("credential") != "cred-1" || q.Get("reason") != "ok" ||
			r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get(signing.PINHeader) != "1234" {
			t.Errorf("request %s %v %v", r.URL, q, r.Header)
		}
		var doc []byte
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			img, _, err := r.FormFile("image")
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(img); string(b) != "PNG" {
				t.Errorf("image %q", b)
			}
			f, _, err := r.FormFile("document")
			if err != nil {
				t.Fatal(err)
			}
			doc, _ = io.ReadAll(f)
		} else {
			doc, _ = io.ReadAll(r.Body)
		}
		if string(doc) != "%PDF" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"title":"bad","detail":"not a PDF"}`)
			return
		}
		w.Header().Set(signing.DigestHeader, "abcd")
		w.Header().Add(signing.WarningHeader, "w1")
		io.WriteString(w, "%PDF signed")
	}))
	defer srv.Close()
	c := &Client{Base: srv.URL + "/", Token: "tok"}
	for _, img := range [][]byte{nil, []byte("PNG")} {
		var out bytes.Buffer
		res, err := c.Sign(context.Background(), SignRequest{Credential: "cred-1", PIN: "1234", Level: "B-T", Options: url.Values{"reason": {"ok"}},
			Image: img, Document: strings.NewReader("%PDF"), Size: 4}, func() (io.Writer, error) { return &out, nil })
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != "%PDF signed" || res.Size != 11 || res.Digest != "abcd" || len(res.Warnings) != 1 || res.Warnings[0] != "w1" {
			t.Errorf("got %q %+v", out.String(), res)
		}
	}
	_, err := c.Sign(context.Background(), SignRequest{Credential: "cred-1", PIN: "1234", Level: "B-T", Options: url.Values{"reason": {"ok"}},
		Document: strings.NewReader("nope"), Size: 4}, func() (io.Writer, error) { t.Error("create called on a refusal"); return io.Discard, nil })
	var re *RefusedError
	if !errors.As(err, &re) || re.HTTPStatus() != 400 || err.Error() != "refused (400): not a PDF" {
		t.Errorf("refusal: %v", err)
	}
}

func TestExtend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/extend" || r.URL.Query().Get("level") != "B-LTA" || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("request %s %v", r.URL, r.Header)
		}
		if r.URL.Query().Get("force") != "true" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, "broken signature\n")
			return
		}
		w.Header().Add(signing.WarningHeader, "no revocation data for CN=x")
		io.Copy(w, r.Body)
	}))
	defer srv.Close()
	c := &Client{Base: srv.URL, Token: "tok"}
	var out bytes.Buffer
	missing, err := c.Extend(context.Background(), signer.LevelBLTA, true, strings.NewReader("%PDF"), 4, &out)
	if err != nil || out.String() != "%PDF" || len(missing) != 1 {
		t.Fatalf("extend: %v %q %v", err, out.String(), missing)
	}
	_, err = c.Extend(context.Background(), signer.LevelBLTA, false, strings.NewReader("%PDF"), 4, io.Discard)
	if err == nil || err.Error() != "refused (422): broken signature" {
		t.Errorf("refusal: %v", err)
	}
	if _, err := (&Client{Base: "http://127.0.0.1:1", Token: "tok"}).Extend(context.Background(), signer.LevelBLT, false, strings.NewReader(""), 0, io.Discard); err == nil || !strings.HasPrefix(err.Error(), "calling http://127.0.0.1:1: ") {
		t.Errorf("unreachable: %v", err)
	}
}
