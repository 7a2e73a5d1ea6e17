package timestamp_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// nopRecorder records every token (the bare Authority's).
type nopRecorder struct{}

func (nopRecorder) Record(context.Context, timestamp.TokenRecord) error { return nil }

// answer is what a client sees of an HTTP answer.
type answer struct {
	status            int
	contentType, body string
	retryAfter, allow string
}

func send(t *testing.T, url, method, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b), resp.Header.Get("Retry-After"), resp.Header.Get("Allow")}
}

// refusalItems returns the items of the timestamp.refuse records, each
// with its record's outcome under "_outcome".
func refusalItems(t *testing.T, f *fixture) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Action != timestamp.ActionRefuse {
			return nil
		}
		var c struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(r.Details, &c); err != nil {
			return err
		}
		if r.Actor != timestamp.AuditActor || (r.Outcome != audit.OutcomeFailure && r.Outcome != audit.OutcomeRefused) || r.Object == "" {
			t.Errorf("refusal record %+v", r)
		}
		for _, it := range c.Items {
			it["_outcome"] = r.Outcome
		}
		out = append(out, c.Items...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTSARefusalsRecorded on SQLite and PostgreSQL: each refused request
// (a hash algorithm not accepted, a body that does not parse, a policy not
// accepted, the clock out of sync, a GET, another media type, a body over
// the limit) has its timestamp.refuse item (failInfo or HTTP status, the
// text, the address, the hash algorithm when known; not the request) by
// the time its answer arrives, in a record of outcome refused (failure for
// the clock: the TSA could not serve the request), and the answer is byte for byte the one a
// TSA that records no refusal gives. When the record cannot be written,
// the refusal is answered as a token whose record cannot be: systemFailure
// (a 500 or 503 problem for an HTTP refusal).
func TestTSARefusalsRecorded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			clk := timestamp.NewStaticChecker(true)
			in := f.serve(t, clk, time.Hour)
			unit := in.svc.Unit()
			bareClk := timestamp.NewStaticChecker(true)
			bare, err := timestamp.New(timestamp.Config{Clock: timestamp.ClockConfig{Source: "static"}}, timestamp.Options{
				Certificate: unit.Cert, Chain: unit.Chain, Signer: unit.Key.Signer, Serials: in.serials, Recorder: nopRecorder{}, Clock: bareClk})
			if err != nil {
				t.Fatal(err)
			}
			bareSrv := httptest.NewServer(bare.Handler(nil))
			t.Cleanup(bareSrv.Close)

			data := filepath.Join(f.work, "d")
			writeFile(t, data, "refused")
			read := func(q string) []byte {
				b, err := os.ReadFile(q)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			sha1Query := read(f.query(t, data, "-sha1"))
			policyQuery := read(f.query(t, data, "-sha256", "-tspolicy", "1.2.3.4"))
			good := read(f.query(t, data, "-sha256"))
			cases := []struct {
				name, method, ct string
				body             []byte
				outOfSync        bool
				failInfo         string // or
				httpStatus       float64
				hash             string
			}{
				{name: "badAlg", body: sha1Query, failInfo: "badAlg", hash: "SHA-1"},
				{name: "garbage", body: []byte("garbage-xyzzy-0123456789"), failInfo: "badDataFormat"},
				{name: "policy", body: policyQuery, failInfo: "unacceptedPolicy", hash: "SHA-256"},
				{name: "clock", body: good, outOfSync: true, failInfo: "timeNotAvailable", hash: "SHA-256"},
				{name: "GET", method: http.MethodGet, httpStatus: http.StatusMethodNotAllowed},
				{name: "media type", ct: "application/octet-stream", body: good, httpStatus: http.StatusUnsupportedMediaType},
				{name: "too large", body: make([]byte, 1<<20+1), httpStatus: http.StatusRequestEntityTooLarge},
			}
			for _, c := range cases {
				method, ct := cmpOr(c.method, http.MethodPost), cmpOr(c.ct, timestamp.QueryContentType)
				clk.Set(!c.outOfSync)
				bareClk.Set(!c.outOfSync)
				before := len(refusalItems(t, f))
				got := send(t, in.base+"/tsa", method, ct, c.body)
				// By the time the answer is here, its record is written.
				items := refusalItems(t, f)
				if len(items) != before+1 {
					t.Fatalf("%s: %d refusal items, want %d", c.name, len(items), before+1)
				}
				want := send(t, bareSrv.URL, method, ct, c.body)
				if got != want {
					t.Fatalf("%s: answer %+v, want %+v (the TSA's that records no refusal)", c.name, got, want)
				}
				it := items[len(items)-1]
				if it["failInfo"] != nilIfEmpty(c.failInfo) || it["httpStatus"] != nilIfZero(c.httpStatus) || it["address"] != "127.0.0.1" ||
					it["requester"] != "addr:127.0.0.1" || it["text"] == "" || it["hashAlgorithm"] != nilIfEmpty(c.hash) || it["note"] != nil {
					t.Fatalf("%s: item %v", c.name, it)
				}
				// The client's request refused (outcome refused, as every
				// service's), or the TSA unable to serve it (failure).
				if want := map[bool]string{true: audit.OutcomeFailure, false: audit.OutcomeRefused}[c.outOfSync]; it["_outcome"] != want {
					t.Fatalf("%s: outcome %v, want %s", c.name, it["_outcome"], want)
				}
				if raw, _ := json.Marshal(it); len(c.body) > 0 && bytes.Contains(raw, c.body[len(c.body)-8:]) {
					t.Fatalf("%s: the item holds the request: %s", c.name, raw)
				}
			}
			clk.Set(true)

			// The audit log fails: the refusal is not answered as if
			// recorded.
			f.log.Close()
			if status, resp := postTSA(t, in.base, sha1Query); resp.Status.Status != tsp.StatusRejection || resp.Status.FailInfo != tsp.SystemFailure {
				t.Fatalf("badAlg with the audit log closed: HTTP %d %s, want systemFailure", status, resp.Status)
			}
			if a := send(t, in.base+"/tsa", http.MethodGet, "", nil); a.status != http.StatusInternalServerError || a.allow != "" {
				t.Fatalf("GET with the audit log closed: %+v, want 500", a)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nilIfZero(n float64) any {
	if n == 0 {
		return nil
	}
	return n
}

// unrecorded reads thiqa_tsa_refusals_unrecorded_total{budget}.
func unrecorded(t *testing.T, in *instance, budget string) float64 {
	t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "thiqa_tsa_refusals_unrecorded_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == budget {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestTSARefusalsBoundedPerAddress on SQLite and PostgreSQL: one address
// sending 300 requests that do not parse leaves the records of its budget
// (10 at once, one every 10 s) and the first of the run past it, noted;
// every one is still answered badDataFormat, and the ones left out are
// counted in thiqa_tsa_refusals_unrecorded_total{budget="address"}:
// records and count add up to every refusal.
func TestTSARefusalsBoundedPerAddress(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			in := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
			before := len(refusalItems(t, f))
			const n = 300
			for range n {
				if _, resp := postTSA(t, in.base, []byte{0x30, 0x03, 0x02, 0x01}); resp.Status.FailInfo != tsp.BadDataFormat {
					t.Fatalf("answer %s, want badDataFormat", resp.Status)
				}
			}
			items := refusalItems(t, f)[before:]
			if len(items) < 11 || len(items) > 13 {
				t.Fatalf("%d records for %d refusals of one address, want 11 (its burst and the first past it)", len(items), n)
			}
			if items[10]["note"] == nil || items[9]["note"] != nil {
				t.Fatalf("the first record past the budget has no note, or one within has: %v / %v", items[9], items[10])
			}
			if got := storetest.ItemRefusalsAccounted(t, f.db, timestamp.ActionRefuse, before) + int(unrecorded(t, in, "address")+unrecorded(t, in, "overall")); got != n {
				t.Fatalf("records plus unrecorded counts: %d, want %d refusals", got, n)
			}
		})
	}
}

// TestTSARefusalsBoundedOverall on SQLite and PostgreSQL: 2,000 /64s,
// each sending a request that does not parse, leave at most the overall
// budget's records (ratelimit.OverallBurst at once, OverallRate a second);
// every one is answered badDataFormat, and the next recorded refusal says
// how many went unrecorded.
func TestTSARefusalsBoundedOverall(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			in := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
			post := func(remote string) {
				t.Helper()
				req := httptest.NewRequest(http.MethodPost, "/tsa", bytes.NewReader([]byte{0x30, 0x03, 0x02, 0x01}))
				req.Header.Set("Content-Type", timestamp.QueryContentType)
				req.RemoteAddr = remote
				rec := httptest.NewRecorder()
				in.svc.ServeHTTP(rec, req)
				r, err := tsp.ParseResponse(rec.Body.Bytes())
				if err != nil || rec.Code != http.StatusOK || r.Status.FailInfo != tsp.BadDataFormat {
					t.Fatalf("%s: HTTP %d %v, want badDataFormat", remote, rec.Code, err)
				}
			}
			before, start := len(refusalItems(t, f)), time.Now()
			const addrs = 2000
			for i := range addrs {
				post(fmt.Sprintf("[2001:db8:0:%x::1]:4000", i))
			}
			limit := ratelimit.OverallBurst + int(ratelimit.OverallRate*time.Since(start).Seconds()) + 1
			if n := len(refusalItems(t, f)) - before; n > limit {
				t.Fatalf("%d records for %d addresses' refusals, want at most %d", n, addrs, limit)
			}
			time.Sleep(time.Second / ratelimit.OverallRate * 2)
			post("[2001:db8:1::1]:4000")
			if got := storetest.ItemRefusalsAccounted(t, f.db, timestamp.ActionRefuse, before); got != addrs+1 {
				t.Fatalf("records plus their unrecordedOverall: %d, want %d refusals", got, addrs+1)
			}
			if n := unrecorded(t, in, "overall"); n == 0 {
				t.Fatalf("thiqa_tsa_refusals_unrecorded_total{budget=\"overall\"} %v", n)
			}
			// As operations.md says: items and the counter add up, and
			// unrecordedOverall repeats the counter's overall ones.
			items := len(refusalItems(t, f)) - before
			if got := items + int(unrecorded(t, in, "address")+unrecorded(t, in, "overall")); got != addrs+1 {
				t.Fatalf("items plus thiqa_tsa_refusals_unrecorded_total: %d, want %d refusals", got, addrs+1)
			}
		})
	}
}

