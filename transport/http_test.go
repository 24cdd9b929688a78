package transport

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// storeLimiter answers public checks from one store, as a one-node cluster
// would.
type storeLimiter struct{ store *engine.Store }

func (l storeLimiter) CheckWith(_ context.Context, req bucket.Request, opts drl.CheckOptions) (bucket.Decision, error) {
	d, err := l.store.Check(req)
	if err == nil && opts.Shadow && !d.Allowed {
		d.Allowed, d.Shadowed = true, true
	}
	return d, err
}

// CheckAll checks each limit in turn; the two rounds that keep a denied
// request from spending are cluster's, not the wire's.
func (l storeLimiter) CheckAll(ctx context.Context, checks []drl.LimitCheck) (drl.MultiDecision, error) {
	md := drl.MultiDecision{Allowed: true, Decisions: make([]bucket.Decision, len(checks))}
	for i, c := range checks {
		d, err := l.CheckWith(ctx, c.Request, c.Options)
		if err != nil {
			return drl.MultiDecision{}, InLimit(i, err)
		}
		md.Decisions[i], md.Allowed = d, md.Allowed && d.Allowed
	}
	return md, nil
}

func newStore(t testing.TB) *engine.Store {
	t.Helper()
	s, err := engine.New(bucket.StoreConfig{Clock: &bucket.ManualClock{}, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type oneMember struct{}

func (oneMember) Members() (string, []drl.Member) {
	return "a", []drl.Member{{Name: "a", GRPCAddr: "127.0.0.1:1", State: "alive", InRing: true}}
}

func (oneMember) Quorum() drl.Quorum { return drl.Quorum{Majority: true, Alive: 1, Size: 1} }

func (oneMember) OwnerOf(userID, action string) (drl.Owner, error) {
	if err := bucket.ValidateIDs(userID, action); err != nil {
		return drl.Owner{}, err
	}
	return drl.Owner{Member: drl.Member{Name: "a", State: "alive", InRing: true}, Partition: 7}, nil
}

func newTestHTTP(t *testing.T, ready bool) *httptest.Server {
	t.Helper()
	h := NewHTTPHandler(ServerConfig{Limiter: storeLimiter{newStore(t)}, Directory: oneMember{},
		Ready: func() bool { return ready }, MaxBodyBytes: 1024})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, out
}

func TestHTTPCheck(t *testing.T) {
	srv := newTestHTTP(t, true)
	code, out := do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"u1","action":"login","limit":5,"window":"60s"}`)
	// strict_window, the default: the first hit is held for the whole window.
	want := map[string]any{"allowed": true, "limit": 5.0, "remaining": 4.0, "reset_after": "60s", "retry_after": "0s"}
	if code != 200 || !equalJSON(out, want) {
		t.Fatalf("POST /v1/ratelimit = %d %v, want 200 %v", code, out, want)
	}
	// hits 0 peeks; hits 4 spends the rest; then a denial with a retry.
	if _, out := do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"u1","action":"login","limit":5,"window":"60s","hits":0}`); out["remaining"] != 4.0 {
		t.Fatalf("peek: %v", out)
	}
	do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"u1","action":"login","limit":5,"window":"60s","hits":4}`)
	code, out = do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"u1","action":"login","limit":5,"window":"60s"}`)
	if code != 200 || out["allowed"] != false || out["retry_after"] == "0s" {
		t.Fatalf("over the limit: %d %v, want 200, denied, a retry", code, out)
	}
	code, out = do(t, "POST", srv.URL+"/v1/ratelimit:batch", `{"checks":[{"user_id":"u2","action":"a","limit":1,"window":"1s"},{"user_id":"","action":"a","limit":1,"window":"1s"}]}`)
	results, _ := out["results"].([]any)
	if code != 200 || len(results) != 2 {
		t.Fatalf("batch: %d %v", code, out)
	}
	if e, _ := results[1].(map[string]any)["error"].(map[string]any); e["field"] != "user_id" {
		t.Fatalf("batch error for an empty user: %v", results[1])
	}
}

