package tsl

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// mapFetcher serves lists from memory and counts the fetches.
type mapFetcher struct {
	mu    sync.Mutex
	lists map[string][]byte
	count map[string]int
}

func (f *mapFetcher) Fetch(_ context.Context, url string, _ int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count[url]++
	if raw, ok := f.lists[url]; ok {
		return raw, nil
	}
	return nil, ErrUnreachable
}

// TestLoadLOTL follows the corpus LOTL to Ireland's and Slovakia's lists
// (served in place of the URLs it names), verifies each with the signers the
// LOTL gives, skips the lists it cannot reach, never follows the national
// lists' pointers back to the LOTL, and uses its cache when offline.
func TestLoadLOTL(t *testing.T) {
	signers, err := parsePEM(corpusTSL(t, "eu-lotl-signer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2019, 10, 1, 0, 0, 0, 0, time.UTC)
	lotlFile := filepath.Join(t.TempDir(), "lotl.xml")
	if err := os.WriteFile(lotlFile, corpusTSL(t, "eu-lotl.xml"), 0o600); err != nil {
		t.Fatal(err)
	}
	lotl := Check(corpusTSL(t, "eu-lotl.xml"), CheckOptions{Signers: signers, At: at}).List
	f := &mapFetcher{lists: map[string][]byte{}, count: map[string]int{}}
	for _, p := range lotl.Pointers {
		switch {
		case p.Territory == "IE" && p.MimeType == MimeTypeTSL:
			f.lists[p.Location] = corpusTSL(t, "ie-tl.xml")
		case p.Territory == "SK" && p.MimeType == MimeTypeTSL:
			f.lists[p.Location] = corpusTSL(t, "sk-tl.xml")
		}
	}
	cache := t.TempDir()
	l := &Loader{Fetcher: f, At: at, CacheDir: cache, Timeout: 5 * time.Second}
	trust, rep, err := l.Load(context.Background(), []Source{{Location: lotlFile, Signers: signers}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lists) != 3 || trust.ServiceCount() != 4+116 {
		t.Fatalf("%d lists, %d services; refused %v", len(rep.Lists), trust.ServiceCount(), rep.Refused)
	}
	if len(rep.Refused) < 20 {
		t.Fatalf("only %d unreachable lists reported: %v", len(rep.Refused), rep.Refused)
	}
	for _, e := range rep.Refused {
		if !errors.Is(e, ErrUnreachable) {
			t.Fatalf("refused for another reason than unreachable: %v", e)
		}
	}
	for u, n := range f.count {
		if n != 1 {
			t.Fatalf("%s fetched %d times", u, n)
		}
	}
	// Only the territories asked for.
	f2 := &mapFetcher{lists: f.lists, count: map[string]int{}}
	l2 := &Loader{Fetcher: f2, At: at}
	if _, rep, err := l2.Load(context.Background(), []Source{{Location: lotlFile, Signers: signers, Territories: []string{"SK"}}}); err != nil ||
		len(rep.Lists) != 2 || len(f2.count) != 1 {
		t.Fatalf("territory SK: %v, %d lists, %d fetches", err, len(rep.Lists), len(f2.count))
	}
	// Offline: files and the cache only, never the fetcher.
	f3 := &mapFetcher{lists: map[string][]byte{}, count: map[string]int{}}
	l3 := &Loader{Fetcher: f3, At: at, CacheDir: cache, Offline: true}
	if _, rep, err := l3.Load(context.Background(), []Source{{Location: lotlFile, Signers: signers}}); err != nil || len(rep.Lists) != 3 || len(f3.count) != 0 {
		t.Fatalf("offline from the cache: %v, %d lists, %d fetches", err, len(rep.Lists), len(f3.count))
	}
	// A pointer loop: the LOTL fetched from its own URL, Ireland's list
	// pointing back at it. Each location is read once, the loop not followed.
	const lotlURL = "https://ec.europa.eu/tools/lotl/eu-lotl.xml"
	f4 := &mapFetcher{lists: map[string][]byte{lotlURL: corpusTSL(t, "eu-lotl.xml")}, count: map[string]int{}}
	for u, raw := range f.lists {
		f4.lists[u] = raw
	}
	l4 := &Loader{Fetcher: f4, At: at, Timeout: 5 * time.Second}
	if _, rep, err := l4.Load(context.Background(), []Source{{Location: lotlURL, Signers: signers}, {Location: lotlURL, Signers: signers}}); err != nil || len(rep.Lists) != 3 {
		t.Fatalf("LOTL by URL: %v, %d lists", err, len(rep.Lists))
	}
	for u, n := range f4.count {
		if n != 1 {
			t.Fatalf("loop: %s fetched %d times", u, n)
		}
	}
	// A configured list that fails is an error, with its verdict.
	var le *ListError
	if _, _, err := l.Load(context.Background(), []Source{{Location: lotlFile}}); !errors.As(err, &le) || le.Result.Passed() {
		t.Fatalf("LOTL without signers: %v", err)
	}
}

// TestLoadUnreachableIsBounded: a server that never answers costs the
// timeout, not a hang; offline without a cache is ErrOffline.
func TestLoadUnreachableIsBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	start := time.Now()
	_, _, err := (&Loader{Timeout: 300 * time.Millisecond}).Load(context.Background(), []Source{{Location: srv.URL + "/tsl.xml"}})
	if !errors.Is(err, ErrUnreachable) || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging server: %v after %s", err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := (&Loader{Timeout: time.Minute}).Load(ctx, []Source{{Location: srv.URL + "/tsl.xml"}}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("cancelled context: %v", err)
	}
	if _, _, err := (&Loader{Offline: true}).Load(context.Background(), []Source{{Location: srv.URL + "/tsl.xml"}}); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline: %v", err)
	}
	if _, _, err := (&Loader{}).Load(context.Background(), []Source{{Location: filepath.Join(t.TempDir(), "missing.xml")}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