// TestTSARefusalsIdentifyOnlyRecorded on SQLite and PostgreSQL: the
// requester of an HTTP refusal (identify, which may verify a bearer token
// or a client certificate) is resolved only for the refusals the budget
// records, not for the ones past it: 100 GETs of one address cost at most
// its budget's identifications, and each is still answered 405.
func TestTSARefusalsIdentifyOnlyRecorded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			in := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
			unit := in.svc.Unit()
			refusals, err := f.log.Group(timestamp.AuditActor, timestamp.ActionRefuse, "identify-test", audit.OutcomeFailure)
			if err != nil {
				t.Fatal(err)
			}
			a, err := timestamp.New(timestamp.Config{Clock: timestamp.ClockConfig{Source: "static"}}, timestamp.Options{
				Certificate: unit.Cert, Chain: unit.Chain, Signer: unit.Key.Signer, Serials: in.serials, Recorder: nopRecorder{},
				Clock: timestamp.NewStaticChecker(true), Refusals: refusals})
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int64
			h := a.Handler(func(*http.Request) string { calls.Add(1); return "jwt:someone" })
			before := len(refusalItems(t, f))
			const n = 100
			for range n {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/tsa", nil))
				if rec.Code != http.StatusMethodNotAllowed {
					t.Fatalf("GET: HTTP %d, want 405", rec.Code)
				}
			}
			items := refusalItems(t, f)[before:]
			if got := calls.Load(); got != int64(len(items)) || len(items) >= n {
				t.Fatalf("identify called %d times for %d refusals, %d of them recorded; want once per record", got, n, len(items))
			}
			for _, it := range items {
				if it["requester"] != "jwt:someone" {
					t.Fatalf("item %v: the requester is not identify's", it)
				}
			}
		})
	}
}

