// Package ceremony keeps an offline root CA in a ceremony folder: it
// creates the root (key on the offline token, self-signed certificate),
// certifies issuing CAs from the CSRs the online side made, revokes them
// and signs the root's CRL. The folder holds what the offline root needs
// and nothing the online servers have: its configuration, the token itself
// when it is a SoftHSM token, root.pem, copies of what the root signed
// (issued/, crls/) and ceremony.log, the append-only, hash-chained record
// of every act (who, what, when, fingerprints; internal/audit.FileStore).
// The log is also the ceremony's state: which issuing CAs the root
// certified, which it revoked, the last CRL number. Every act verifies it
// first and refuses to act on a log that was edited.
//
// The package never sees PKCS#11 or the configuration file: the caller
// names the folder and opens the offline token behind Token.
package ceremony

import (
	"context"
	"crypto"
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
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// Files of a ceremony folder.
const (
	// LogFile is the ceremony log.
	LogFile = "ceremony.log"
	// RootFile is the root's certificate (PEM).
	RootFile = "root.pem"
)

// Actions recorded in the ceremony log.
const (
	actRootCreate = "ceremony.root.create"
	actCASign     = "ceremony.ca.sign"
	actCARevoke   = "ceremony.ca.revoke"
	actCRLSign    = "ceremony.crl.sign"
)

// ErrKeyNotFound is what Token.FindKey returns (wrapped) when the token has
// no key with that label.
var ErrKeyNotFound = ca.ErrKeyNotFound

// Key is a key on the offline token.
type Key = ca.TokenKey

// Token is the offline token.
type Token interface {
	// FindKey returns the key labelled label (ErrKeyNotFound, wrapped,
	// when there is none).
	FindKey(ctx context.Context, label string) (Key, error)
	// GenerateKey generates a key of keyType ("ec-p384", "rsa-4096")
	// labelled label on the token.
	GenerateKey(ctx context.Context, label, keyType string) (Key, error)
	// DeleteKey destroys the key labelled label.
	DeleteKey(ctx context.Context, label string) error
	Close() error
}

// Options name a ceremony folder.
type Options struct {
	// Dir is the folder (absolute).
	Dir string
	// PublicBaseURL is the deployment's public base URL: the issuing CA
	// certificates name the root's certificate and CRL under it.
	PublicBaseURL string
	// RootKey is the root key's pkcs11: URI and RootKeyLabel its label on
	// the offline token.
	RootKey, RootKeyLabel string
	// OpenToken opens the offline token when an act needs it.
	OpenToken func(ctx context.Context) (Token, error)
	// Actor is who acts (the operator), as the log records it.
	Actor string
}

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
	// Adopted says the root was created elsewhere and adopted
	// (actRootAdopt), its key copied from the deployment's token.
	Adopted bool `json:"adopted,omitempty"`
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

// state is what the log says the root did.
type state struct {
	root    *rootCreated
	issued  map[string]caSigned  // by serial (lower-case hex)
	revoked map[string]caRevoked // by serial
	// lastCRL is the number of the last CRL signed (nil before the first).
	lastCRL *big.Int
	// listedIn is, by serial, the first CRL the log records after the
	// revocation (none: an interrupted ca crl --revoke recorded the
	// revocation but not the CRL listing it).
	listedIn map[string]*big.Int
}

// inUse maps the SPKI hash of every key the root certified as an issuing
// CA to who holds it and where the ceremony folder dir keeps its
// certificate (an --out lost to a failure is copied from there), for
// ca.CertifyIssuingCA.
func (s *state) inUse(dir string) map[[32]byte]string {
	out := map[[32]byte]string{}
	for _, c := range s.issued {
		var h [32]byte
		if b, err := hex.DecodeString(c.SPKISHA256); err == nil && len(b) == 32 {
			copy(h[:], b)
			out[h] = fmt.Sprintf("issuing CA %s, certified with serial %s; its certificate is in %s", c.Name, c.Serial,
				filepath.Join(dir, "issued", issuedName(c.Name, c.Serial)))
		}
	}
	return out
}

// LogError is a ceremony log that does not verify.
type LogError struct {
	// Path is the log; Seq the first bad entry; Detail what is wrong.
	Path   string
	Seq    int64
	Detail string
}

// Error names the log, the first bad entry and what is wrong with it.
func (e *LogError) Error() string {
	return fmt.Sprintf("the ceremony log %s is broken at entry %d: %s", e.Path, e.Seq, e.Detail)
}

// verifyLog walks the log: a broken chain or an unreadable line is a
// *LogError naming the first bad entry.
func verifyLog(ctx context.Context, st *audit.FileStore) (audit.Report, error) {
	rep, err := audit.Verify(ctx, st)
	var le *audit.LineError
	switch {
	case errors.As(err, &le):
		return rep, &LogError{Path: st.Path(), Seq: le.Line, Detail: le.Err.Error() + " (the line is not a record)"}
	case err != nil:
		return rep, err
	case !rep.OK():
		return rep, &LogError{Path: st.Path(), Seq: rep.Break.Seq, Detail: fmt.Sprintf("%s (%s)", rep.Break.Detail, rep.Break.Kind)}
	}
	return rep, nil
}

// Folder is an open ceremony folder whose log verified.
type Folder struct {
	o     Options
	log   *audit.Log
	state *state
}

// Open opens the ceremony folder o.Dir: its log, verified, and the state
// the log records.
func Open(ctx context.Context, o Options) (*Folder, error) {
	st := audit.NewFileStore(filepath.Join(o.Dir, LogFile))
	if _, err := verifyLog(ctx, st); err != nil {
		var le *LogError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%w: nothing was done; find out what happened (thiqa audit verify --ceremony %s) before going on", err, o.Dir)
		}
		return nil, err
	}
	s, err := replay(ctx, st)
	if err != nil {
		return nil, err
	}
	return &Folder{o: o, state: s, log: audit.New(st, slog.New(slog.DiscardHandler), nil, audit.Options{})}, nil
}

