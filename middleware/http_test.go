package middleware

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/client"
	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/cluster/clustertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func oneNode(t *testing.T) *cluster.Node { return clustertest.Start(t, 1, nil)[0] }

func oneNodeB(b *testing.B) *cluster.Node { return clustertest.Start(b, 1, nil)[0] }

// serve runs the middleware from cfg around a handler that answers "ok".
func serve(t *testing.T, cfg HTTPConfig) *httptest.Server {
	t.Helper()
	mw, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// perHour is a token bucket: these tests check the headers' arithmetic,
// which its steady refill makes easy to state.
func perHour(name string, n int64) Limit {
	return Limit{Name: name, Limit: n, Window: time.Hour, Algorithm: bucket.TokenBucket}
}

func TestHTTPRoutesHeadersAndDenials(t *testing.T) {
	srv := serve(t, HTTPConfig{
		Limiter: oneNode(t),
		Key:     KeyByHeader("X-API-Key"),
		Routes: []Route{
			{Pattern: "GET /api/", Rule: Rule{Limits: []Limit{{Name: "api", Limit: 3, Window: time.Minute, Algorithm: bucket.TokenBucket}}}},
			{Pattern: "POST /upload", Rule: Rule{Limits: []Limit{perHour("upload-small", 2), perHour("upload-big", 5)}}},
		},
	})
	key := map[string]string{"X-API-Key": "k1"}
	for i := range 3 {
		resp, body := send(t, "GET", srv.URL+"/api/items", key)
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if i == 0 {
			if got := resp.Header.Get("RateLimit-Policy"); got != `"api";q=3;w=60` {
				t.Fatalf("RateLimit-Policy %q", got)
			}
			if got := resp.Header.Get("RateLimit"); got != `"api";r=2;t=20` {
				t.Fatalf("RateLimit %q", got)
			}
		}
	}
	resp, body := send(t, "GET", srv.URL+"/api/items", key)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "20" || !strings.Contains(body, "retry in 20s") {
		t.Fatalf("over the limit: %d %q, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// Another key has its own bucket; an unmatched route is not limited.
	if resp, _ := send(t, "GET", srv.URL+"/api/items", map[string]string{"X-API-Key": "k2"}); resp.StatusCode != 200 {
		t.Fatalf("another key: %d", resp.StatusCode)
	}
	for range 5 {
		if resp, _ := send(t, "GET", srv.URL+"/health", nil); resp.StatusCode != 200 || resp.Header.Get("RateLimit") != "" {
			t.Fatalf("unlimited route: %d %v", resp.StatusCode, resp.Header)
		}
	}
	// Two limits: the smaller denies the third upload, and the denied ones
	// spend nothing on the larger.
	for i := range 4 {
		resp, _ := send(t, "POST", srv.URL+"/upload", key)
		if want := map[bool]int{true: 200, false: 429}[i < 2]; resp.StatusCode != want {
			t.Fatalf("upload %d: %d, want %d", i, resp.StatusCode, want)
		}
		if i == 3 {
			want := `"upload-small";r=0;t=3600, "upload-big";r=3;t=1440`
			if got := resp.Header.Get("RateLimit"); got != want {
				t.Fatalf("RateLimit of a denied upload %q, want %q", got, want)
			}
		}
	}
	// Requests without a usable key are the caller's fault.
	for _, h := range []map[string]string{nil, {"X-API-Key": strings.Repeat("k", 300)}} {
		if resp, body := send(t, "GET", srv.URL+"/api/items", h); resp.StatusCode != 400 || !strings.Contains(body, "key") {
			t.Fatalf("bad key: %d %q", resp.StatusCode, body)
		}
	}
}

func TestHTTPLegacyHeadersShadowAndDefault(t *testing.T) {
	srv := serve(t, HTTPConfig{
		Limiter: oneNode(t),
		Default: &Rule{Limits: []Limit{perHour("all", 1)}, Shadow: true},
		Headers: HeadersLegacy,
	})
	for i := range 3 {
		resp, _ := send(t, "GET", srv.URL+"/x", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("shadow request %d: %d", i, resp.StatusCode)
		}
		if got, want := resp.Header.Get("RateLimit-Remaining"), "0"; got != want {
			t.Fatalf("request %d: RateLimit-Remaining %q, want %q", i, got, want)
		}
		if resp.Header.Get("RateLimit-Limit") != "1" || resp.Header.Get("RateLimit-Reset") != "3600" || resp.Header.Get("RateLimit") != "" {
			t.Fatalf("legacy fields: %v", resp.Header)
		}
	}
}

// The cluster's refusal (here a window longer than the nodes accept) goes
// to OnError, which allows by default and may refuse.
func TestHTTPOnError(t *testing.T) {
	node := oneNode(t)
	tooLong := &Rule{Limits: []Limit{{Name: "x", Limit: 1, Window: 48 * time.Hour}}}
	open := serve(t, HTTPConfig{Limiter: node, Default: tooLong})
	if resp, _ := send(t, "GET", open.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("default OnError: %d, want the request let through", resp.StatusCode)
	}
	var seen error
	closed := serve(t, HTTPConfig{Limiter: node, Default: tooLong, OnError: func(r *http.Request, err error) bool {
		seen = err
		return false
	}})
	if resp, _ := send(t, "GET", closed.URL+"/", nil); resp.StatusCode != 503 || seen == nil {
		t.Fatalf("refusing OnError: %d, err %v", resp.StatusCode, seen)
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	node := oneNode(t)
	ok := Rule{Limits: []Limit{perHour("a", 1)}}
	cases := map[string]HTTPConfig{
		"no limiter":       {Default: &ok},
		"nothing limited":  {Limiter: node},
		"bad pattern":      {Limiter: node, Routes: []Route{{Pattern: "GET api", Rule: ok}}},
		"same pattern":     {Limiter: node, Routes: []Route{{Pattern: "/a", Rule: ok}, {Pattern: "/a", Rule: ok}}},
		"no limits":        {Limiter: node, Routes: []Route{{Pattern: "/a"}}},
		"unnamed limit":    {Limiter: node, Default: &Rule{Limits: []Limit{{Limit: 1, Window: time.Second}}}},
		"zero limit":       {Limiter: node, Default: &Rule{Limits: []Limit{{Name: "a", Window: time.Second}}}},
		"too many limits":  {Limiter: node, Default: &Rule{Limits: make([]Limit, 17)}},
		"negative window":  {Limiter: node, Default: &Rule{Limits: []Limit{{Name: "a", Limit: 1, Window: -1}}}},
		"bad utf-8 name":   {Limiter: node, Default: &Rule{Limits: []Limit{{Name: "\xff", Limit: 1, Window: time.Second}}}},
		"negative burst":   {Limiter: node, Default: &Rule{Limits: []Limit{{Name: "a", Limit: 1, Window: time.Second, Burst: -1}}}},
		"empty route rule": {Limiter: node, Routes: []Route{{Pattern: "/b", Rule: Rule{}}}},
	}
	for name, cfg := range cases {
		if _, err := NewHTTP(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// The middleware in front of a service that reaches a three-node cluster
// through the client: one key admits exactly its limit, however the
// client spreads the calls.
func TestHTTPAgainstThreeNodes(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	c, err := client.New(clustertest.GRPCAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := serve(t, HTTPConfig{Limiter: c, Key: KeyByRoute,
		Routes: []Route{{Pattern: "/search", Rule: Rule{Limits: []Limit{perHour("search", 25)}}}}})
	admitted := 0
	for range 40 {
		if resp, _ := send(t, "GET", srv.URL+"/search", nil); resp.StatusCode == 200 {
			admitted++
		}
	}
	if admitted != 25 {
		t.Fatalf("admitted %d of 40, limit 25", admitted)
	}
}
