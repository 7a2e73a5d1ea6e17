package audit

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
)

// VerifyAll checks the whole audit trail of a deployment, as `thiqa audit
// verify` reports it on out: the chain in st (Verify), then, when the
// checkpoint file exists, the checkpoints in it signed by the key whose
// PEM public key is in publicKeyFile (VerifyCheckpoints). It returns
// false when the chain or a checkpoint is broken (out says where); an
// error means the check could not run.
//
// When the oldest records were archived, it says so in one line, and the
// walk starts at the first live record (see Verify); checkpoints at
// archived seqs are checked for their signature and order, and against
// the hash an archived range records when they are at its end; each
// range's own checkpoint (ArchiveRow.Checkpoint) must verify with the key
// and name its last record and hash, and a range without one must end at
// a checkpoint of the file.
//
// The chain is read once: the checkpoints are checked against the records
// the chain walk reads, alongside it (verifyTogether), so the time grows
// with one walk of the log, not two.
func VerifyAll(ctx context.Context, st Store, checkpointFile, publicKeyFile string, out io.Writer) (bool, error) {
	ok, _, err := verifyAll(ctx, st, checkpointFile, publicKeyFile, false, out)
	return ok, err
}

// verifyAll is VerifyAll; it also returns the archived ranges the
// verification held the live log to. withFiles says that the archive
// files are checked after it (VerifyAllWithArchives).
func verifyAll(ctx context.Context, st Store, checkpointFile, publicKeyFile string, withFiles bool, out io.Writer) (bool, ArchivedPrefix, error) {
	// The checkpoint file and key are opened first, but a problem with
	// them is reported only once the chain is found intact, as before.
	f, ferr := os.Open(checkpointFile)
	noFile := errors.Is(ferr, os.ErrNotExist)
	var pub crypto.PublicKey
	var kerr error
	if ferr == nil {
		defer f.Close()
		pub, kerr = ReadCheckpointKey(publicKeyFile)
	}
	var ls liveStart
	var arch ArchivedPrefix
	var brk *Break
	var rep Report
	var crep CheckpointReport
	var err, cerr error
	for attempt := 1; ; attempt++ {
		if ls, arch, brk, err = archiveStart(ctx, st); err != nil {
			return false, arch, fmt.Errorf("walking the audit chain: %w", err)
		}
		if brk == nil {
			if ferr == nil && kerr == nil {
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return false, arch, fmt.Errorf("audit checkpoints: %w", err)
				}
				asOf := time.Now()
				rep, crep, err, cerr = verifyTogether(ctx, st, ls, func(ctx context.Context, cr ChainReader) (CheckpointReport, error) {
					// The walk checked each record before handing it over.
					return verifyCheckpointsAsOf(ctx, cr, f, pub, asOf, false, arch)
				})
			} else {
				rep, err = verifyFrom(ctx, st, ls)
			}
			if err != nil {
				return false, arch, fmt.Errorf("walking the audit chain: %w", err)
			}
		}
		// An archive that started or moved on while this ran deletes the
		// records the walk began at: look again, once.
		broken := brk != nil || !rep.OK() || (cerr == nil && !crep.OK())
		if !broken || attempt == 2 {
			break
		}
		if moved, err := archivesMoved(ctx, st, arch); err != nil || !moved {
			break
		}
	}
	if d := arch.describe(withFiles); d != "" {
		fmt.Fprintf(out, "audit verify: %s; the first live record must chain from record %d's hash as audit_archives records it\n", d, arch.Below-1)
	}
	if !withFiles {
		// Records lost with their archive file pass here (the database
		// cannot tell): said on a line of their own, each time.
		for _, r := range arch.Rows {
			if l := r.lost(); l != "" {
				fmt.Fprintf(out, "audit verify: WARNING: %s: no file vouches for them (thiqa audit archive --file-lost); verify --archive reports them as a break\n", l)
			}
		}
	}
	if brk != nil {
		fmt.Fprintf(out, "audit chain BROKEN: %s\n", Report{Break: brk})
		return false, arch, nil
	}
	if !rep.OK() {
		fmt.Fprintf(out, "audit chain BROKEN: %s\n", rep)
		return false, arch, nil
	}
	// The chain is consistent; now hold it against the checkpoints signed
	// outside the database.
	if noFile {
		fmt.Fprintf(out, "audit chain OK: %d records, head seq %d, hash %s\n", rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
		fmt.Fprintf(out, "audit checkpoints: none (%s does not exist): the chain is not anchored outside the database\n", checkpointFile)
		return true, arch, nil
	}
	if ferr != nil {
		return false, arch, fmt.Errorf("audit checkpoints: %w", ferr)
	}
	if kerr != nil {
		return false, arch, kerr
	}
	if cerr != nil {
		return false, arch, fmt.Errorf("checking the audit checkpoints in %s: %w", checkpointFile, cerr)
	}
	if !crep.OK() {
		fmt.Fprintf(out, "audit chain BROKEN: %s (%s)\n", crep, checkpointFile)
		return false, arch, nil
	}
	// Each archived range's end must be vouched for by a signature: the
	// checkpoint its row keeps, or (rows from before it was kept) one in
	// the checkpoint file.
	for _, r := range arch.Rows {
		if p := r.endProblem(pub, crep.archiveEnds); p != "" {
			fmt.Fprintf(out, "audit chain BROKEN: %s\n", p)
			return false, arch, nil
		}
	}
	fmt.Fprintf(out, "audit chain OK: %d records, head seq %d, hash %s\n", rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
	if crep.IncompleteLastLine {
		fmt.Fprintf(out, "audit checkpoints: WARNING: line %d of %s is incomplete (a crash while writing?) and was ignored\n", crep.IncompleteLine, checkpointFile)
	}
	fmt.Fprintf(out, "audit checkpoints OK: %s in %s\n", crep, checkpointFile)
	if n := len(arch.Rows); crep.ArchiveEnds < n {
		fmt.Fprintf(out, "audit checkpoints: %d of the %d archived ranges end at a record no checkpoint in %s names (another node's file, or rotated): the signed checkpoint each keeps vouches for it\n",
			n-crep.ArchiveEnds, n, checkpointFile)
	}
	if crep.StoppedAt > 0 {
		fmt.Fprintf(out, "audit checkpoints: line %d on was written while this verification ran; left for the next run\n", crep.StoppedAt)
	}
	if crep.Last != nil && rep.Head.Seq > crep.Last.Seq {
		fmt.Fprintf(out, "audit checkpoints: records %d to %d are newer than the last checkpoint and rest on the chain alone\n", crep.Last.Seq+1, rep.Head.Seq)
	}
	return true, arch, nil
}

// PublishCheckpointKey writes pub as PEM (PUBLIC KEY) to path when the
// file does not exist, so that a verifier needs no token; an existing file
// must hold the same key.
func PublishCheckpointKey(path string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("audit checkpoint key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the checkpoint folder: %w", err)
	}
	body := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	err = atomicfile.WriteNew(path, body, 0o644)
	if err == nil || !errors.Is(err, os.ErrExist) {
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	have, err := ReadCheckpointKey(path)
	if err != nil {
		return err
	}
	if k, ok := have.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return fmt.Errorf("%s holds another public key than the audit checkpoint key on the token", path)
	}
	return nil
}

// ReadCheckpointKey reads the checkpoint public key (PEM, PUBLIC KEY).
func ReadCheckpointKey(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint public key: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("audit checkpoint public key %s: no PEM PUBLIC KEY block", path)
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint public key %s: %w", path, err)
	}
	return pub, nil
}