// Close stops the log writer.
func (f *Folder) Close() { f.log.Close() }

// path returns a file of the ceremony folder.
func (f *Folder) path(name string) string { return filepath.Join(f.o.Dir, name) }

// record appends one entry to the ceremony log, takes it into the state
// and returns its record.
func (f *Folder) record(ctx context.Context, action, object string, details any) (audit.Record, error) {
	r, err := f.log.Append(ctx, audit.Entry{Actor: f.o.Actor, Action: action, Object: object, Outcome: audit.OutcomeSuccess, Details: details})
	if err != nil {
		return audit.Record{}, fmt.Errorf("writing the ceremony log: %w", err)
	}
	return r, f.state.apply(r)
}

// printRecord tells the operator which log entry vouches for what was done:
// the ceremony script notes its seq and hash.
func printRecord(w io.Writer, r audit.Record) {
	fmt.Fprintf(w, "  ceremony log  entry %d, hash %s\n", r.Seq, hex.EncodeToString(r.Hash))
}

// replay reads the state from a verified log.
func replay(ctx context.Context, st *audit.FileStore) (*state, error) {
	s := &state{issued: map[string]caSigned{}, revoked: map[string]caRevoked{}, listedIn: map[string]*big.Int{}}
	return s, st.AuditRecords(ctx, 1, s.apply)
}

// apply takes one record of the log into the state.
func (s *state) apply(r audit.Record) error {
	var err error
	switch r.Action {
	case actRootCreate:
		var d rootCreated
		if err = json.Unmarshal(r.Details, &d); err == nil {
			s.root = &d
		}
	case actRootAdopt:
		var d rootAdopted
		if err = json.Unmarshal(r.Details, &d); err == nil {
			err = s.applyAdopted(d)
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
			for serial := range s.revoked {
				if s.listedIn[serial] == nil {
					s.listedIn[serial] = n
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("ceremony log entry %d (%s): %w", r.Seq, r.Action, err)
	}
	return nil
}

// root returns the root certificate and its key on the offline token,
// checking that they match and that the log recorded this root.
func (f *Folder) root(ctx context.Context, tok Token) (*x509.Certificate, Key, error) {
	if f.state.root == nil {
		return nil, nil, fmt.Errorf("the ceremony log records no root: create it with `thiqa ca root create --ceremony %s`", f.o.Dir)
	}
	raw, err := os.ReadFile(f.path(RootFile))
	if err != nil {
		return nil, nil, fmt.Errorf("root certificate: %w", err)
	}
	cert, err := pemcert.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.path(RootFile), err)
	}
	if sha256Hex(cert.Raw) != f.state.root.CertSHA256 {
		return nil, nil, fmt.Errorf("%s is not the root the ceremony log records (SHA-256 %s)", f.path(RootFile), f.state.root.CertSHA256)
	}
	key, err := tok.FindKey(ctx, f.o.RootKeyLabel)
	if err != nil {
		return nil, nil, fmt.Errorf("the root key %s on the offline token: %w", f.o.RootKey, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("the key %s on the offline token is not the key of %s", key.URI(), f.path(RootFile))
	}
	return cert, key, nil
}

// withRoot opens the offline token, finds the root and runs fn with it.
func (f *Folder) withRoot(ctx context.Context, fn func(root *x509.Certificate, key Key) error) error {
	tok, err := f.o.OpenToken(ctx)
	if err != nil {
		return err
	}
	defer tok.Close()
	root, key, err := f.root(ctx, tok)
	if err != nil {
		return err
	}
	return fn(root, key)
}

// keep writes a copy of something the root signed into the ceremony folder
// (issued/, crls/), never replacing a file.
func (f *Folder) keep(sub, name string, data []byte) (string, error) {
	dir := f.path(sub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	p := filepath.Join(dir, name)
	if err := atomicfile.WriteNew(p, data, 0o600); err != nil {
		return "", fmt.Errorf("keeping a copy in %s: %w", p, err)
	}
	return p, nil
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
