package backup

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testArchive writes a small, valid archive holding files and returns its bytes.
func testArchive(t testing.TB, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	staged := map[string]string{}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		staged[name] = p
	}
	m := &Manifest{Format: Format, Created: time.Unix(1_800_000_000, 0).UTC(), Store: StoreCopy{Driver: "sqlite", Entry: storeSQLite}}
	if err := fillManifestFiles(m, staged); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(m)
	var out bytes.Buffer
	if err := writeArchive(&out, raw, []byte("sig"), m, staged); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestArchiveRoundTripAndDamage(t *testing.T) {
	good := testArchive(t, map[string]string{"data/thiqa.yaml": "listen: x\n", "data/ca/root.pem": "root", storeSQLite: "db"})
	path := filepath.Join(t.TempDir(), "a.tar.gz")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := readArchive(path, t.TempDir())
	if err != nil {
		t.Fatalf("a good archive: %v", err)
	}
	if got, _ := os.ReadFile(a.entryPath("data/ca/root.pem")); string(got) != "root" {
		t.Fatalf("extracted %q", got)
	}
	// Every flipped byte, and every truncation, is refused as corrupt,
	// unless the archive still holds exactly the same content: the gzip
	// header's time and OS bytes, and some bits of a deflate block header,
	// change nothing that is read.
	content := gunzip(t, good)
	for i := 0; i < len(good); i++ {
		for _, bad := range [][]byte{flip(good, i), good[:i]} {
			if len(bad) == len(good) && bytes.Equal(gunzip(t, bad), content) {
				continue
			}
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := readArchive(path, t.TempDir()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("damage at byte %d of %d: %v, want ErrCorrupt", i, len(good), err)
			}
		}
	}
	// An archive without a database copy.
	if err := os.WriteFile(path, testArchive(t, map[string]string{"data/thiqa.yaml": "x"}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readArchive(path, t.TempDir()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("no database: %v", err)
	}
}

// gunzip returns what a gzip stream holds, nil when it is not one.
func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil
	}
	return out
}

// flip returns b with byte i changed.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x5a
	return c
}

func TestSafeEntryName(t *testing.T) {
	for name, want := range map[string]bool{
		"data/thiqa.yaml": true, "data/ca/root.pem": true, storeSQLite: true, storePostgres: true,
		"": false, "/etc/passwd": false, "data/../x": false, "../data/x": false, "data//x": false,
		"data/./x": false, "other/x": false, "data\\x": false, "store/other.db": false, "data/": false,
	} {
		if got := safeEntryName(name); got != want {
			t.Errorf("safeEntryName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestManifestSignature(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"format":"thiqa-backup-v1"}`)
	sig, err := signManifest(k, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !verifyManifest(k.Public(), raw, sig) {
		t.Fatal("a good signature does not verify")
	}
	if verifyManifest(k.Public(), append(bytes.Clone(raw), ' '), sig) {
		t.Fatal("an edited manifest verifies")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if verifyManifest(other.Public(), raw, sig) {
		t.Fatal("another deployment's key verifies")
	}
}

func TestRestoreSerialFloorIsAboveAnyCounter(t *testing.T) {
	// A counter that started at an earlier floor and handed out 10,000
	// numbers a second since is still below a later floor.
	first := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	later := first.Add(24 * time.Hour)
	counter := SerialFloor(first) + int64(later.Sub(first).Seconds())*10_000
	if SerialFloor(later) <= counter {
		t.Fatalf("floor %d not above counter %d", SerialFloor(later), counter)
	}
	if SerialFloor(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) <= 0 {
		t.Fatal("the floor overflows before year 9999")
	}
}

// FuzzReadArchive feeds arbitrary bytes to the archive reader: it must
// refuse them as corrupt (or accept a whole archive), never panic, and
// never write outside its staging folder.
func FuzzReadArchive(f *testing.F) {
	f.Add(testArchive(f, map[string]string{"data/thiqa.yaml": "x", storeSQLite: "db"}))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte("not an archive"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		root := t.TempDir()
		path := filepath.Join(root, "in.tar.gz")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		stage := filepath.Join(root, "stage")
		if err := os.Mkdir(stage, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := readArchive(path, stage)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error not marked corrupt: %v", err)
		}
		entries, _ := os.ReadDir(root)
		if len(entries) != 2 {
			t.Fatalf("readArchive wrote outside its staging folder: %v", entries)
		}
	})
}
