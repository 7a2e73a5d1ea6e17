package hsm

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestTokenConfigValidate: module, label, a PIN source and complete
// SoftHSM2 files are required; the problems name the hsm keys.
func TestTokenConfigValidate(t *testing.T) {
	good := TokenConfig{Module: DefaultSoftHSMModule, TokenLabel: "thiqa", PINEnv: "PIN"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	err := TokenConfig{TokenLabel: strings.Repeat("x", 33), PoolSize: -1, SoftHSM: &SoftHSMConfig{Conf: "a"}}.Validate()
	for _, want := range []string{"hsm.module", "hsm.tokenLabel", "hsm: one of pinFile or pinEnv", "hsm.poolSize", "hsm.softhsm"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
	// The pool sizes two channels by it: an absurd size exhausts memory
	// (or panics) when the token is opened.
	huge := good
	huge.PoolSize = 1 << 62
	if err := huge.Validate(); err == nil || !strings.Contains(err.Error(), "hsm.poolSize") {
		t.Errorf("poolSize 1<<62: %v", err)
	}
	huge.PoolSize = MaxPoolSize
	if err := huge.Validate(); err != nil {
		t.Errorf("poolSize %d: %v", MaxPoolSize, err)
	}
	// The call timeout is optional; when set it must make sense.
	for _, d := range []time.Duration{-time.Second, time.Millisecond, MinCallTimeout - 1, MaxCallTimeout + 1, 24 * time.Hour} {
		c := good
		c.CallTimeout = d
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "hsm.callTimeout") {
			t.Errorf("callTimeout %s: %v", d, err)
		}
	}
	for _, d := range []time.Duration{0, MinCallTimeout, 5 * time.Second, MaxCallTimeout} {
		c := good
		c.CallTimeout = d
		if err := c.Validate(); err != nil {
			t.Errorf("callTimeout %s: %v", d, err)
		}
	}
}

// TestTokenConfigSoftHSMFiles: the files are resolved; a user PIN from the
// environment has no file, and a security officer PIN sharing its file
// loses it too.
func TestTokenConfigSoftHSMFiles(t *testing.T) {
	resolve := func(p string) string { return "/data/" + p }
	h := TokenConfig{PINFile: "pin", SoftHSM: &SoftHSMConfig{TokenDir: "tokens", Conf: "softhsm2.conf", SOPINFile: "so-pin"}}
	want := SoftHSMFiles{TokenDir: "/data/tokens", Conf: "/data/softhsm2.conf", SOPINFile: "/data/so-pin", PINFile: "/data/pin"}
	if got := h.SoftHSMFiles(resolve); got != want {
		t.Fatalf("SoftHSMFiles() = %+v, want %+v", got, want)
	}
	h.PINEnv = "PIN"
	want.PINFile = ""
	if got := h.SoftHSMFiles(resolve); got != want {
		t.Fatalf("PIN from the environment: %+v, want %+v", got, want)
	}
	h.SoftHSM.SOPINFile = "pin"
	want.SOPINFile = ""
	if got := h.SoftHSMFiles(resolve); got != want {
		t.Fatalf("shared PIN file, PIN from the environment: %+v, want %+v", got, want)
	}
}

// readTestSecret reads a secret as the command line does (its file's
// content without the line end; env is not used here).
func readTestSecret(file, env string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// folderToken is a configuration managing a SoftHSM token in a fresh
// folder (not yet there), with its resolver and a PIN reader. The module
// keeps the process's SoftHSM configuration: the token itself lands in the
// test environment's token folder, the files in the folder.
func folderToken(t *testing.T) (TokenConfig, func(string) string, func() (string, error)) {
	t.Helper()
	dir := t.TempDir()
	h := TokenConfig{Module: testenv.PKCS11Module(t), TokenLabel: testenv.UniqueLabel("open"), PINFile: "secrets/pin",
		SoftHSM: &SoftHSMConfig{Conf: "softhsm2.conf", TokenDir: "tokens", SOPINFile: "secrets/so-pin"}}
	resolve := func(p string) string { return filepath.Join(dir, p) }
	pin := func() (string, error) { return readTestSecret(resolve(h.PINFile), "") }
	return h, resolve, pin
}

// TestTokenConfigOpenCreates: without Create a missing token is
// ErrTokenNotFound and nothing is written; with Create the folder's files
// and the token are made (logged once), then opened with the
// configuration's pool size and verification and the caller's metrics;
// the next Open finds it.
func TestTokenConfigOpenCreates(t *testing.T) {
	ctx := context.Background()
	h, resolve, pin := folderToken(t)
	h.PoolSize, h.VerifyAfterSign = 3, true

	_, err := h.Open(ctx, OpenOptions{Resolve: resolve, PIN: func() (string, error) { return "1234", nil }})
	if !errors.Is(err, ErrTokenNotFound) || !strings.HasPrefix(err.Error(), `opening token "`+h.TokenLabel+`": `) {
		t.Fatalf("missing token without Create: %v", err)
	}
	if _, err := os.Stat(resolve(h.SoftHSM.Conf)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("without Create the SoftHSM configuration was written: %v", err)
	}

	var logs testenv.SyncBuffer
	reg := newRegistry()
	o := OpenOptions{Resolve: resolve, PIN: pin, Create: true, CreatedBy: "thiqa test", ReadSecret: readTestSecret,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg, KeyMetricLabel: func(string) string { return "key" }}
	tok, err := h.Open(ctx, o)
	if err != nil {
		t.Fatalf("Open with Create: %v", err)
	}
	for _, f := range []string{h.SoftHSM.Conf, h.SoftHSM.TokenDir, h.SoftHSM.SOPINFile, h.PINFile} {
		if _, err := os.Stat(resolve(f)); err != nil {
			t.Errorf("Create did not write %s: %v", f, err)
		}
	}
	if conf, _ := os.ReadFile(resolve(h.SoftHSM.Conf)); !strings.Contains(string(conf), "written by thiqa test\n") {
		t.Errorf("SoftHSM configuration:\n%s", conf)
	}
	if !tok.verify || tok.pool.size() != 3 || tok.keyMet == nil || tok.m == nil {
		t.Errorf("token: verify %v, pool %d, key metric label %v, metrics %v", tok.verify, tok.pool.size(), tok.keyMet != nil, tok.m != nil)
	}
	families, err := reg.Gather()
	if err != nil || !slices.ContainsFunc(families, func(f *dto.MetricFamily) bool { return f.GetName() == "thiqa_hsm_pool_sessions_in_use" }) {
		t.Errorf("metrics on the caller's registry: %d families, %v", len(families), err)
	}
	key, err := tok.GenerateKey(ctx, "k", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, key)
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "created SoftHSM token"); n != 1 || !strings.Contains(logs.String(), "token="+h.TokenLabel) {
		t.Fatalf("log (%d creations):\n%s", n, logs.String())
	}

	o.Registerer = newRegistry()
	again, err := h.Open(ctx, o)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer again.Close()
	if _, err := again.FindKey(ctx, "k"); err != nil {
		t.Fatalf("the key made on the created token: %v", err)
	}
	if n := strings.Count(logs.String(), "created SoftHSM token"); n != 1 {
		t.Fatalf("an existing token was created again:\n%s", logs.String())
	}
}

// TestTokenConfigOpenErrors: the module is checked first; the PIN
// reader's error comes back as it is; a security officer PIN that cannot
// be read and a token that cannot be created say so, with the role
// ("offline") in the token's name.
func TestTokenConfigOpenErrors(t *testing.T) {
	ctx := context.Background()
	h, resolve, pin := folderToken(t)

	bad := h
	bad.Module = filepath.Join(t.TempDir(), "missing.so")
	if _, err := bad.Open(ctx, OpenOptions{Resolve: resolve, PIN: pin}); !errors.Is(err, os.ErrNotExist) ||
		!strings.HasPrefix(err.Error(), "PKCS#11 module "+bad.Module+": ") {
		t.Errorf("missing module: %v", err)
	}
	if err := bad.CheckModule(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckModule: %v", err)
	}

	errPIN := errors.New("no PIN here")
	if _, err := h.Open(ctx, OpenOptions{Resolve: resolve, PIN: func() (string, error) { return "", errPIN }}); err != errPIN {
		t.Errorf("PIN reader failing: %v", err)
	}

	_, err := h.Open(ctx, OpenOptions{Role: "offline", Resolve: resolve, PIN: pin, Create: true, CreatedBy: "thiqa test",
		ReadSecret: func(string, string) (string, error) { return "", os.ErrPermission }})
	if !errors.Is(err, os.ErrPermission) || !strings.HasPrefix(err.Error(), "SoftHSM security officer PIN: ") {
		t.Errorf("unreadable SO PIN: %v", err)
	}

	long := h
	long.TokenLabel = strings.Repeat("x", 33)
	_, err = long.Open(ctx, OpenOptions{Role: "offline", Resolve: resolve, PIN: pin, Create: true, CreatedBy: "thiqa test", ReadSecret: readTestSecret})
	if err == nil || !strings.HasPrefix(err.Error(), `creating the offline SoftHSM token "`+long.TokenLabel+`": `) {
		t.Errorf("token that cannot be created: %v", err)
	}
	_, err = long.Open(ctx, OpenOptions{Role: "offline", Resolve: resolve, PIN: pin})
	if !errors.Is(err, ErrTokenNotFound) || !strings.HasPrefix(err.Error(), `opening the offline token "`+long.TokenLabel+`": `) {
		t.Errorf("missing offline token: %v", err)
	}

	none := h
	none.SoftHSM = nil
	if _, err := none.Open(ctx, OpenOptions{Resolve: resolve, PIN: pin, Create: true}); !errors.Is(err, ErrTokenNotFound) {
		t.Errorf("Create without a managed SoftHSM token: %v", err)
	}
}

// TestTokenConfigSoftHSMHelpers: without a managed SoftHSM token,
// PrepareSoftHSM writes nothing and UseSoftHSMConf leaves SOFTHSM2_CONF
// alone; with one, SOFTHSM2_CONF names its resolved configuration.
func TestTokenConfigSoftHSMHelpers(t *testing.T) {
	t.Setenv("SOFTHSM2_CONF", "/before.conf")
	resolve := func(p string) string { return "/data/" + p }
	none := TokenConfig{PINFile: "pin"}
	if made, err := none.PrepareSoftHSM(resolve, "thiqa test"); made != nil || err != nil {
		t.Errorf("PrepareSoftHSM without SoftHSM: %v, %v", made, err)
	}
	if err := none.UseSoftHSMConf(resolve); err != nil || os.Getenv("SOFTHSM2_CONF") != "/before.conf" {
		t.Errorf("UseSoftHSMConf without SoftHSM: %v, %s", err, os.Getenv("SOFTHSM2_CONF"))
	}
	h := TokenConfig{SoftHSM: &SoftHSMConfig{Conf: "softhsm2.conf"}}
	if err := h.UseSoftHSMConf(resolve); err != nil || os.Getenv("SOFTHSM2_CONF") != "/data/softhsm2.conf" {
		t.Errorf("UseSoftHSMConf: %v, %s", err, os.Getenv("SOFTHSM2_CONF"))
	}
}
