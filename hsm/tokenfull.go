package hsm

import (
	"errors"
	"fmt"
	"os"

	"github.com/miekg/pkcs11"

	"github.com/thiqa/thiqa/internal/outage"
)

// ErrTokenFull is in the chain of the error of a key generation that the
// token could not store: an HSM whose object memory is used up
// (CKR_DEVICE_MEMORY) or that failed storing it (CKR_DEVICE_ERROR), or a
// SoftHSM token whose folder (Config.StorageDir) is on a full, over-quota
// or read-only disk (SoftHSM says only CKR_FUNCTION_FAILED; the disk's own
// error, ENOSPC, EDQUOT or EROFS, is in the chain too). Such an error is
// marked as an outage (outage.Is): nothing was created, and the same
// generation succeeds once an operator frees space on the token.
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
	if isRV(err, pkcs11.CKR_DEVICE_MEMORY) || isRV(err, pkcs11.CKR_DEVICE_ERROR) {
		where := "the HSM's object memory"
		if t.storageDir != "" {
			where = "the token folder " + t.storageDir
		}
		return fmt.Errorf("%w (%s)", ErrTokenFull, where)
	}
	if t.storageDir == "" || !(isRV(err, pkcs11.CKR_FUNCTION_FAILED) || isRV(err, pkcs11.CKR_GENERAL_ERROR)) {
		return nil
	}
	perr := probeStorage(t.storageDir)
	if !outage.IsStorage(perr) {
		return nil
	}
	return fmt.Errorf("%w (the token folder %s: %w)", ErrTokenFull, t.storageDir, perr)
}

// probeStorage writes probeSize bytes to a new file in dir and removes it:
// its error is the disk's (ENOSPC, EDQUOT, EROFS, EIO) when the disk
// cannot hold a new object of the token.
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
