package portal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// The requests of one browser run at once (a double click on "sign", a
// download while the signing page is reloaded): the document is signed
// once, the bytes held stay counted once, and (under the race detector)
// no request reads the document while another changes it.
func TestOneSessionSignsAndDownloadsAtOnce(t *testing.T) {
	var signs atomic.Int64
	api := http.NewServeMux()
	api.HandleFunc("POST /api/v1/sign", func(w http.ResponseWriter, r *http.Request) {
		signs.Add(1)
		time.Sleep(5 * time.Millisecond) // the other requests of the browser meanwhile
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("X-Thiqa-Document-Digest", "abc")
		_, _ = w.Write([]byte("%PDF-1.7 signed"))
	})
	api.HandleFunc("POST /api/v1/verify", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"indication":"TOTAL-PASSED","signatures":[]}`))
	})
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"credentialIDs":[],"credentialInfos":[]}`))
	})
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	p, err := New(Options{API: api, Audit: &memAudit{}, Now: func() time.Time { return now },
		Authenticate: func(*http.Request) (*auth.Principal, error) { return nil, auth.ErrInvalidCredentials }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	who := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
	se, cookie := p.ses.login(nil, who, "citizen")

	for round := range 20 {
		upload := []byte("%PDF-1.7 to sign " + strings.Repeat("x", round))
		sum := sha256.Sum256(upload)
		p.dropHeld(se)
		doc := &signedDocument{Name: "a.pdf", credential: "c1", Level: "B-B", upload: upload, UploadHash: hex.EncodeToString(sum[:]), at: now}
		if !p.hold(doc.size()) {
			t.Fatal("hold refused")
		}
		p.ses.locked(func() { se.signed = doc })
		do := func(method, path string, form url.Values) *httptest.ResponseRecorder {
			var r *http.Request
			if form != nil {
				r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest(method, path, nil)
			}
			r.AddCookie(&http.Cookie{Name: cookieName(false), Value: cookie})
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			return w
		}
		approve := url.Values{"csrf": {se.csrf}, "hash": {doc.UploadHash}, "pin": {"1234"}}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if w := do("POST", "/my/sign/approve?lang=en", approve); w.Code != http.StatusOK && w.Code != http.StatusConflict {
					t.Errorf("approve: %d %s", w.Code, w.Body.String())
				}
			})
			wg.Go(func() {
				if w := do("GET", "/my/signed", nil); w.Code == http.StatusOK && w.Body.String() != "%PDF-1.7 signed" {
					t.Errorf("download: %q", w.Body.String())
				}
			})
			wg.Go(func() { do("GET", "/my/sign?lang=en", nil) })
		}
		wg.Wait()
		if n := signs.Swap(0); n != 1 {
			t.Fatalf("round %d: the document was signed %d times", round, n)
		}
		if w := do("GET", "/my/signed", nil); w.Code != http.StatusOK || w.Body.String() != "%PDF-1.7 signed" {
			t.Fatalf("download after the approvals: %d %q", w.Code, w.Body.String())
		}
		var held int64
		p.ses.locked(func() { held = se.signed.size() })
		if got := p.held.Load(); got != held {
			t.Fatalf("round %d: %d bytes held, the session holds %d", round, got, held)
		}
	}
}

// Uploads of one browser that arrive at once (a double click on "upload",
// a form sent again) leave the budget of held bytes counting only the
// document the session keeps: the bytes of a replaced upload are given
// back, or a few hundred double clicks exhaust the budget and the portal
// refuses every upload ("busy") until it restarts.
func TestConcurrentUploadsKeepTheBudget(t *testing.T) {
	api := http.NewServeMux()
	api.HandleFunc("POST /csc/v2/credentials/list", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"credentialIDs":["c1"],"credentialInfos":[{"credentialID":"c1","key":{"status":"enabled"},` +
			`"cert":{"status":"valid","serialNumber":"01","subjectDN":"CN=x"},"PIN":{"set":true,"locked":false}}]}`))
	})
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	p, err := New(Options{API: api, Audit: &memAudit{}, Now: func() time.Time { return now },
		Authenticate: func(*http.Request) (*auth.Principal, error) { return nil, auth.ErrInvalidCredentials }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	who := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
	se, cookie := p.ses.login(nil, who, "citizen")
	upload := func(n int) int {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("csrf", se.csrf)
		_ = mw.WriteField("credential", "c1")
		_ = mw.WriteField("level", "B-B")
		fw, _ := mw.CreateFormFile("document", "a.pdf")
		_, _ = fw.Write([]byte("%PDF-1.7 " + strings.Repeat("x", n)))
		_ = mw.Close()
		r := httptest.NewRequest("POST", "/my/sign?lang=en", &body)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		r.AddCookie(&http.Cookie{Name: cookieName(false), Value: cookie})
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	for round := range 40 {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if code := upload(256<<10 + round*4 + i); code != http.StatusOK {
					t.Errorf("upload: %d", code)
				}
			})
		}
		wg.Wait()
		var held int64
		p.ses.locked(func() { held = se.signed.size() })
		if got := p.held.Load(); got != held {
			t.Fatalf("round %d: %d bytes held, the session holds %d", round, got, held)
		}
	}
	// The session ends: nothing stays held.
	p.ses.drop(se)
	if got := p.held.Load(); got != 0 {
		t.Fatalf("%d bytes held after the session ended", got)
	}
	// An upload that finishes after its session ended (signed out,
	// expired or evicted while the file came in) holds nothing.
	p.keepDocument(se, &signedDocument{upload: make([]byte, 1000)})
	if got := p.held.Load(); got != 0 {
		t.Fatalf("%d bytes held for a session that had ended", got)
	}
}
