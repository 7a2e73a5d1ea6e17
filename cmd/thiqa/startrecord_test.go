package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
)

// TestStartRecordNamesTheConfiguration: the service.start audit record
// carries the SHA-256 of the thiqa.yaml the server runs with, so that an
// auditor sees from the log alone when the configuration changed between
// two starts (an edit gives another digest).
func TestStartRecordNamesTheConfiguration(t *testing.T) {
	raw, err := config.DefaultText("")
	if err != nil {
		t.Fatal(err)
	}
	digest := func(cfgRaw []byte) string {
		t.Helper()
		cfg, err := config.Parse(cfgRaw, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		e := startRecord(cfg, "127.0.0.1:8080", false)
		if e.Action != "service.start" || e.Actor != "thiqa-serve" || e.Object != "127.0.0.1:8080" {
			t.Fatalf("start record %+v", e)
		}
		d, _ := e.Details.(map[string]any)
		got, _ := d["configSHA256"].(string)
		sum := sha256.Sum256(cfgRaw)
		if want := hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("configSHA256 %q, want %q (the file's SHA-256)", got, want)
		}
		return got
	}
	before := digest(raw)
	edited := bytes.Replace(raw, []byte("listen: 127.0.0.1:8080"), []byte("listen: 127.0.0.1:8081"), 1)
	if bytes.Equal(edited, raw) {
		t.Fatal("the default configuration has no listen: 127.0.0.1:8080 line to edit")
	}
	if digest(edited) == before {
		t.Fatal("an edited configuration has the same digest")
	}
}
