package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
)

// A ceremony folder holds what the offline root needs and nothing the
// online servers have: ceremony.yaml (the offline token, the deployment's
// public base URL), the token itself when it is a SoftHSM token, root.pem,
// copies of what the root signed (issued/, crls/) and ceremony.log, the
// append-only, hash-chained record of every act (who, what, when,
// fingerprints). The log is also the ceremony's state: which issuing CAs
// the root certified, which it revoked, the last CRL number. Every command
// verifies it first and refuses to act on a log that was edited.

// Files of a ceremony folder.
const (
	ceremonyLogFile  = "ceremony.log"
	ceremonyRootFile = "root.pem"
)

// Actions recorded in the ceremony log.
const (
	actRootCreate = "ceremony.root.create"
	actCASign     = "ceremony.ca.sign"
	actCARevoke   = "ceremony.ca.revoke"
	actCRLSign    = "ceremony.crl.sign"
)

// rootCreated is the details of actRootCreate.
type rootCreated struct {
	Subject    string    `json:"subject"`
	Serial     string    `json:"serial"`
	Key        string    `json:"key"`
	KeyType    string    `json:"keyType"`
	SPKISHA256 string    `json:"spkiSHA256"`
	CertSHA256 string    `json:"certSHA256"`
	NotBefore  time.Time `json:"notBefore"`
	NotAfter   time.Time `json:"notAfter"`
}

// caSigned is the details of actCASign.
type caSigned struct {
	Name          string    `json:"name"`
	Subject       string    `json:"subject"`
	Serial        string    `json:"serial"`
	SPKISHA256    string    `json:"spkiSHA256"`
	CertSHA256    string    `json:"certSHA256"`
	CSRSHA256     string    `json:"csrSHA256"`
	PathLen       int       `json:"pathLen"`
	NotBefore     time.Time `json:"notBefore"`
	NotAfter      time.Time `json:"notAfter"`
	PublicBaseURL string    `json:"publicBaseURL"`
	Policies      []string  `json:"policies"`
}

// caRevoked is the details of actCARevoke.
type caRevoked struct {
	Serial    string    `json:"serial"`
	Name      string    `json:"name"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revokedAt"`
}

// crlSigned is the details of actCRLSign.
type crlSigned struct {
	Number     string    `json:"number"`
	ThisUpdate time.Time `json:"thisUpdate"`
	NextUpdate time.Time `json:"nextUpdate"`
	Entries    int       `json:"entries"`
	SHA256     string    `json:"sha256"`
}

// ceremonyState is what the log says the root did.
type ceremonyState struct {
	root    *rootCreated
	issued  map[string]caSigned  // by serial (lower-case hex)
	revoked map[string]caRevoked // by serial
	// lastCRL is the number of the last CRL signed (nil before the first).
	lastCRL *big.Int
}

// inUse maps the SPKI hash of every key the root certified as an issuing
// CA to who holds it, for CertifyIssuingCA.
func (s *ceremonyState) inUse() map[[32]byte]string {
	out := map[[32]byte]string{}
	for _, c := range s.issued {
		var h [32]byte
		if b, err := hex.DecodeString(c.SPKISHA256); err == nil && len(b) == 32 {
			copy(h[:], b)
			out[h] = fmt.Sprintf("issuing CA %s, certified with serial %s", c.Name, c.Serial)
		}
	}
	return out
}

// ceremonyLogError is a ceremony log that does not verify.
type ceremonyLogError struct {
	path   string
	seq    int64
	detail string
}

func (e *ceremonyLogError) Error() string {
	return fmt.Sprintf("the ceremony log %s is broken at entry %d: %s", e.path, e.seq, e.detail)
}

// verifyCeremonyLog walks the log: a broken chain or an unreadable line is
// a *ceremonyLogError naming the first bad entry.
func verifyCeremonyLog(ctx context.Context, st *audit.FileStore) (audit.Report, error) {
	rep, err := audit.Verify(ctx, st)
	var le *audit.LineError
	switch {
	case errors.As(err, &le):
		return rep, &ceremonyLogError{path: st.Path(), seq: le.Line, detail: le.Err.Error() + " (the line is not a record)"}
	case err != nil:
		return rep, err
	case !rep.OK():
		return rep, &ceremonyLogError{path: st.Path(), seq: rep.Break.Seq, detail: fmt.Sprintf("%s (%s)", rep.Break.Detail, rep.Break.Kind)}
	}
	return rep, nil
}

