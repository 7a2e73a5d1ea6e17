package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	neturl "net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/ocsp/ocspbench"
	"github.com/thiqa/thiqa/policies"
)

// OCSP measures an OCSP responder (`thiqa bench ocsp`) with requests for the certificates
// issued in a data folder (SHA-1 CertIDs, no nonce: the pre-signed path).
// --prepare N first issues N citizen-signing certificates in-process (run it
// before `thiqa serve`, so the server pre-signs them at start);
// --openssl-index FILE writes an `openssl ocsp -index` database of the same
// certificates for the side-by-side comparison and exits.
func OCSP(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	fs := newFlags("bench ocsp", env)
	dir := fs.String("data", "", "data folder whose certificates are asked about (required)")
	url := fs.String("url", "", "responder URL, e.g. http://127.0.0.1:8080/ocsp (a bare base URL gets /ocsp)")
	conns := fs.Int("conns", 16, "concurrent keep-alive connections")
	d := fs.Duration("duration", 10*time.Second, "measuring time")
	caName := fs.String("ca", policies.IssuerCitizen, "issuing CA whose certificates are asked about")
	maxCerts := fs.Int("max-certs", 100_000, "at most this many certificates in the request set")
	get := fs.Bool("get", false, "send GET /ocsp/{base64} instead of POST")
	perRequest := fs.Bool("conn-per-request", false, "open a new connection for every request (for HTTP/1.0 responders such as openssl ocsp, which close after each answer)")
	prepare := fs.Int("prepare", 0, "issue this many citizen-signing certificates in-process, then exit")
	index := fs.String("openssl-index", "", "write an openssl ocsp index.txt of the certificates to this file, then exit")
	country := countryFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	folder, err := deps.Folder(*dir)
	if err != nil {
		return err
	}
	if !folder.CAEnabled {
		return errors.New("this data folder has no CA configured")
	}
	if *prepare > 0 {
		cc, err := subjectCountry(folder, *country)
		if err != nil {
			return err
		}
		return prepareCertificates(ctx, env, folder, cc, *prepare)
	}
	db, err := folder.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	issuerCert, err := folder.CACertificate(*caName)
	if err != nil {
		return err
	}
	var serials []*big.Int
	err = db.AllStatuses(ctx, *caName, func(s *big.Int, st ocsp.Status) error {
		if len(serials) >= *maxCerts {
			return errEnough
		}
		serials = append(serials, new(big.Int).Set(s))
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return err
	}
	if len(serials) == 0 {
		return fmt.Errorf("CA %s has issued no certificates in %s (use --prepare N before serving)", *caName, *dir)
	}
	if *index != "" {
		return writeOpenSSLIndex(ctx, env, db, serials, *index)
	}
	if *url == "" || *conns < 1 || *d <= 0 {
		return usage(errors.New("--url is required; --conns and --duration must be positive"))
	}
	u := strings.TrimRight(*url, "/")
	if !strings.HasSuffix(u, "/ocsp") && strings.Count(u, "/") == 2 {
		u += "/ocsp"
	}
	reqs := make([][]byte, 0, len(serials))
	for _, s := range serials {
		der, err := ocsp.NewRequest(issuerCert, s, crypto.SHA1, nil)
		if err != nil {
			return err
		}
		reqs = append(reqs, der)
	}
	method := "POST"
	if *get {
		method = "GET"
	}
	fmt.Fprintf(env.stdout, "thiqa bench ocsp: %s %s, %d certificates of CA %s, %d connections, %s, GOMAXPROCS=%d (load generator on the same machine)\n",
		method, u, len(reqs), *caName, *conns, *d, runtime.GOMAXPROCS(0))
	var res ocspbench.Result
	if *perRequest {
		if *get {
			return usage(errors.New("--conn-per-request sends POST only"))
		}
		fmt.Fprintln(env.stdout, "mode: a new TCP connection per request (HTTP/1.0, Connection: close)")
		res, err = runConnPerRequest(ctx, u, reqs, *conns, *d)
	} else {
		res, err = ocspbench.Run(ctx, ocspbench.Options{URL: u, Requests: reqs, Conns: *conns, Duration: *d, GET: *get})
	}
	if err != nil {
		return fmt.Errorf("load generator: %w", err)
	}
	fmt.Fprintf(env.stdout, "responses/s %.0f  p50 %s  p99 %s  responses %d  errors %d\n",
		res.PerSecond, res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond), res.Responses, res.Errors)
	return nil
}

var errEnough = errors.New("enough certificates")

