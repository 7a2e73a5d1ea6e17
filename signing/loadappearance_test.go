package signing

import (
	"log/slog"
	"path/filepath"
	"testing"
)

func TestLoadAppearance(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	missing := filepath.Join(t.TempDir(), "none.ttf")
	if _, err := LoadAppearance([]string{missing}, nil, "", "", logger); err == nil {
		t.Error("a configured font that cannot be read was accepted")
	}
	if _, err := LoadAppearance(nil, nil, "Nowhere/Nothing", "", logger); err == nil {
		t.Error("an unknown time zone was accepted")
	}
	ac, err := LoadAppearance(nil, []string{missing}, "Asia/Muscat", "https://thiqa.example/verify", logger)
	if err != nil || len(ac.Fonts) != 0 || ac.Location.String() != "Asia/Muscat" || ac.VerifyURL != "https://thiqa.example/verify" {
		t.Errorf("default fonts not installed: %+v, %v (want no fonts, no error)", ac, err)
	}
}