// ceremonyFolder is an open ceremony folder whose log verified.
type ceremonyFolder struct {
	cfg   *config.Ceremony
	store *audit.FileStore
	log   *audit.Log
	state *ceremonyState
	head  audit.Head
}

// openCeremony opens the ceremony folder dir: its configuration (written
// with the defaults first when create is set and there is none), its log,
// verified, and the state the log records.
func openCeremony(ctx context.Context, dir string, create bool) (*ceremonyFolder, error) {
	if dir == "" {
		return nil, withExit(2, errors.New("--ceremony DIR is required"))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("ceremony folder: %w", err)
	}
	if _, err := os.Stat(config.CeremonyPath(abs)); errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("%s is not a ceremony folder (no %s): create it with `thiqa ca root create --ceremony %s`", abs, config.CeremonyFileName, abs)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("creating the ceremony folder: %w", err)
		}
		raw, err := config.DefaultCeremony(abs).Marshal()
		if err != nil {
			return nil, err
		}
		if err := writeFileExclusive(config.CeremonyPath(abs), raw, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", config.CeremonyPath(abs), err)
		}
	}
	cfg, err := config.LoadCeremony(abs)
	if err != nil {
		return nil, err
	}
	st := audit.NewFileStore(filepath.Join(abs, ceremonyLogFile))
	rep, err := verifyCeremonyLog(ctx, st)
	if err != nil {
		var le *ceremonyLogError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%w: nothing was done; find out what happened (thiqa audit verify --ceremony %s) before going on", err, abs)
		}
		return nil, err
	}
	state, err := replayCeremony(ctx, st)
	if err != nil {
		return nil, err
	}
	return &ceremonyFolder{cfg: cfg, store: st, state: state, head: rep.Head,
		log: audit.New(st, slog.New(slog.DiscardHandler), nil, audit.Options{})}, nil
}

// close stops the log writer.
func (c *ceremonyFolder) close() { c.log.Close() }

// path returns a file of the ceremony folder.
func (c *ceremonyFolder) path(name string) string { return filepath.Join(c.cfg.Dir(), name) }

// record appends one entry to the ceremony log and returns its record.
func (c *ceremonyFolder) record(ctx context.Context, action, object string, details any) (audit.Record, error) {
	r, err := c.log.Append(ctx, audit.Entry{Actor: operatorName(), Action: action, Object: object, Outcome: audit.OutcomeSuccess, Details: details})
	if err != nil {
		return audit.Record{}, fmt.Errorf("writing the ceremony log: %w", err)
	}
	return r, nil
}

// printRecord tells the operator which log entry vouches for what was done:
// the ceremony script notes its seq and hash.
func printRecord(w io.Writer, r audit.Record) {
	fmt.Fprintf(w, "  ceremony log  entry %d, hash %s\n", r.Seq, hex.EncodeToString(r.Hash))
}

// replayCeremony reads the state from a verified log.
func replayCeremony(ctx context.Context, st *audit.FileStore) (*ceremonyState, error) {
	s := &ceremonyState{issued: map[string]caSigned{}, revoked: map[string]caRevoked{}}
	err := st.AuditRecords(ctx, 1, func(r audit.Record) error {
		var err error
		switch r.Action {
		case actRootCreate:
			var d rootCreated
			if err = json.Unmarshal(r.Details, &d); err == nil {
				s.root = &d
			}
		case actCASign:
			var d caSigned
			if err = json.Unmarshal(r.Details, &d); err == nil {
				s.issued[d.Serial] = d
			}
		case actCARevoke:
			var d caRevoked
			if err = json.Unmarshal(r.Details, &d); err == nil {
				s.revoked[d.Serial] = d
			}
		case actCRLSign:
			var d crlSigned
			if err = json.Unmarshal(r.Details, &d); err == nil {
				n, ok := new(big.Int).SetString(d.Number, 10)
				if !ok {
					err = fmt.Errorf("CRL number %q", d.Number)
				}
				s.lastCRL = n
			}
		}
		if err != nil {
			return fmt.Errorf("ceremony log entry %d (%s): %w", r.Seq, r.Action, err)
		}
		return nil
	})
	return s, err
}

