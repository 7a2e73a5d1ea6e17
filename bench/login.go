package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
)

// benchPIN is the login PIN of the benchmark's citizens.
const benchPIN = "246810"

// Login measures complete remote (mobile ID) logins over HTTP against a
// running `thiqa serve` (`thiqa bench login`): authorize with a civil
// number, approval with PIN (argon2id on the server, then a challenge
// signed by the citizen's key on the token), browser completion, code
// exchange with private_key_jwt and PKCE, and ID token verification. It prepares its citizens (keyInHSM
// citizen-auth certificates, enrolled with a PIN) and its portal first, and
// reports the rate with the raw PKCS#11 sign rate of a citizen key measured
// in the same run and the cost of one PIN hash.
func Login(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	fs := newFlags("bench login", env)
	dir := fs.String("data", "", "data folder of the server (required)")
	base := fs.String("url", "", "base URL of the running `thiqa serve` (required); must be its publicBaseURL")
	citizens := fs.Int("citizens", 16, "citizens to prepare (logins go round-robin over them)")
	conc := fs.Int("concurrency", 4, "concurrent logins")
	n := fs.Int("logins", 1000, "measured logins")
	warm := fs.Int("warmup", 50, "logins before measuring")
	rawFor := fs.Duration("raw-duration", 2*time.Second, "measuring time of the raw HSM sign rate")
	country := countryFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" || *conc < 1 || *n < 1 || *warm < 0 || *citizens < 1 {
		return usage(errors.New("--url is required; --concurrency, --logins and --citizens must be positive"))
	}
	*base = strings.TrimRight(*base, "/")
	folder, err := deps.Folder(*dir)
	if err != nil {
		return err
	}
	if !folder.IdentityEnabled {
		return errors.New("this data folder has no digital-ID service")
	}
	cc, err := subjectCountry(folder, *country)
	if err != nil {
		return err
	}
	plat, err := folder.OpenPlatform(ctx, *conc)
	if err != nil {
		return err
	}
	defer plat.Close()
	bearer, err := plat.MintToken(ctx, "bench-officer", policies.RoleRegistrationOfficer, time.Hour)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *conc * 2, MaxConnsPerHost: *conc * 2},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	fmt.Fprintf(env.stdout, "thiqa bench login: %s, %d logins (+%d warm-up), %d citizens, concurrency %d, GOMAXPROCS=%d\n",
		*base, *n, *warm, *citizens, *conc, runtime.GOMAXPROCS(0))
	civils, creds, err := prepareBenchCitizens(ctx, client, *base, bearer, cc, *citizens)
	if err != nil {
		return err
	}
	// Each citizen's phone signs in as that citizen: the tokens are minted
	// here, outside the measured time (an app holds its token across logins).
	phones := make([]string, len(civils))
	for i := range creds {
		if err := plat.EnrolMobileID(ctx, creds[i], benchPIN, "bench-login"); err != nil {
			return err
		}
		if phones[i], err = plat.MintToken(ctx, civils[i], policies.RoleCitizen, time.Hour); err != nil {
			return err
		}
	}
	rp, err := newBenchPortal(ctx, plat, *base)
	if err != nil {
		return err
	}
	jwks, err := fetchJWKS(ctx, client, *base)
	if err != nil {
		return err
	}
	hashTime, err := measurePINHash(ctx, folder.PINParams)
	if err != nil {
		return err
	}

	var next atomic.Int64
	run := func(total int) (*latencies, int64, error) {
		lat := &latencies{}
		var failures atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		var left atomic.Int64
		left.Store(int64(total))
		for range *conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for left.Add(-1) >= 0 && ctx.Err() == nil {
					i := int(next.Add(1)) % len(civils)
					t0 := time.Now()
					if err := rp.login(ctx, client, civils[i], phones[i], jwks); err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err)
						continue
					}
					mine = append(mine, time.Since(t0))
				}
				lat.add(mine)
			}()
		}
		wg.Wait()
		if e, _ := firstErr.Load().(error); e != nil && len(lat.all) == 0 {
			return nil, failures.Load(), e
		}
		if e, _ := firstErr.Load().(error); e != nil {
			fmt.Fprintf(env.stderr, "first login error: %v\n", e)
		}
		return lat, failures.Load(), nil
	}
	if *warm > 0 {
		if _, _, err := run(*warm); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	start := time.Now()
	lat, failures, err := run(*n)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	rate := float64(len(lat.all)) / elapsed.Seconds()
	key, err := plat.Key(ctx, creds[0])
	if err != nil {
		return err
	}
	raw, err := plat.RawSignRate(ctx, creds[0], *conc, *rawFor)
	if err != nil {
		return fmt.Errorf("raw PKCS#11 rate: %w", err)
	}
	slots := folder.PINParams.MaxConcurrent
	fmt.Fprintf(env.stdout, "logins        %d in %s: %.1f logins/s, %d errors\n", len(lat.all), elapsed.Round(time.Millisecond), rate, failures)
	fmt.Fprintf(env.stdout, "latency       p50 %s  p99 %s\n", lat.percentile(50).Round(10*time.Microsecond), lat.percentile(99).Round(10*time.Microsecond))
	fmt.Fprintf(env.stdout, "raw HSM sign  %.0f/s (%s citizen key, %d sessions, same run) -> ratio %.4f (goal 0.4)\n", raw, key.Type, *conc, rate/raw)
	p := folder.PINParams
	fmt.Fprintf(env.stdout, "PIN hash      argon2id t=%d m=%d KiB: %s each, at most %d at once -> bound %.0f logins/s\n",
		p.Time, p.MemoryKiB, hashTime.Round(10*time.Microsecond), slots, float64(slots)/hashTime.Seconds())
	return nil
}