// runConnPerRequest is a load generator for responders that close the
// connection after every answer (openssl ocsp speaks HTTP/1.0 without
// keep-alive): conns workers each dial, POST one request, read the answer
// to EOF and check it is a successful OCSPResponse.
func runConnPerRequest(ctx context.Context, rawURL string, reqs [][]byte, conns int, d time.Duration) (ocspbench.Result, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return ocspbench.Result{}, fmt.Errorf("responder URL %q must be http://host:port/path", rawURL)
	}
	wire := make([][]byte, len(reqs))
	for i, der := range reqs {
		wire[i] = append([]byte("POST "+u.EscapedPath()+" HTTP/1.0\r\nHost: "+u.Host+"\r\nContent-Type: application/ocsp-request\r\nContent-Length: "+
			strconv.Itoa(len(der))+"\r\nConnection: close\r\n\r\n"), der...)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lats := make([][]time.Duration, conns)
	errs := make([]int, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range conns {
		wg.Go(func() {
			buf := make([]byte, 0, 8192)
			for i := c * 7919; ctx.Err() == nil; i++ {
				t0 := time.Now()
				ok := oneRequest(u.Host, wire[i%len(wire)], &buf)
				if ctx.Err() != nil {
					return
				}
				if !ok {
					errs[c]++
					continue
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	out := ocspbench.Result{Elapsed: time.Since(start)}
	var all []time.Duration
	for c := range conns {
		all = append(all, lats[c]...)
		out.Errors += errs[c]
	}
	out.Responses = len(all)
	if len(all) == 0 {
		return out, errors.New("no successful response")
	}
	slices.Sort(all)
	out.P50, out.P99 = all[len(all)/2], all[len(all)*99/100]
	out.PerSecond = float64(out.Responses) / out.Elapsed.Seconds()
	return out, nil
}

// oneRequest sends one request on a new connection and reports whether the
// answer was HTTP 200 with responseStatus successful.
func oneRequest(host string, wire []byte, buf *[]byte) bool {
	// A request once started is finished even when the run ends meanwhile:
	// a connection closed before its request arrives can stall a
	// single-process responder.
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", host)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(wire); err != nil {
		return false
	}
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, len(b))
		}
		n, err := conn.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	*buf = b
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if len(b) < 12 || string(b[9:12]) != "200" || i < 0 {
		return false
	}
	body := b[i+4:]
	// OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED (0 = successful), ... }
	j := 2
	if len(body) > 1 && body[1]&0x80 != 0 {
		j += int(body[1] & 0x7f)
	}
	return len(body) >= j+3 && body[0] == 0x30 && body[j] == 0x0a && body[j+1] == 0x01 && body[j+2] == 0x00
}

// writeOpenSSLIndex writes an openssl `ca` index.txt listing the
// certificates as valid ("V", expiry, serial, subject).
func writeOpenSSLIndex(ctx context.Context, env *env, db Store, serials []*big.Int, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, s := range serials {
		der, err := db.CertificateDER(ctx, s)
		if err != nil {
			f.Close()
			return err
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			f.Close()
			return err
		}
		fmt.Fprintf(w, "V\t%s\t\t%s\tunknown\t/CN=%s\n", c.NotAfter.UTC().Format("060102150405Z"),
			strings.ToUpper(hex.EncodeToString(s.Bytes())), strings.ReplaceAll(c.Subject.CommonName, "/", " "))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "wrote %d certificates to %s\n", len(serials), path)
	return nil
}

// prepareCertificates issues n citizen-signing certificates to citizens of
// country in-process with fresh P-256 subject keys (the requests a
// registration officer would send).
func prepareCertificates(ctx context.Context, env *env, folder *Folder, country string, n int) error {
	p, err := folder.OpenPlatform(ctx, 0)
	if err != nil {
		return err
	}
	defer p.Close()
	a, err := p.Authority(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	for i := range n {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return err
		}
		civil := fmt.Sprintf("%08d", 10_000_000+i)
		_, err = a.Issue(ctx, ca.Request{Profile: policies.ProfileCitizenSigning, CSR: csr, RequestedBy: p.Operator() + ":bench",
			Subject: map[string]string{"givenName": "Bench", "surname": "Citizen", "commonName": "Bench Citizen " + civil,
				"civilNumber": civil, "country": country}})
		if err != nil {
			return fmt.Errorf("issuing certificate %d: %w", i+1, err)
		}
	}
	fmt.Fprintf(env.stdout, "issued %d certificates in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