// openToken opens the offline token; with create, a SoftHSM token the
// folder manages is made first when it does not exist yet.
func (c *ceremonyFolder) openToken(ctx context.Context, create bool) (*hsm.Token, error) {
	h := c.cfg.HSM
	if _, err := os.Stat(h.Module); err != nil {
		return nil, fmt.Errorf("PKCS#11 module %s: %w", h.Module, err)
	}
	if h.SoftHSM != nil {
		if create {
			if _, err := prepareSoftHSMToken(h, c.cfg.Resolve); err != nil {
				return nil, err
			}
		}
		if err := os.Setenv("SOFTHSM2_CONF", c.cfg.Resolve(h.SoftHSM.Conf)); err != nil {
			return nil, fmt.Errorf("setting SOFTHSM2_CONF: %w", err)
		}
	}
	pin, err := c.cfg.PIN()
	if err != nil {
		return nil, err
	}
	open := func() (*hsm.Token, error) {
		return hsm.Open(ctx, hsm.Config{ModulePath: h.Module, TokenLabel: h.TokenLabel, PIN: pin, PoolSize: 1, VerifyAfterSign: true})
	}
	tok, err := open()
	if err != nil && create && h.SoftHSM != nil && errors.Is(err, hsm.ErrTokenNotFound) {
		soPIN, serr := config.ReadSecret(c.cfg.Resolve(h.SoftHSM.SOPINFile), "")
		if serr != nil {
			return nil, fmt.Errorf("SoftHSM security officer PIN: %w", serr)
		}
		if err := hsm.InitToken(h.Module, h.TokenLabel, soPIN, pin); err != nil {
			return nil, fmt.Errorf("creating the offline SoftHSM token %q: %w", h.TokenLabel, err)
		}
		tok, err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("opening the offline token %q: %w", h.TokenLabel, err)
	}
	return tok, nil
}

// rootKeyLabel returns the object label of the root key's URI.
func (c *ceremonyFolder) rootKeyLabel() (string, error) {
	u, err := hsm.ParseURI(c.cfg.RootKey)
	if err != nil {
		return "", fmt.Errorf("rootKey %q: %w", c.cfg.RootKey, err)
	}
	if u.Token != "" && u.Token != c.cfg.HSM.TokenLabel {
		return "", fmt.Errorf("rootKey %q names token %q, but the offline token is %q", c.cfg.RootKey, u.Token, c.cfg.HSM.TokenLabel)
	}
	if u.Object == "" {
		return "", fmt.Errorf("rootKey %q has no object label", c.cfg.RootKey)
	}
	return u.Object, nil
}

// root returns the root certificate and its key on the offline token,
// checking that they match and that the log recorded this root.
func (c *ceremonyFolder) root(ctx context.Context, tok *hsm.Token) (*x509.Certificate, *hsm.Signer, error) {
	if c.state.root == nil {
		return nil, nil, fmt.Errorf("the ceremony log records no root: create it with `thiqa ca root create --ceremony %s`", c.cfg.Dir())
	}
	raw, err := os.ReadFile(c.path(ceremonyRootFile))
	if err != nil {
		return nil, nil, fmt.Errorf("root certificate: %w", err)
	}
	cert, err := parseCertPEM(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.path(ceremonyRootFile), err)
	}
	if sum := sha256.Sum256(cert.Raw); hex.EncodeToString(sum[:]) != c.state.root.CertSHA256 {
		return nil, nil, fmt.Errorf("%s is not the root the ceremony log records (SHA-256 %s)", c.path(ceremonyRootFile), c.state.root.CertSHA256)
	}
	label, err := c.rootKeyLabel()
	if err != nil {
		return nil, nil, err
	}
	key, err := tok.FindKey(ctx, label)
	if err != nil {
		return nil, nil, fmt.Errorf("the root key %s on the offline token: %w", c.cfg.RootKey, err)
	}
	if pub, ok := publicOf(key); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("the key %s on the offline token is not the key of %s", key.URI(), c.path(ceremonyRootFile))
	}
	return cert, key, nil
}

