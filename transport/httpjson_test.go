package transport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// Numbers read alike: limit, hits and burst as JSON numbers or strings,
// the window as seconds in either, or as a duration.
func TestHTTPNumbersReadAlike(t *testing.T) {
	srv := newTestHTTP(t, true)
	for i, body := range []string{
		`{"user_id":"n","action":"a","limit":10,"window":60}`,
		`{"user_id":"n","action":"a","limit":"10","window":"60"}`,
		`{"user_id":"n","action":"a","limit":10.0,"window":"60s","hits":"1"}`,
		`{"user_id":"n","action":"a","limit":1e1,"window":"1m"}`,
	} {
		code, out := do(t, "POST", srv.URL+"/v1/ratelimit", body)
		if code != 200 || out["remaining"] != float64(9-i) {
			t.Fatalf("POST %s = %d %v, want the same bucket with %d left", body, code, out, 9-i)
		}
	}
}

// A field this node does not know is ignored, so that a newer client
// works against an older node.
func TestHTTPUnknownFieldsIgnored(t *testing.T) {
	srv := newTestHTTP(t, true)
	body := `{"user_id":"u","action":"a","limit":5,"window":60,"decided_by_hint":{"x":[1,"2",{"y":null}]},"zz":true}`
	if code, out := do(t, "POST", srv.URL+"/v1/ratelimit", body); code != 200 || out["allowed"] != true {
		t.Fatalf("POST %s = %d %v, want 200 allowed", body, code, out)
	}
	body = `{"checks":[{"user_id":"u","action":"b","limit":5,"window":60,"new":1}],"trace":"t"}`
	if code, out := do(t, "POST", srv.URL+"/v1/ratelimit:batch", body); code != 200 || len(out["results"].([]any)) != 1 {
		t.Fatalf("POST batch %s = %d %v, want 200 with one result", body, code, out)
	}
}

// A number out of its field's range names the field and says so, and no
// message carries a Go package's prefix.
func TestHTTPErrorsNameTheirField(t *testing.T) {
	srv := newTestHTTP(t, true)
	for _, c := range []struct{ body, field, says string }{
		{`{"user_id":"u","action":"a","limit":1e30,"window":60}`, "limit", "out of range"},
		{`{"user_id":"u","action":"a","limit":"99999999999999999999","window":60}`, "limit", "out of range"},
		{`{"user_id":"u","action":"a","limit":5,"window":9223372036854775807}`, "window", "out of range"},
		{`{"user_id":"u","action":"a","limit":5.5,"window":60}`, "limit", "whole number"},
		{`{"user_id":"u","action":"a","limit":true,"window":60}`, "limit", "whole number"},
		{`{"user_id":7,"action":"a","limit":5,"window":60}`, "user_id", "string"},
		{`{"user_id":"","action":"a","limit":5,"window":60}`, "user_id", "user_id"},
		{`{"user_id":"u","action":"a","limit":0,"window":60}`, "limit", "limit"},
		{`{"checks":[{"user_id":"u","action":"a","limit":5,"window":60},{"limit":1e30}]}`, "checks[1].limit", "out of range"},
	} {
		path := "/v1/ratelimit"
		if strings.HasPrefix(c.body, `{"checks"`) {
			path += ":batch"
		}
		code, out := do(t, "POST", srv.URL+path, c.body)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if code != 400 || e["field"] != c.field || e["code"] != "INVALID_ARGUMENT" || !strings.Contains(msg, c.says) {
			t.Errorf("POST %s = %d %v, want 400 naming %s and saying %q", c.body, code, out, c.field, c.says)
		}
		for _, pkg := range []string{"bucket:", "transport:", "cluster:", "drl:", "proto:"} {
			if strings.Contains(msg, pkg) {
				t.Errorf("POST %s: message %q carries the prefix %q", c.body, msg, pkg)
			}
		}
	}
}

// 404 and 405 carry codes that match their statuses.
func TestHTTPStatusCodes(t *testing.T) {
	srv := newTestHTTP(t, true)
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v2/nothing", 404, "NOT_FOUND"},
		{"GET", "/v1/ratelimit", 405, "METHOD_NOT_ALLOWED"},
		{"PUT", "/v1/ratelimit:batch", 405, "METHOD_NOT_ALLOWED"},
	} {
		status, out := do(t, c.method, srv.URL+c.path, "")
		if e, _ := out["error"].(map[string]any); status != c.status || e["code"] != c.code {
			t.Errorf("%s %s = %d %v, want %d with code %s", c.method, c.path, status, out, c.status, c.code)
		}
	}
}

// The API answers HTTP/2 without TLS (h2c) beside HTTP/1.1, when served
// with HTTPProtocols.
func TestHTTPServesH2C(t *testing.T) {
	h := NewHTTPHandler(ServerConfig{Limiter: storeLimiter{newStore(t)}, Directory: oneMember{}})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = HTTPProtocols()
	srv.Start()
	t.Cleanup(srv.Close)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	h2c := &http.Client{Transport: tr}
	for _, c := range []struct {
		client *http.Client
		major  int
	}{{h2c, 2}, {http.DefaultClient, 1}} {
		resp, err := c.client.Post(srv.URL+"/v1/ratelimit", "application/json",
			strings.NewReader(`{"user_id":"h2","action":"a","limit":5,"window":60}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != c.major || !strings.Contains(string(b), `"allowed":true`) {
			t.Fatalf("POST over HTTP/%d: %s %s %s", c.major, resp.Proto, resp.Status, b)
		}
	}
}

// reset_after never exceeds the window, though the strict window counts a
// hit until its slot's end: the second check, a few seconds after the
// first, read "61.671s" for a 60 s window.
func TestHTTPResetAfterWithinTheWindow(t *testing.T) {
	clock := &bucket.ManualClock{}
	store, err := engine.New(bucket.StoreConfig{Clock: clock, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	srv := httptest.NewServer(NewHTTPHandler(ServerConfig{Limiter: storeLimiter{store}, Directory: oneMember{}}))
	t.Cleanup(srv.Close)
	for i := range 40 {
		_, out := do(t, "POST", srv.URL+"/v1/ratelimit", `{"user_id":"r","action":"a","limit":5,"window":60}`)
		reset, err := time.ParseDuration(out["reset_after"].(string))
		if err != nil || reset > time.Minute {
			t.Fatalf("check %d at %v: reset_after %v, want at most the window (60s)", i, clock.Now(), out["reset_after"])
		}
		g := &grpcServer{cfg: ServerConfig{Limiter: storeLimiter{store}}.withDefaults()}
		resp, err := g.Check(context.Background(), &drlv1.CheckRequest{UserId: "g", Action: "a", Limit: 5, Window: durationpb.New(time.Minute)})
		if err != nil || resp.GetResetAfter().AsDuration() > time.Minute {
			t.Fatalf("gRPC check %d at %v: reset_after %v, %v; want at most the window (60s)", i, clock.Now(), resp.GetResetAfter().AsDuration(), err)
		}
		clock.Advance(1700 * time.Millisecond)
	}
}
