package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A backup archive is a gzip-compressed tar file:
//
//	manifest.json   what the archive holds (Manifest)
//	manifest.sig    ECDSA signature of the manifest by the deployment's
//	                audit checkpoint key (on the token)
//	data/<path>     the data folder's files, relative to it
//	store/thiqa.db  the SQLite database (online backup API), or
//	store/postgres.sql   a pg_dump of the PostgreSQL database
//
// The manifest names every other entry with its size and SHA-256: a
// corrupt, truncated or edited archive is refused before anything is
// written. Its signature is checked with the key on the token the archive
// is restored with: an archive of another deployment, or one whose
// manifest was rewritten, is refused too.

// Format is the manifest's format name; a restore refuses others.
const Format = "thiqa-backup-v1"

// manifestDomain separates the manifest signature from every other use of
// the checkpoint key (audit checkpoints sign "thiqa-audit-checkpoint-v1…").
const manifestDomain = "thiqa-backup-manifest-v1\n"

// Entry names in the archive.
const (
	manifestEntry  = "manifest.json"
	signatureEntry = "manifest.sig"
	dataPrefix     = "data/"
	storeSQLite    = "store/thiqa.db"
	storePostgres  = "store/postgres.sql"
)

// Store drivers, as the manifest names them.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// maxManifestBytes bounds the manifest a restore reads.
const maxManifestBytes = 16 << 20

// ErrCorrupt is returned (wrapped) for an archive that is not a complete,
// unaltered Thiqa backup.
var ErrCorrupt = errors.New("the backup archive is corrupt or not a Thiqa backup")

// ErrOtherDeployment is returned (wrapped) for a backup of another
// deployment than the token's, the configuration's or the database's.
var ErrOtherDeployment = errors.New("the backup belongs to another deployment")

// Manifest describes one backup.
type Manifest struct {
	// Format is Format.
	Format string `json:"format"`
	// Created is when the backup began (UTC).
	Created time.Time `json:"created"`
	// Thiqa is the version, commit and build date of the binary that made it.
	Thiqa Build `json:"thiqa"`
	// Host is the host name of the machine it was made on.
	Host string `json:"host"`
	// Deployment identifies the deployment: its root CA.
	Deployment Deployment `json:"deployment"`
	// Token is the label of the token whose keys the backup needs.
	Token string `json:"token"`
	// Store describes the database copy.
	Store StoreCopy `json:"store"`
	// Audit anchors the database copy: a record the copy must hold.
	Audit AuditAnchor `json:"audit"`
	// Files lists every entry after the manifest and its signature.
	Files []File `json:"files"`
	// Excluded lists what was deliberately left out, with why.
	Excluded []string `json:"excluded"`
}

// Build is the build identity of a thiqa binary.
type Build struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
}

// Deployment identifies a deployment.
type Deployment struct {
	// RootSHA256 is the SHA-256 of the root CA certificate's DER (hex).
	RootSHA256 string `json:"rootSHA256"`
	// RootSubject is the root CA's subject, for people.
	RootSubject string `json:"rootSubject"`
}

// StoreCopy describes the database copy.
type StoreCopy struct {
	// Driver is sqlite or postgres.
	Driver string `json:"driver"`
	// Entry is the archive entry holding it.
	Entry string `json:"entry"`
	// Method says how it was made.
	Method string `json:"method"`
}

// AuditAnchor is the audit head read just before the database copy was
// made: the copy holds this record (and possibly later ones).
type AuditAnchor struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// File is one archive entry.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Mode   uint32 `json:"mode"`
}

// manifestDigest is what the manifest signature covers.
func manifestDigest(raw []byte) []byte {
	h := sha256.New()
	h.Write([]byte(manifestDomain))
	h.Write(raw)
	return h.Sum(nil)
}

// signManifest signs the manifest's bytes with the checkpoint key.
func signManifest(signer crypto.Signer, raw []byte) ([]byte, error) {
	sig, err := signer.Sign(rand.Reader, manifestDigest(raw), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing the backup manifest: %w", err)
	}
	return sig, nil
}

// verifyManifest checks the manifest signature with the checkpoint key's
// public half.
func verifyManifest(pub crypto.PublicKey, raw, sig []byte) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && ecdsa.VerifyASN1(k, manifestDigest(raw), sig)
}

