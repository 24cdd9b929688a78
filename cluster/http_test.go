package cluster

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The HTTP API of a real node: multi-limit checks, shadow mode, reset,
// top denied keys and the metrics they move, with bad input.
func TestHTTPAdminEndpoints(t *testing.T) {
	nodes := startCluster(t, 2, func(c *Config) { c.HTTPAddr = "127.0.0.1:0" })
	base := "http://" + nodes[0].HTTPAddr()
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %q is not JSON", path, b)
		}
		return resp.StatusCode, out
	}
	all := `{"limits":[{"user_id":"ann","action":"s","limit":1,"window":"3600s"},{"user_id":"ann","action":"h","limit":5,"window":"3600s"}]}`
	if code, out := post("/v1/ratelimit:all", all); code != 200 || out["allowed"] != true {
		t.Fatalf("first multi-limit check: %d %v", code, out)
	}
	code, out := post("/v1/ratelimit:all", all)
	ds, _ := out["decisions"].([]any)
	if code != 200 || out["allowed"] != false || len(ds) != 2 || ds[1].(map[string]any)["remaining"] != 4.0 {
		t.Fatalf("second multi-limit check: %d %v", code, out)
	}
	shadow := `{"user_id":"ann","action":"s","limit":1,"window":"3600s","shadow":true}`
	if code, out := post("/v1/ratelimit", shadow); code != 200 || out["allowed"] != true || out["shadowed"] != true {
		t.Fatalf("shadow check: %d %v", code, out)
	}
	resp, err := http.Get(base + "/v1/topdenied?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Node string
		Keys []struct {
			UserID string `json:"user_id"`
			Action string
			Denied float64
		}
	}
	json.NewDecoder(resp.Body).Decode(&top)
	resp.Body.Close()
	if top.Node != nodes[0].Name() || len(top.Keys) != 1 || top.Keys[0].UserID != "ann" || top.Keys[0].Action != "s" || top.Keys[0].Denied != 2 {
		t.Fatalf("top denied: %+v", top)
	}
	if code, out := post("/v1/reset", `{"user_id":"ann","action":"s"}`); code != 200 || out["dropped"] != 1.0 {
		t.Fatalf("reset: %d %v", code, out)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"drl_shadow_denials_total 1", "drl_multi_limit_races_total 0", "drl_forward_rpcs_total", `drl_forward_rpc_errors_total{reason="timeout"} 0`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	for _, c := range []struct{ path, body, field string }{
		{"/v1/ratelimit:all", `{"limits":[]}`, "limits"},
		{"/v1/ratelimit:all", `{"limits":[{"user_id":"a","action":"b","limit":1,"window":"1s"},{"user_id":"a","action":"b","limit":1,"window":"1s","algorithm":"x"}]}`, "limits[1].algorithm"},
		{"/v1/ratelimit:all", `{"limits":`, "body"},
		{"/v1/reset", `{"user_id":"","action":"b"}`, "user_id"},
	} {
		code, out := post(c.path, c.body)
		e, _ := out["error"].(map[string]any)
		if code != 400 || e["field"] != c.field {
			t.Errorf("%s %s: %d %v, want 400 naming %s", c.path, c.body, code, out, c.field)
		}
	}
	if resp, err := http.Get(base + "/v1/topdenied?limit=0"); err != nil || resp.StatusCode != 400 {
		t.Fatalf("limit=0: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}

// Every other endpoint of a real node's HTTP API, with bad input.
func TestHTTPEndpointsOfARealNode(t *testing.T) {
	nodes := startCluster(t, 2, func(c *Config) { c.HTTPAddr = "127.0.0.1:0" })
	base := "http://" + nodes[0].HTTPAddr()
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	user := userOwnedBy(t, nodes[0], nodes[1].Name()) // forwarded to node-1
	for _, c := range []struct {
		method, path, body string
		code               int
		has                string
	}{
		{"POST", "/v1/ratelimit", `{"user_id":"` + user + `","action":"api","limit":1,"window":"60s"}`, 200, `"allowed":true`},
		{"POST", "/v1/ratelimit", `{"user_id":"` + user + `","action":"api","limit":1,"window":"60s"}`, 200, `"allowed":false`},
		{"POST", "/v1/ratelimit:batch", `{"checks":[{"user_id":"b","action":"api","limit":1,"window":"1s"},{"user_id":"b","action":"api","limit":0,"window":"1s"}]}`, 200, `"field":"limit"`},
		{"GET", "/v1/members", ``, 200, `"node-1"`},
		{"GET", "/v1/owner?user_id=" + user + "&action=api", ``, 200, `"node-1"`},
		{"GET", "/healthz", ``, 200, "ok"},
		{"GET", "/readyz", ``, 200, "ready"},
		{"GET", "/status", ``, 200, `data-name="node-1" data-state="alive"`},
		{"GET", "/v1/status", ``, 200, `"node":"node-0"`},
		{"GET", "/", ``, 200, "<html"}, // redirected to /status
		{"POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":1,"window":"60s","algorithm":"leaky"}`, 400, `"field":"algorithm"`},
		{"POST", "/v1/ratelimit", `{"user_id":"u",`, 400, `"field":"body"`},
		{"POST", "/v1/ratelimit", `{"user_id":"` + strings.Repeat("u", 70<<10) + `"}`, 413, `"field":"body"`},
		{"POST", "/v1/ratelimit", `{"user_id":"` + strings.Repeat("u", 300) + `","action":"a","limit":1,"window":"60s"}`, 400, `"field":"user_id"`},
		{"GET", "/v1/ratelimit", ``, 405, "use POST"},
		{"GET", "/v2/nothing", ``, 404, "no such endpoint"},
	} {
		code, body := call(c.method, c.path, c.body)
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("%s %s: %d %.300s; want %d with %q", c.method, c.path, code, body, c.code, c.has)
		}
	}
}
