package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/verify/report"
)

// cdp is a minimal Chrome DevTools Protocol client over one page target.
type cdp struct {
	t      *testing.T
	ws     *websocket.Conn
	next   int
	events []cdpMessage
}

type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// call sends one command and waits for its answer, keeping the events
// that arrive meanwhile.
func (c *cdp) call(method string, params any, result any) {
	c.t.Helper()
	c.next++
	id := c.next
	raw, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		c.t.Fatal(err)
	}
	_ = c.ws.SetDeadline(time.Now().Add(60 * time.Second))
	if err := websocket.Message.Send(c.ws, string(raw)); err != nil {
		c.t.Fatalf("CDP %s: %v", method, err)
	}
	for {
		var msg string
		if err := websocket.Message.Receive(c.ws, &msg); err != nil {
			c.t.Fatalf("CDP %s: %v", method, err)
		}
		var m cdpMessage
		if err := json.Unmarshal([]byte(msg), &m); err != nil {
			c.t.Fatalf("CDP %s: %v", method, err)
		}
		if m.ID != id {
			if m.Method != "" {
				c.events = append(c.events, m)
			}
			continue
		}
		if m.Error != nil {
			c.t.Fatalf("CDP %s: %s", method, m.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				c.t.Fatalf("CDP %s result: %v", method, err)
			}
		}
		return
	}
}

// eval evaluates a JavaScript expression and returns its value as a string.
func (c *cdp) eval(expr string) string {
	c.t.Helper()
	var out struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &out)
	if out.ExceptionDetails != nil {
		c.t.Fatalf("evaluating %q: %s", expr, out.ExceptionDetails.Text)
	}
	if out.Result.Value == nil {
		return ""
	}
	return fmt.Sprint(out.Result.Value)
}

// waitFor evaluates expr until it returns a non-empty string.
func (c *cdp) waitFor(expr string, d time.Duration) string {
	c.t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if v := c.eval(expr); v != "" {
			return v
		}
	}
	c.t.Fatalf("timed out waiting for %s", expr)
	return ""
}

// startChromium runs Debian's headless Chromium with a fresh profile and
// returns a CDP client attached to its page, emulating a phone screen.
func startChromium(t *testing.T) *cdp {
	t.Helper()
	// Chromium's helper processes may still write into the profile after
	// the browser exits: its own folder, removed once the group is gone.
	profile, err := os.MkdirTemp("", "thiqa-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-allow-origins=*", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		for i := 0; i < 50 && syscall.Kill(-cmd.Process.Pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		_ = os.RemoveAll(profile)
	})
	var port string
	for deadline := time.Now().Add(60 * time.Second); port == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if f, err := os.Open(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			sc := bufio.NewScanner(f)
			if sc.Scan() {
				port = strings.TrimSpace(sc.Text())
			}
			f.Close()
		}
	}
	if port == "" {
		t.Fatal("Chromium did not open its DevTools port")
	}
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&targets)
		resp.Body.Close()
		if err == nil && len(targets) > 0 {
			break
		}
	}
	for _, tg := range targets {
		if tg.Type != "page" {
			continue
		}
		ws, err := websocket.Dial(tg.WS, "", "http://127.0.0.1/")
		if err != nil {
			t.Fatalf("connecting to Chromium: %v", err)
		}
		ws.MaxPayloadBytes = 64 << 20
		t.Cleanup(func() { ws.Close() })
		c := &cdp{t: t, ws: ws}
		c.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}, nil)
		c.call("Page.enable", map[string]any{}, nil)
		c.call("Log.enable", map[string]any{}, nil)
		c.call("Runtime.enable", map[string]any{}, nil)
		return c
	}
	t.Fatalf("Chromium shows no page: %+v", targets)
	return nil
}

