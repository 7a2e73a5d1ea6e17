package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signing"
)

// runSign signs a PDF with a citizen's remote key through the server:
// `thiqa sign --url URL --token-file F --credential ID --pin-env VAR --level L
// --in F --out G` (and the document options of `thiqa seal`: --reason …
// --visible --rect …). The citizen's API token and signing PIN authorise the
// one signature (POST /api/v1/sign); the PIN is read from a file or an
// environment variable, never from the command line.
func runSign(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("sign", env)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the Thiqa server")
	tokenFile := fs.String("token-file", "", "file holding the citizen's API token (required)")
	credID := fs.String("credential", "", "credential ID of the citizen's signing key (required)")
	pinFile := fs.String("pin-file", "", "file holding the signing PIN")
	pinEnv := fs.String("pin-env", "", "environment variable holding the signing PIN (wins over --pin-file)")
	levelName := fs.String("level", "B-B", "PAdES level: B-B, B-T, B-LT or B-LTA")
	inPath := fs.String("in", "", "PDF to sign (required)")
	outPath := fs.String("out", "", "signed PDF to write (required; written only on success)")
	timeout := fs.Duration("timeout", 5*time.Minute, "time limit of the request")
	df := addDocFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tokenFile == "" || *credID == "" || *inPath == "" || *outPath == "" || (*pinFile == "" && *pinEnv == "") {
		return withExit(2, errors.New("--token-file, --credential, --in, --out and one of --pin-file or --pin-env are required"))
	}
	token, err := config.ReadSecret(*tokenFile, "")
	if err != nil {
		return fmt.Errorf("API token: %w", err)
	}
	pinValue, err := config.ReadSecret(*pinFile, *pinEnv)
	if err != nil {
		return fmt.Errorf("signing PIN: %w", err)
	}
	in, err := os.Open(*inPath)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	q := url.Values{"level": {*levelName}, "credential": {*credID}}
	img, err := df.query(q)
	if err != nil {
		return err
	}
	u := strings.TrimRight(*base, "/") + "/api/v1/sign?" + q.Encode()
	body, ctype, size := io.Reader(in), "application/pdf", st.Size()
	if img != nil {
		body, ctype, size = multipartBody(in, img)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(signing.PINHeader, pinValue)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("calling %s: %w", *base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p problem.Details
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
			return fmt.Errorf("refused (%d): %s", resp.StatusCode, p.Detail)
		}
		return fmt.Errorf("refused (%d): %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	tmp, err := os.CreateTemp(filepath.Dir(*outPath), ".sign-*.pdf")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("receiving the signed document: %w", err)
	}
	if err := os.Rename(tmp.Name(), *outPath); err != nil {
		return err
	}
	for _, w := range resp.Header.Values(signing.WarningHeader) {
		fmt.Fprintf(env.stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(env.stdout, "signed %s -> %s (%s, %d bytes, digest %s)\n", *inPath, *outPath, *levelName, n, resp.Header.Get(signing.DigestHeader))
	return nil
}

// multipartBody streams the PDF in part "document" after the PNG in part
// "image" (a visible signature's request); the size is unknown (-1).
func multipartBody(pdf io.Reader, png []byte) (io.Reader, string, int64) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			iw, err := mw.CreateFormFile("image", "image.png")
			if err != nil {
				return err
			}
			if _, err := iw.Write(png); err != nil {
				return err
			}
			dw, err := mw.CreateFormFile("document", "document.pdf")
			if err != nil {
				return err
			}
			if _, err := io.Copy(dw, pdf); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType(), -1
}