// prepareBenchCitizens issues keyInHSM citizen-auth certificates to n
// citizens of country through the CA API and returns the civil numbers and credential IDs.
func prepareBenchCitizens(ctx context.Context, client *http.Client, base, bearer, country string, n int) ([]string, []string, error) {
	var civils, creds []string
	for i := range n {
		civil := randomCivil()
		body, _ := json.Marshal(ca.IssueRequest{Profile: policies.ProfileCitizenAuth, KeyInHSM: true, Subject: map[string]string{
			"givenName": "Bench", "surname": fmt.Sprintf("Citizen %d", i), "commonName": fmt.Sprintf("Bench Citizen %d", i), "civilNumber": civil, "country": country,
		}})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/certificates", bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out ca.IssueResponse
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.CredentialID == "" {
			return nil, nil, fmt.Errorf("issuing a citizen-auth certificate: %d %s", resp.StatusCode, raw)
		}
		civils, creds = append(civils, civil), append(creds, out.CredentialID)
	}
	return civils, creds, nil
}

func randomCivil() string {
	v, _ := rand.Int(rand.Reader, big.NewInt(9e9))
	return fmt.Sprintf("9%09d", v.Int64())
}

// measurePINHash times one argon2id hash with the server's parameters
// (median of five).
func measurePINHash(ctx context.Context, p pin.Params) (time.Duration, error) {
	m, err := pin.New(pin.NewMemoryStore(), p)
	if err != nil {
		return 0, err
	}
	var ds []time.Duration
	for range 5 {
		t0 := time.Now()
		if _, err := m.Hash(ctx, benchPIN); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[2], nil
}

func fetchJWKS(ctx context.Context, client *http.Client, base string) (*jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+identity.PathJWKS, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		return nil, fmt.Errorf("reading the JWKS: %v", err)
	}
	return &set, nil
}

// benchPortal is a relying party registered for the benchmark.
type benchPortal struct {
	id, base, redirect string
	key                *ecdsa.PrivateKey
	signer             jose.Signer
}

// clientRegistrar is the store call the benchmark needs to register its portal.
type clientRegistrar interface {
	AddClient(ctx context.Context, c *identity.Client) error
}