// The window may be seconds (RateLimit(user, action, 5, 60)), or a Go
// duration, as well as protobuf's "60s"; all name the same bucket. A window
// that is none of these, or out of range, is an error naming the field.
func TestHTTPWindowForms(t *testing.T) {
	srv := newTestHTTP(t, true)
	for i, window := range []string{`60`, `"60s"`, `"1m"`, `60.0`, `"1m0s"`} {
		_, out := do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"forms","action":"a","limit":10,"window":`+window+`}`)
		if out["allowed"] != true || out["remaining"] != float64(9-i) {
			t.Fatalf("window %s: %v, want the same bucket with %d left", window, out, 9-i)
		}
	}
	for window, field := range map[string]string{`"1 minute"`: "window", `"2h"`: "window", `7200`: "window", `0`: "window", `true`: "window", `"1e400s"`: "window"} {
		code, out := do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"forms","action":"a","limit":10,"window":`+window+`}`)
		e, _ := out["error"].(map[string]any)
		if code != 400 || e["field"] != field {
			t.Errorf("window %s: %d %v, want 400 naming %s", window, code, out, field)
		}
	}
	code, out := do(t, "POST", srv.URL+"/v1/ratelimit:batch", `{"checks":[{"user_id":"u","action":"a","limit":1,"window":90},{"user_id":"u","action":"a","limit":1,"window":"soon"}]}`)
	if e, _ := out["error"].(map[string]any); code != 400 || e["field"] != "checks[1].window" {
		t.Fatalf("a bad window in a batch: %d %v, want 400 naming checks[1].window", code, out)
	}
	_, out = do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"ms","action":"a","limit":3,"window":"1.0004s"}`)
	if out["reset_after"] != "1.001s" {
		t.Fatalf("reset_after %v: want whole milliseconds, rounded up: 1.001s", out["reset_after"])
	}
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Bad input answers 4xx with a JSON error that names the field.
func TestHTTPBadInput(t *testing.T) {
	srv := newTestHTTP(t, true)
	cases := []struct {
		name, method, path, body string
		code                     int
		field                    string
	}{
		{"malformed JSON", "POST", "/v1/ratelimit", `{"user_id":`, 400, "body"},
		{"not an object", "POST", "/v1/ratelimit", `["u"]`, 400, "body"},
		{"trailing bytes", "POST", "/v1/ratelimit", `{"user_id":"u"} x`, 400, "body"},
		{"empty user", "POST", "/v1/ratelimit", `{"user_id":"","action":"a","limit":1,"window":"1s"}`, 400, "user_id"},
		{"zero limit", "POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":0,"window":"1s"}`, 400, "limit"},
		{"window too long", "POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":1,"window":"7200s"}`, 400, "window"},
		{"missing window", "POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":1}`, 400, "window"},
		{"negative hits", "POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":1,"window":"1s","hits":-1}`, 400, "hits"},
		{"unknown algorithm", "POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":1,"window":"1s","algorithm":"leaky"}`, 400, "algorithm"},
		{"unknown fail policy", "POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":1,"window":"1s","fail_policy":"maybe"}`, 400, "fail_policy"},
		{"oversized body", "POST", "/v1/ratelimit", `{"user_id":"` + strings.Repeat("u", 2000) + `"}`, 413, "body"},
		{"wrong method", "GET", "/v1/ratelimit", ``, 405, ""},
		{"unknown path", "GET", "/v2/nothing", ``, 404, ""},
		{"owner without action", "GET", "/v1/owner?user_id=u", ``, 400, "action"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := do(t, c.method, srv.URL+c.path, c.body)
			e, _ := out["error"].(map[string]any)
			if code != c.code || e == nil || e["message"] == "" {
				t.Fatalf("%s %s = %d %v, want %d with an error message", c.method, c.path, code, out, c.code)
			}
			if c.field != "" && e["field"] != c.field {
				t.Fatalf("%s %s: error field %v, want %q", c.method, c.path, e["field"], c.field)
			}
		})
	}
}

func TestHTTPMembersOwnerHealth(t *testing.T) {
	srv := newTestHTTP(t, false)
	if code, out := do(t, "GET", srv.URL+"/v1/members", ""); code != 200 || out["self"] != "a" {
		t.Fatalf("members: %d %v", code, out)
	}
	if code, out := do(t, "GET", srv.URL+"/v1/owner?user_id=u&action=a", ""); code != 200 || out["partition"] != 7.0 {
		t.Fatalf("owner: %d %v", code, out)
	}
	if code, _ := do(t, "GET", srv.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if code, _ := do(t, "GET", srv.URL+"/readyz", ""); code != 503 {
		t.Fatalf("readyz on a node that is not ready: %d, want 503", code)
	}
	ready := newTestHTTP(t, true)
	if code, _ := do(t, "GET", ready.URL+"/readyz", ""); code != 200 {
		t.Fatalf("readyz on a ready node: %d, want 200", code)
	}
}