// writeArchive writes manifest m (its Files filled from staged) and the
// staged files to out as a gzip-compressed tar. staged maps each entry
// name to the file holding it.
func writeArchive(out io.Writer, raw, sig []byte, m *Manifest, staged map[string]string) error {
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	now := m.Created
	add := func(name string, mode int64, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, ModTime: now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("archive entry %s: %w", name, err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("archive entry %s: %w", name, err)
		}
		return nil
	}
	if err := add(manifestEntry, 0o600, int64(len(raw)), bytes.NewReader(raw)); err != nil {
		return err
	}
	if err := add(signatureEntry, 0o600, int64(len(sig)), bytes.NewReader(sig)); err != nil {
		return err
	}
	for _, f := range m.Files {
		src, err := os.Open(staged[f.Name])
		if err != nil {
			return fmt.Errorf("archive entry %s: %w", f.Name, err)
		}
		err = add(f.Name, int64(f.Mode), f.Size, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing the archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("closing the archive: %w", err)
	}
	return nil
}

// sha256File returns a file's size and SHA-256 (hex).
func sha256File(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// openedArchive is an archive read and checked by readArchive: its
// manifest (not yet checked against a token) and its entries extracted
// into a staging folder.
type openedArchive struct {
	manifest Manifest
	raw, sig []byte
	// dir holds the extracted entries under their archive names.
	dir string
}

// entryPath returns where an entry was extracted.
func (a *openedArchive) entryPath(name string) string {
	return filepath.Join(a.dir, filepath.FromSlash(name))
}

// corrupt wraps ErrCorrupt with a reason.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// readArchive reads the archive at path, extracting its entries into dir
// (which must exist and be empty), and checks it is whole: the manifest
// first, then exactly the entries it lists, each of its size and SHA-256.
func readArchive(path, dir string) (*openedArchive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the backup: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, corrupt("%s: %v", path, err)
	}
	tr := tar.NewReader(gz)
	a := &openedArchive{dir: dir}
	readSmall := func(want string) ([]byte, error) {
		h, err := tr.Next()
		if err != nil {
			return nil, corrupt("reading %s: %v", want, err)
		}
		if h.Name != want || h.Typeflag != tar.TypeReg || h.Size > maxManifestBytes {
			return nil, corrupt("the archive does not begin with %s (found %q)", want, h.Name)
		}
		raw, err := io.ReadAll(tr)
		if err != nil {
			return nil, corrupt("reading %s: %v", want, err)
		}
		return raw, nil
	}
	if a.raw, err = readSmall(manifestEntry); err != nil {
		return nil, err
	}
	if a.sig, err = readSmall(signatureEntry); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(a.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.manifest); err != nil {
		return nil, corrupt("manifest: %v", err)
	}
	m := &a.manifest
	if m.Format != Format {
		return nil, corrupt("manifest format %q, want %q", m.Format, Format)
	}
	want := map[string]File{}
	for _, e := range m.Files {
		if !safeEntryName(e.Name) {
			return nil, corrupt("manifest names an unsafe entry %q", e.Name)
		}
		if _, dup := want[e.Name]; dup {
			return nil, corrupt("manifest names %q twice", e.Name)
		}
		want[e.Name] = e
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, corrupt("reading the archive: %v", err)
		}
		e, ok := want[h.Name]
		if !ok || seen[h.Name] || h.Typeflag != tar.TypeReg {
			return nil, corrupt("unexpected entry %q", h.Name)
		}
		seen[h.Name] = true
		if err := extractEntry(tr, a.entryPath(h.Name), e); err != nil {
			return nil, err
		}
	}
	// The gzip trailer (CRC-32, length) is checked when the stream is read to its end.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, corrupt("reading the archive's end: %v", err)
	}
	for _, e := range m.Files {
		if !seen[e.Name] {
			return nil, corrupt("entry %s is missing (a truncated archive?)", e.Name)
		}
	}
	if m.Store.Entry != storeSQLite && m.Store.Entry != storePostgres || !seen[m.Store.Entry] {
		return nil, corrupt("no database copy in the archive")
	}
	return a, nil
}

// extractEntry writes one entry to dst and checks its size and SHA-256.
func extractEntry(r io.Reader, dst string, e File) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("extracting %s: %w", e.Name, err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(e.Mode&0o777)|0o600)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", e.Name, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return corrupt("extracting %s: %v", e.Name, err)
	}
	if n != e.Size || hex.EncodeToString(h.Sum(nil)) != e.SHA256 {
		return corrupt("%s does not match the manifest (size %d, want %d; or its SHA-256 differs)", e.Name, n, e.Size)
	}
	return nil
}

// safeEntryName reports whether an archive entry name stays inside the
// staging folder: relative, clean, slash-separated, under data/ or store/.
func safeEntryName(name string) bool {
	if name == "" || strings.Contains(name, "\\") || path.IsAbs(name) || path.Clean(name) != name {
		return false
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return false
	}
	return strings.HasPrefix(name, dataPrefix) || name == storeSQLite || name == storePostgres
}