func newBenchPortal(ctx context.Context, st clientRegistrar, base string) (*benchPortal, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "bench", Algorithm: "ES256", Use: "sig"}}})
	rp := &benchPortal{id: "bench-" + randomCivil(), base: base, redirect: "https://bench-portal.invalid/cb", key: k}
	if err := st.AddClient(ctx, &identity.Client{ID: rp.id, Name: "Benchmark portal", RedirectURIs: []string{rp.redirect},
		AuthMethod: identity.AuthPrivateKeyJWT, JWKS: set, Created: time.Now()}); err != nil {
		return nil, err
	}
	rp.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: "bench"}}, nil)
	return rp, err
}

var (
	benchReSession = regexp.MustCompile(`name="login" value="([^"]+)"`)
	benchReKey     = regexp.MustCompile(`name="key" value="([^"]+)"`)
	benchReCode    = regexp.MustCompile(`id="verification_code">(\d+)<`)
)

func randB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login runs one complete remote login for civil, whose phone approves with
// the citizen's API token phone.
func (rp *benchPortal) login(ctx context.Context, client *http.Client, civil, phone string, jwks *jose.JSONWebKeySet) error {
	verifier := randB64(32)
	sum := sha256.Sum256([]byte(verifier))
	nonce := randB64(12)
	form := url.Values{"client_id": {rp.id}, "redirect_uri": {rp.redirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"s"}, "nonce": {nonce}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"civil_number": {civil}}
	status, body, _, err := benchPost(ctx, client, rp.base+identity.PathAuthorize, "application/x-www-form-urlencoded", form.Encode(), "")
	if err != nil {
		return err
	}
	s, k, c := benchReSession.FindStringSubmatch(body), benchReKey.FindStringSubmatch(body), benchReCode.FindStringSubmatch(body)
	if status != http.StatusOK || s == nil || k == nil || c == nil {
		return fmt.Errorf("authorize: status %d", status)
	}
	ab, _ := json.Marshal(identity.ApproveRequest{Session: s[1], VerificationCode: c[1], PIN: benchPIN})
	if status, body, _, err = benchPost(ctx, client, rp.base+identity.PathMobileApprove, "application/json", string(ab), phone); err != nil || status != http.StatusOK {
		return fmt.Errorf("approve: status %d %s %v", status, body, err)
	}
	status, _, loc, err := benchPost(ctx, client, rp.base+identity.PathComplete, "application/x-www-form-urlencoded", url.Values{"login": {s[1]}, "key": {k[1]}}.Encode(), "")
	if err != nil || status != http.StatusSeeOther {
		return fmt.Errorf("complete: status %d %v", status, err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("code") == "" {
		return fmt.Errorf("complete: no code in %q", loc)
	}
	now := time.Now()
	assertion, err := jwt.Signed(rp.signer).Claims(jwt.Claims{Issuer: rp.id, Subject: rp.id, Audience: jwt.Audience{rp.base + identity.PathToken},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: randB64(12)}).Serialize()
	if err != nil {
		return err
	}
	tf := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {rp.redirect}, "code_verifier": {verifier},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	status, body, _, err = benchPost(ctx, client, rp.base+identity.PathToken, "application/x-www-form-urlencoded", tf.Encode(), "")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("token: status %d %s %v", status, body, err)
	}
	var tr identity.TokenResponse
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		return err
	}
	idt, err := jwt.ParseSigned(tr.IDToken, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256})
	if err != nil {
		return err
	}
	var claims struct {
		jwt.Claims
		Nonce string `json:"nonce"`
	}
	if err := idt.Claims(jwks.Keys[0].Key, &claims); err != nil {
		return fmt.Errorf("ID token: %w", err)
	}
	if claims.Nonce != nonce || claims.Audience[0] != rp.id {
		return errors.New("ID token: wrong nonce or audience")
	}
	return nil
}

// benchPost posts body and returns status, answer and Location; bearer,
// when not empty, is sent as the request's bearer token.
func benchPost(ctx context.Context, client *http.Client, u, ctype, body, bearer string) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", ctype)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location"), err
}