// browserCheck opens the verification page in headless Chromium, uploads
// each document through the file input, and checks the verdict shown;
// it saves a screenshot of every result (also into
// $THIQA_TEST_SCREENSHOTS when set, to look at).
func browserCheck(t *testing.T, base string, docs map[string]report.Indication) {
	c := startChromium(t)
	c.call("Page.navigate", map[string]any{"url": base + "/verify"}, nil)
	c.waitFor(`document.readyState === "complete" && document.getElementById("file") ? "yes" : ""`, 30*time.Second)
	if got := c.eval(`document.documentElement.dataset.show + " " + document.documentElement.dir`); got != "both rtl" {
		t.Fatalf("page languages: %q, want both languages, right to left", got)
	}
	if w := c.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Fatalf("the page is %s CSS pixels wide on a 390-pixel phone screen", w)
	}
	shots := []string{t.TempDir()}
	if d := os.Getenv("THIQA_TEST_SCREENSHOTS"); d != "" {
		shots = append(shots, d)
	}
	i := 0
	for path, want := range docs {
		i++
		var doc struct {
			Root struct {
				NodeID int `json:"nodeId"`
			} `json:"root"`
		}
		c.call("DOM.getDocument", map[string]any{"depth": 0}, &doc)
		var q struct {
			NodeID int `json:"nodeId"`
		}
		c.call("DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": "#file"}, &q)
		c.call("DOM.setFileInputFiles", map[string]any{"files": []string{path}, "nodeId": q.NodeID}, nil)
		c.eval(`document.getElementById("verdict").dataset.indication = ""; document.getElementById("go").click(); "clicked"`)
		got := c.waitFor(`document.getElementById("result").hidden ? (document.getElementById("status").className === "error" ? "error: " + document.getElementById("status").innerText : "") : document.getElementById("verdict").dataset.indication`, 60*time.Second)
		if got != string(want) {
			t.Fatalf("%s: the page shows %q, want %s", filepath.Base(path), got, want)
		}
		text := c.eval(`document.getElementById("result").innerText`)
		wantText := []string{"NTROM-1234567", "Ministry of Health Seal", "الموقّع", "Signer", "معرّف المؤسسة", "Organisation identifier"}
		if strings.HasPrefix(filepath.Base(path), "not-a-pdf") {
			// No signature to show: the document's own verdict and reason.
			wantText = []string{"غير صالح", "TOTAL-FAILED", "FORMAT_FAILURE", "not a PDF"}
		} else if want == report.TotalPassed {
			// Served without a trusted list: the qualified status is unknown, never taken from the certificate.
			wantText = append(wantText, "صالح", "TOTAL-PASSED", "B-LT", "ختم إلكتروني", "e-seal", "التأهيل غير معروف", "qualified status unknown")
		} else {
			wantText = append(wantText, "غير صالح", "TOTAL-FAILED")
		}
		for _, w := range wantText {
			if !strings.Contains(text, w) {
				t.Fatalf("%s: the result lacks %q:\n%s", filepath.Base(path), w, text)
			}
		}
		var shot struct {
			Data string `json:"data"`
		}
		c.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot)
		png, err := base64.StdEncoding.DecodeString(shot.Data)
		if err != nil || len(png) < 1000 {
			t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
		}
		for _, d := range shots {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("verify-%d-%s.png", i, want)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The language switch: English only, left to right; then Arabic only.
	c.eval(`document.querySelector('.langs button[data-lang="en"]').click(); "ok"`)
	if got := c.eval(`document.documentElement.dir + " " + getComputedStyle(document.querySelector('#verdict span[lang="ar"]')).display`); got != "ltr none" {
		t.Fatalf("after choosing English: %q, want ltr and the Arabic hidden", got)
	}
	c.eval(`document.querySelector('.langs button[data-lang="ar"]').click(); "ok"`)
	if got := c.eval(`document.documentElement.dir + " " + getComputedStyle(document.querySelector('#verdict span[lang="en"]')).display`); got != "rtl none" {
		t.Fatalf("after choosing Arabic: %q, want rtl and the English hidden", got)
	}
	for _, e := range c.events {
		if e.Method == "Log.entryAdded" && strings.Contains(string(e.Params), `"level":"error"`) {
			t.Fatalf("the page logged an error: %s", e.Params)
		}
		if e.Method == "Runtime.exceptionThrown" {
			t.Fatalf("the page threw: %s", e.Params)
		}
	}
}
