package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drlimit/drl/cluster/clustertest"
)

// drlctl -h and drlctl <command> -h print the flags with their defaults
// and succeed (exit status 0); a bad command line is exit status 2.
func TestHelp(t *testing.T) {
	env := func(k string) string { return map[string]string{"DRL_ADDR": "10.1.2.3:7947"}[k] }
	var out bytes.Buffer
	err := run([]string{"-h"}, &out, env)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
		t.Fatalf("drlctl -h = %v (exit status %d), want flag.ErrHelp and 0", err, exitCode(err))
	}
	for _, want := range []string{"usage: drlctl", "-addr string", `(default "10.1.2.3:7947")`, "$DRL_ADDR", "$DRL_TOKEN",
		"-timeout duration", "0 means 5s, or 30s for wait", "-json", "-tls-ca"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("drlctl -h lacks %q:\n%s", want, out.String())
		}
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), "  "+c.name+" ") {
			t.Errorf("drlctl -h does not list %s:\n%s", c.name, out.String())
		}
	}

	flagsOf := map[string][]string{
		"check": {"-user", "-action", "-limit", "-window", "-hits", "(default 1)", "-burst", "-algorithm", "-dry-run", "-shadow"},
		"owner": {"-user", "-action"}, "reset": {"-user", "-action"}, "top": {"-n", "(default 10)"},
		"wait": {"-members"}, "members": {}, "forget": {},
	}
	for _, c := range commands {
		out.Reset()
		err := run([]string{c.name, "-h"}, &out, env)
		if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
			t.Errorf("drlctl %s -h = %v, want flag.ErrHelp", c.name, err)
		}
		want, ok := flagsOf[c.name]
		if !ok {
			t.Errorf("no expectations for %s -h", c.name)
		}
		for _, w := range append(want, "usage: drlctl [flags] "+c.name) {
			if !strings.Contains(out.String(), w) {
				t.Errorf("drlctl %s -h lacks %q:\n%s", c.name, w, out.String())
			}
		}
	}

	for _, args := range [][]string{{"-bogus"}, {}, {"fly"}, {"check", "-bogus"}} {
		if err := run(args, io.Discard, env); exitCode(err) != 2 {
			t.Errorf("drlctl %q = %v: exit status %d, want 2", args, err, exitCode(err))
		}
	}
	if exitCode(errors.New("unreachable")) != 1 || exitCode(nil) != 0 {
		t.Error("exit statuses of failure and success")
	}
}

// keys returns the field names of a JSON object, sorted.
func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// -json speaks the HTTP API's field names: members, owner, check, reset and
// top answer with the same fields as GET /v1/members, GET /v1/owner, POST
// /v1/ratelimit, POST /v1/reset and GET /v1/topdenied.
func TestJSONMatchesHTTP(t *testing.T) {
	nodes := clustertest.Start(t, 1, nil)
	addr, base := nodes[0].GRPCAddr(), "http://"+nodes[0].HTTPAddr()
	get := func(method, path, body string) json.RawMessage {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
		return b
	}
	ctlJSON := func(args ...string) json.RawMessage {
		t.Helper()
		out, err := ctl(t, addr, append([]string{"-json"}, args...)...)
		if err != nil {
			t.Fatalf("drlctl -json %q: %v", args, err)
		}
		return json.RawMessage(out)
	}
	same := func(what string, http, ctl json.RawMessage) {
		t.Helper()
		if h, c := keys(t, http), keys(t, ctl); !slices.Equal(h, c) {
			t.Errorf("%s: HTTP fields %q, drlctl -json fields %q", what, h, c)
		}
	}
	first := func(raw json.RawMessage, field string) json.RawMessage {
		t.Helper()
		var m map[string][]json.RawMessage
		json.Unmarshal(raw, &m)
		if len(m[field]) == 0 {
			t.Fatalf("no %s in %s", field, raw)
		}
		return m[field][0]
	}

	hm, cm := get("GET", "/v1/members", ""), ctlJSON("members")
	same("members", hm, cm)
	same("a member", first(hm, "members"), first(cm, "members"))
	if !strings.Contains(string(cm), `"in_ring": true`) {
		t.Errorf("drlctl -json members: %s", cm)
	}

	var ho, co map[string]json.RawMessage
	json.Unmarshal(get("GET", "/v1/owner?user_id=u&action=a", ""), &ho)
	json.Unmarshal(ctlJSON("owner", "-user", "u", "-action", "a"), &co)
	same("owner", must(json.Marshal(ho)), must(json.Marshal(co)))
	same("owner's member", ho["owner"], co["owner"])

	hc := get("POST", "/v1/ratelimit", `{"user_id":"u","action":"http","limit":5,"window":"60s"}`)
	cc := ctlJSON("check", "-user", "u", "-action", "ctl", "-limit", "5", "-window", "60s")
	same("check", hc, cc)

	same("reset", get("POST", "/v1/reset", `{"user_id":"u","action":"http"}`), ctlJSON("reset", "-user", "u", "-action", "ctl"))

	for range 3 {
		get("POST", "/v1/ratelimit", `{"user_id":"m","action":"login","limit":1,"window":"3600s"}`)
	}
	same("a top key", first(get("GET", "/v1/topdenied", ""), "keys"), first(ctlJSON("top"), "keys"))
}

func must(b []byte, err error) json.RawMessage {
	if err != nil {
		panic(err)
	}
	return b
}

// wait returns once every node named sees them all in its ring, and fails
// at its deadline otherwise, saying who is missing.
func TestWait(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	addrs := strings.Join(clustertest.GRPCAddrs(nodes), ",")
	start := time.Now()
	out, err := ctl(t, addrs, "wait")
	if err != nil || !strings.Contains(out, "node-0, node-1, node-2 each see 3 or more alive in their rings") {
		t.Fatalf("wait: %q %v", out, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("wait on a ready cluster took %v", took)
	}
	out, err = ctl(t, addrs, "-json", "wait", "-members", "2")
	var views struct {
		Nodes []nodeView `json:"nodes"`
	}
	if err != nil || json.Unmarshal([]byte(out), &views) != nil || len(views.Nodes) != 3 || !views.Nodes[2].Ready || views.Nodes[2].InRing != 3 {
		t.Fatalf("wait -members 2: %q %v", out, err)
	}
	_, err = ctl(t, addrs, "-timeout", "400ms", "wait", "-members", "4")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "sees 3 of 4 in its ring") {
		t.Fatalf("wait -members 4 = %v, want a failure naming 3 of 4", err)
	}
	// Nothing listens on this port: wait says so when its time is up.
	_, err = ctl(t, "127.0.0.1:1", "-timeout", "400ms", "wait")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1: ") {
		t.Fatalf("wait on a closed port = %v", err)
	}
}