// TestTSARefusalsInProcess on SQLite and PostgreSQL: a refusal of a
// caller in the same process (the signer's InProcessClient) is recorded
// too, every one (no address, no budget: each is a signing attempt the
// signing service audits already), and when its record cannot be written
// the caller gets systemFailure, not the refusal.
func TestTSARefusalsInProcess(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			clk := timestamp.NewStaticChecker(false)
			in := f.serve(t, clk, time.Hour)
			c := timestamp.NewInProcessClient(in.svc, "thiqa-signing")
			digest := make([]byte, 32)
			before := len(refusalItems(t, f))
			const n = 3 * 10 // past an address's burst
			for range n {
				_, err := c.Timestamp(t.Context(), digest, crypto.SHA256)
				if se := (*timestamp.StatusError)(nil); !errors.As(err, &se) || se.Status.FailInfo != tsp.TimeNotAvailable {
					t.Fatalf("clock out of sync: %v, want timeNotAvailable", err)
				}
			}
			items := refusalItems(t, f)[before:]
			if len(items) != n {
				t.Fatalf("%d items for %d refusals in process, want every one", len(items), n)
			}
			if it := items[0]; it["failInfo"] != "timeNotAvailable" || it["requester"] != "thiqa-signing" || it["address"] != nil || it["hashAlgorithm"] != "SHA-256" || it["_outcome"] != audit.OutcomeFailure {
				t.Fatalf("item %v", it)
			}
			f.log.Close()
			_, err := c.Timestamp(t.Context(), digest, crypto.SHA256)
			if se := (*timestamp.StatusError)(nil); !errors.As(err, &se) || se.Status.FailInfo != tsp.SystemFailure {
				t.Fatalf("with the audit log closed: %v, want systemFailure", err)
			}
		})
	}
}
