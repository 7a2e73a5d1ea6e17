package audit

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// ErrArchivesMoved is returned (wrapped) by VerifyAllWithArchives when an
// archive ran while it did: the archived ranges it checked the files
// against are no longer the database's. Run it again.
var ErrArchivesMoved = errors.New("audit: the archived ranges changed during the verification")

// matchedFile is one archive file read by VerifyAllWithArchives.
type matchedFile struct {
	path string
	sum  ArchiveSummary
	// liveHash is the hash the file holds for the first live record's
	// seq (nil when the file does not hold it).
	liveHash []byte
}

// VerifyAllWithArchives is VerifyAll, and then the archive files at paths
// held against the archived ranges, as `thiqa audit verify --data DIR
// --archive F…` reports it on out: each file is verified completely
// (ReadArchive, with the checkpoint key in publicKeyFile), and the files
// must be exactly the ranges audit_archives records: each range matched by
// one file with its seqs, its last record's hash, its SHA-256 and its
// checkpoint, no file left over, the files chaining to each other and the
// first live record to the last file (or, when a range is still being
// deleted, holding that record with the hash it has in the files). So a
// range recorded, with a real checkpoint, by someone with write access to
// the database and no file made, is a break once the files are given. The
// files may be given in any order. It returns false when the live log or
// a file is broken or the files do not match the ranges; an error when
// something could not be read.
func VerifyAllWithArchives(ctx context.Context, st Store, checkpointFile, publicKeyFile string, paths []string, out io.Writer) (bool, error) {
	ok, arch, err := verifyAll(ctx, st, checkpointFile, publicKeyFile, true, out)
	if err != nil || !ok {
		return ok, err
	}
	pub, err := ReadCheckpointKey(publicKeyFile)
	if err != nil {
		return false, err
	}
	first, err := firstLiveRecord(ctx, st)
	if err != nil {
		return false, err
	}
	files := make([]matchedFile, 0, len(paths))
	for _, path := range paths {
		mf, err := readMatchedFile(path, pub, first)
		if errors.Is(err, ErrArchiveCorrupt) {
			fmt.Fprintf(out, "audit archive BROKEN: %s: %v\n", path, err)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		files = append(files, mf)
	}
	files = dropRepeated(files, out)
	sort.SliceStable(files, func(i, j int) bool { return files[i].sum.Header.FirstSeq < files[j].sum.Header.FirstSeq })
	p, lost := matchArchives(arch, files, first)
	if p != "" || len(lost) > 0 {
		if moved, err := archivesMoved(ctx, st, arch); err != nil {
			return false, err
		} else if moved {
			return false, fmt.Errorf("%w (an archive ran): run the verification again", ErrArchivesMoved)
		}
	}
	if p != "" {
		fmt.Fprintf(out, "audit archive BROKEN: %s\n", p)
	} else {
		for _, f := range files {
			h := f.sum.Header
			fmt.Fprintf(out, "audit archive OK: %s: records %d to %d (%d), SHA-256 %s, %d bytes: the archived range %d-%d\n",
				f.path, h.FirstSeq, h.LastSeq, f.sum.Records, hex.EncodeToString(f.sum.SHA256), f.sum.Bytes, h.FirstSeq, h.LastSeq)
			for _, r := range arch.Rows {
				if r.ReplacedFrom > r.FirstSeq && r.FirstSeq == h.FirstSeq && bytes.Equal(r.FileSHA256, f.sum.SHA256) {
					fmt.Fprintf(out, "audit archive: %s is the file of the archived range %d-%d recorded lost (thiqa audit archive --file-lost), found again: it vouches for records %d to %d again\n",
						f.path, r.FirstSeq, r.LastSeq, r.FirstSeq, r.ReplacedFrom-1)
				}
			}
		}
	}
	// Every range whose file was lost is named, each time, after the
	// other checks: a loss already recorded with the auditor must not
	// hide a range recorded since without its file, nor another loss.
	for _, l := range lost {
		fmt.Fprintf(out, "audit archive BROKEN: %s\n", l)
	}
	if p != "" || len(lost) > 0 {
		return false, nil
	}
	if len(files) > 0 {
		fmt.Fprintf(out, "audit archives OK: the %d files given are the %d archived ranges, records 1 to %d, chained to each other and to the live log\n",
			len(files), len(arch.Rows), arch.Below-1)
	}
	return true, nil
}

// dropRepeated returns files without those given again (the same SHA-256
// as a file before them: the same path twice, or a copy), saying so on
// out: a file given twice is read twice but matched once.
func dropRepeated(files []matchedFile, out io.Writer) []matchedFile {
	seen := make(map[string]string, len(files))
	kept := files[:0]
	for _, f := range files {
		sum := string(f.sum.SHA256)
		if first, ok := seen[sum]; ok {
			fmt.Fprintf(out, "audit archive: %s is %s given again (the same SHA-256): matched once\n", f.path, first)
			continue
		}
		seen[sum] = f.path
		kept = append(kept, f)
	}
	return kept
}

// firstLiveRecord returns the first record of the live log (zero when it
// holds none).
func firstLiveRecord(ctx context.Context, st ChainReader) (Record, error) {
	var first Record
	err := st.AuditRecords(ctx, 1, func(r Record) error {
		first = r
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return first, fmt.Errorf("audit: reading the first live record: %w", err)
	}
	return first, nil
}

// readMatchedFile verifies the archive file at path (ReadArchive with
// pub), noting the hash it holds for record first.Seq.
func readMatchedFile(path string, pub crypto.PublicKey, first Record) (matchedFile, error) {
	mf := matchedFile{path: path}
	f, err := os.Open(path)
	if err != nil {
		return mf, fmt.Errorf("audit: opening the archive: %w", err)
	}
	defer f.Close()
	mf.sum, err = ReadArchive(f, pub, func(r Record) error {
		if first.Seq != 0 && r.Seq == first.Seq {
			mf.liveHash = r.Hash
		}
		return nil
	})
	return mf, err
}

// matchArchives says why files (sorted by first seq) are not exactly the
// archived ranges of arch, chained to each other and to the first live
// record first, or "" when they are; and, apart from that, which records
// every range whose file was lost took with it (RecoverLostArchive): no
// file can vouch for those, unless the lost file turned up again and is
// given (foundFile): it then vouches for them as it did before it was
// lost, and the range is whole again, with no database write.
func matchArchives(arch ArchivedPrefix, files []matchedFile, first Record) (problem string, lost []string) {
	found := make(map[int64]bool)
	problem = matchFiles(arch, files, first, found)
	for _, r := range arch.Rows {
		if l := r.lost(); l != "" && !found[r.FirstSeq] {
			lost = append(lost, fmt.Sprintf("%s (the range %d-%d was finished without it, thiqa audit archive --file-lost): nothing vouches for them any more", l, r.FirstSeq, r.LastSeq))
		}
	}
	return problem, lost
}

// foundFile says whether f is the file of the range r that was recorded
// lost (--file-lost) and turned up again: the file the row still names
// (its SHA-256, its seqs, its last hash and the checkpoint the row keeps)
// chaining from prev, the last hash of the range before (f itself was
// verified completely against its checkpoint). Such a file holds every
// record of r, the lost ones too.
func foundFile(r ArchiveRow, f matchedFile, prev []byte) bool {
	h := f.sum.Header
	return r.ReplacedFrom != 0 && h.FirstSeq == r.FirstSeq && h.LastSeq == r.LastSeq &&
		bytes.Equal(f.sum.SHA256, r.FileSHA256) && bytes.Equal(f.sum.LastHash, r.LastHash) &&
		(r.Checkpoint == "" || r.Checkpoint == h.CheckpointLine) && bytes.Equal(h.PrevHash, prev)
}

// matchFiles is matchArchives but for the lost records; it notes in found
// the first seq of each range whose lost file was given (foundFile).
func matchFiles(arch ArchivedPrefix, files []matchedFile, first Record, found map[int64]bool) string {
	// A range whose file was lost is held by its replacement, from the
	// record it replaces the lost file from; a range whose every record
	// was lost with its file by none. Each
	// file chains from the range before its own (whose last hash a file
	// matched to it holds), unless records before it were lost.
	byFirst := make(map[int64]ArchiveRow, len(arch.Rows))
	replaced := make(map[int64]ArchiveRow)
	prevHash := make(map[int64][]byte, len(arch.Rows))
	prev := GenesisHash()
	for _, r := range arch.Rows {
		if r.hasFile() {
			byFirst[r.fileFirst()] = r
		}
		if r.ReplacedFrom != 0 {
			replaced[r.FirstSeq] = r
		}
		prevHash[r.FirstSeq] = prev
		prev = r.LastHash
	}
	matched := make(map[int64]bool, len(files))
	for i, f := range files {
		h := f.sum.Header
		if r, ok := replaced[h.FirstSeq]; ok && !found[r.FirstSeq] && foundFile(r, f, prevHash[r.FirstSeq]) {
			found[r.FirstSeq] = true
			continue
		}
		r, ok := byFirst[h.FirstSeq]
		switch {
		case matched[h.FirstSeq]:
			return fmt.Sprintf("%s holds records %d to %d, as %s does: one file holds each archived range", f.path, h.FirstSeq, h.LastSeq, files[i-1].path)
		case !ok:
			return fmt.Sprintf("%s holds records %d to %d, which no archived range recorded in the database starts with", f.path, h.FirstSeq, h.LastSeq)
		case r.LastSeq != h.LastSeq:
			return fmt.Sprintf("%s holds records %d to %d, the archived range %d-%d (%s) records %d to %d", f.path, h.FirstSeq, h.LastSeq,
				r.FirstSeq, r.LastSeq, r.fileName(), r.fileFirst(), r.LastSeq)
		case !bytes.Equal(r.fileSHA256(), f.sum.SHA256):
			return fmt.Sprintf("%s (SHA-256 %s) is not the file the archived range %d-%d records (%s, SHA-256 %s)", f.path,
				hex.EncodeToString(f.sum.SHA256), r.FirstSeq, r.LastSeq, r.fileName(), hex.EncodeToString(r.fileSHA256()))
		case !bytes.Equal(r.LastHash, f.sum.LastHash):
			return fmt.Sprintf("%s ends at record %d with another hash than the archived range %d-%d (%s) records", f.path, h.LastSeq, r.FirstSeq, r.LastSeq, r.File)
		case r.Checkpoint != "" && r.Checkpoint != h.CheckpointLine:
			return fmt.Sprintf("%s ends at another checkpoint than the one the archived range %d-%d (%s) keeps", f.path, r.FirstSeq, r.LastSeq, r.File)
		case r.fileFirst() == r.FirstSeq && !bytes.Equal(h.PrevHash, prevHash[r.FirstSeq]):
			return fmt.Sprintf("%s (records %d to %d) does not chain from the archived range before it, which ends at record %d", f.path, h.FirstSeq, h.LastSeq,
				r.FirstSeq-1)
		}
		matched[h.FirstSeq] = true
	}
	for _, r := range arch.Rows {
		if r.hasFile() && !matched[r.fileFirst()] && !found[r.FirstSeq] {
			return fmt.Sprintf("no file given holds the archived range %d-%d (%s, SHA-256 %s): records %d to %d are not in the live log and no archive file vouches for them",
				r.FirstSeq, r.LastSeq, r.fileName(), hex.EncodeToString(r.fileSHA256()), r.fileFirst(), r.LastSeq)
		}
	}
	// The live log chains from the last range's hash (VerifyAll checked
	// it); a range still being deleted must hold its first record.
	if len(files) == 0 || first.Seq == 0 || !arch.Rows[len(arch.Rows)-1].hasFile() {
		return ""
	}
	last := files[len(files)-1]
	switch end := last.sum.Header.LastSeq; {
	case first.Seq == end+1 && !bytes.Equal(first.PrevHash, last.sum.LastHash):
		return fmt.Sprintf("the first live record (%d) does not chain from the last record of %s", first.Seq, last.path)
	case first.Seq <= end && !bytes.Equal(first.Hash, last.liveHash):
		return fmt.Sprintf("the first live record (%d) is not the one %s holds", first.Seq, last.path)
	case first.Seq > end+1:
		return fmt.Sprintf("the live log starts at record %d, the last file given ends at record %d", first.Seq, end)
	}
	return ""
}

// fileFirst is the first record of the file that holds r: its
// replacement's when its file was lost.
func (r ArchiveRow) fileFirst() int64 {
	if r.ReplacedFrom != 0 {
		return r.ReplacedFrom
	}
	return r.FirstSeq
}

// hasFile reports whether a file holds records of r: not when every
// record of it was lost with its file.
func (r ArchiveRow) hasFile() bool {
	return r.fileFirst() <= r.LastSeq
}

// fileName is the name of the file that holds r.
func (r ArchiveRow) fileName() string {
	if r.ReplacedFrom != 0 {
		return r.ReplacementFile
	}
	return r.File
}

// fileSHA256 is the SHA-256 of the file that holds r.
func (r ArchiveRow) fileSHA256() []byte {
	if r.ReplacedFrom != 0 {
		return r.ReplacementSHA256
	}
	return r.FileSHA256
}
