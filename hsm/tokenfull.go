package hsm

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/diskspace"
)

// ErrTokenFull is in the chain of the error of a key generation that the
// token could not store: an HSM whose object memory is used up
// (CKR_DEVICE_MEMORY), or a SoftHSM token whose folder (Config.StorageDir)
// is on a full, over-quota or read-only disk (SoftHSM says only
// CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR or CKR_DEVICE_ERROR; a write in
// the folder then fails, and its error, ENOSPC, EDQUOT or EROFS, is in the
// chain too). Such an error is marked as an outage (outage.Is): nothing
// was created, and the same generation succeeds once an operator frees
// space on the token. A CKR_DEVICE_ERROR of a network HSM is a device
// fault, not a full token: an outage, but no ErrTokenFull, so that the
// operator is not sent to free space on a broken device.
var ErrTokenFull = errors.New("hsm: the token cannot store a new object")

// errCreate marks, inside a generation's call, the error of the call that
// creates the objects (as opposed to the search before it).
var errCreate = errors.New("creating the key pair")

// probeSize is how much the storage probe writes: a key object of SoftHSM
// takes about as much.
const probeSize = 4096

// tokenFull returns ErrTokenFull with err's cause when err, the failure
// of the call that creates a key pair, says the token cannot store it
// (see ErrTokenFull), or nil when it says something else.
func (t *Token) tokenFull(err error) error {
	if isRV(err, pkcs11.CKR_DEVICE_MEMORY) {
		where := "the HSM's object memory"
		if t.storageDir != "" {
			where = "the token folder " + t.storageDir
		}
		return fmt.Errorf("%w (%s)", ErrTokenFull, where)
	}
	// These say nothing of the cause: only the disk of a token folder
	// can tell a full token from a failing one.
	if t.storageDir == "" || !(isRV(err, pkcs11.CKR_FUNCTION_FAILED) || isRV(err, pkcs11.CKR_GENERAL_ERROR) || isRV(err, pkcs11.CKR_DEVICE_ERROR)) {
		return nil
	}
	perr := probeStorage(t.storageDir)
	if perr == nil {
		// The probe fits in a few freed bytes that a key pair's
		// objects (and SoftHSM's rewrite of its token file) outgrow.
		perr = roomForObjects(t.storageDir)
	}
	if !cannotStore(perr) {
		return nil
	}
	return fmt.Errorf("%w (the token folder %s: %w)", ErrTokenFull, t.storageDir, perr)
}

// minObjectRoom is the free space below which a failed generation is put
// down to a full token folder even though the probe fitted: a key pair
// is two object files, and SoftHSM rewrites its token file beside them.
const minObjectRoom = 64 << 10

// roomForObjects returns an error wrapping ENOSPC when the disk of dir has
// less than minObjectRoom free, nil when it has more or cannot tell.
func roomForObjects(dir string) error {
	if free, ok := diskspace.Free(dir); ok && free < minObjectRoom {
		return fmt.Errorf("%d bytes free, a key pair's objects need more: %w", free, syscall.ENOSPC)
	}
	return nil
}

// cannotStore reports whether err, the storage probe's, says the disk
// has no room for a new object or takes no writes: full (ENOSPC), over
// quota (EDQUOT) or read-only (EROFS). An I/O error (EIO) is a failing
// disk, which freeing space does not cure: not a full token.
func cannotStore(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// probeStorage writes probeSize bytes to a new file in dir and removes it:
// its error is the disk's (ENOSPC, EDQUOT, EROFS) when the disk cannot
// hold a new object of the token. SoftHSM looks for tokens only in the
// sub-folders of its folder: a probe file left by a process that stopped
// meanwhile is ignored by it.
func probeStorage(dir string) error {
	f, err := os.CreateTemp(dir, ".thiqa-space-probe-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(make([]byte, probeSize))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	_ = os.Remove(f.Name())
	if werr != nil {
		return werr
	}
	return cerr
}

// removeHalfMade destroys the objects labelled label with CKA_ID id that a
// failed generation may have left (a public half stored, the private one
// not): the id is the generation's own random one, so nothing else is
// touched. Failing here changes nothing of the answer; it is logged.
func (t *Token) removeHalfMade(s *session, label string, id []byte) {
	hs, err := findObjects(t.p, s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}, 0)
	for _, h := range hs {
		if derr := t.p.DestroyObject(s.h, h); derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil {
		t.log.Warn("hsm: could not look for or destroy what a failed key generation left", "key", label, "error", err)
	}
}

// tokenFullAdvice is what the operator must do when a generation fails
// with ErrTokenFull.
const tokenFullAdvice = "hsm: the token cannot store a new key: free space on the token (the disk of its folder for SoftHSM, the HSM's object memory otherwise); until then key creation answers \"try again later\""