// keep writes a copy of something the root signed into the ceremony folder
// (issued/, crls/), never replacing a file.
func (c *ceremonyFolder) keep(sub, name string, data []byte) (string, error) {
	dir := c.path(sub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	p := filepath.Join(dir, name)
	if err := writeFileExclusive(p, data, 0o600); err != nil {
		return "", fmt.Errorf("keeping a copy in %s: %w", p, err)
	}
	return p, nil
}

// fingerprint is the SHA-256 of der as openssl prints it (AB:CD:…).
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// sha256Hex is the lower-case hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// spkiHex is the lower-case hex SHA-256 of a certificate's or key's SPKI.
func spkiHex(pub any) (string, error) {
	h, err := ca.SPKIHash(pub)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h[:]), nil
}

// span is a lifetime given on the command line: whole years ("25y"), days
// ("90d") or a Go duration ("36h").
type span struct {
	years int
	d     time.Duration
	text  string
}

// parseSpan reads a span; it must be positive.
func parseSpan(s string) (span, error) {
	if n, ok := strings.CutSuffix(s, "y"); ok {
		y, err := strconv.Atoi(n)
		if err != nil || y <= 0 || y > 100 {
			return span{}, fmt.Errorf("%q: want a number of years from 1 to 100, e.g. 25y", s)
		}
		return span{years: y, text: s}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 || d > 36600 {
			return span{}, fmt.Errorf("%q: want a positive number of days, e.g. 90d", s)
		}
		return span{d: time.Duration(d) * 24 * time.Hour, text: s}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return span{}, fmt.Errorf("%q: want years (25y), days (90d) or a duration (36h)", s)
	}
	return span{d: d, text: s}, nil
}

// end is the inclusive end of a lifetime that starts at t.
func (s span) end(t time.Time) time.Time {
	if s.years > 0 {
		return t.AddDate(s.years, 0, 0).Add(-time.Second)
	}
	return t.Add(s.d - time.Second)
}

// verifyCeremony is `thiqa audit verify --ceremony DIR`: it walks the
// ceremony log and says what it records; a log that was edited is exit 1,
// naming the first bad entry.
func verifyCeremony(ctx context.Context, env *cliEnv, dir string) error {
	if _, err := os.Stat(config.CeremonyPath(dir)); err != nil {
		return fmt.Errorf("%s is not a ceremony folder: %w", dir, err)
	}
	st := audit.NewFileStore(filepath.Join(dir, ceremonyLogFile))
	rep, err := verifyCeremonyLog(ctx, st)
	var le *ceremonyLogError
	if errors.As(err, &le) {
		fmt.Fprintf(env.stdout, "ceremony log BROKEN at entry %d: %s (%s); %d entries verified before it\n", le.seq, le.detail, le.path, rep.Verified)
		return withExit(1, errSilent)
	}
	if err != nil {
		return err
	}
	state, err := replayCeremony(ctx, st)
	if err != nil {
		return err
	}
	out := env.stdout
	fmt.Fprintf(out, "ceremony log OK: %d entries, head seq %d, hash %s\n", rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
	fmt.Fprintln(out, "  (the last entry is the head: compare it with the one written down at the last ceremony)")
	if state.root != nil {
		fmt.Fprintf(out, "  root          %s, certificate SHA-256 %s\n", state.root.Subject, state.root.CertSHA256)
	}
	serials := make([]string, 0, len(state.issued))
	for s := range state.issued {
		serials = append(serials, s)
	}
	slices.Sort(serials)
	for _, s := range serials {
		is := state.issued[s]
		status := "valid"
		if r, ok := state.revoked[s]; ok {
			status = "revoked (" + r.Reason + ")"
		}
		fmt.Fprintf(out, "  issuing CA    %s, serial %s, until %s, %s\n", is.Name, s, is.NotAfter.Format(time.DateOnly), status)
	}
	if state.lastCRL != nil {
		fmt.Fprintf(out, "  last CRL      number %s\n", state.lastCRL)
	}
	return nil
}
