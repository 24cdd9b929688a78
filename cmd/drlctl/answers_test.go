package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/drlimit/drl/cluster/clustertest"
)

// Flags go after the command too, and -json prints what the HTTP API
// answers: its durations ("59.999s", not "59.999487250s"), [] for an
// empty list (not null), and who decided a check.
func TestFlagsAfterTheCommandAndJSONAsHTTP(t *testing.T) {
	nodes := clustertest.Start(t, 1, nil)
	addr := nodes[0].GRPCAddr()
	out, err := ctl(t, addr, "members", "-json")
	if err != nil {
		t.Fatalf("drlctl members -json: %v", err)
	}
	var members struct {
		Quorum struct{ Failed json.RawMessage }
	}
	if err := json.Unmarshal([]byte(out), &members); err != nil || string(members.Quorum.Failed) != "[]" {
		t.Fatalf("drlctl members -json = %s (%v), want JSON with quorum.failed []", out, err)
	}

	resp, err := http.Post("http://"+nodes[0].HTTPAddr()+"/v1/ratelimit", "application/json",
		strings.NewReader(`{"user_id":"u","action":"a","limit":5,"window":60}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out, err = ctl(t, addr, "check", "-user", "u", "-action", "a", "-limit", "5", "-window", "60", "-json")
	if err != nil {
		t.Fatalf("drlctl check ... -window 60 -json: %v", err)
	}
	var h, c map[string]any
	json.Unmarshal(b, &h)
	json.Unmarshal([]byte(out), &c)
	ms := regexp.MustCompile(`^\d+(\.\d{3})?s$`)
	for _, f := range []string{"reset_after", "retry_after"} {
		hs, _ := h[f].(string)
		cs, _ := c[f].(string)
		if !ms.MatchString(hs) || !ms.MatchString(cs) {
			t.Errorf("%s: HTTP %q, drlctl %q; want both in whole milliseconds, as \"59.999s\"", f, hs, cs)
		}
	}
	if h["decided_by"] != "owner" || c["decided_by"] != "owner" || c["remaining"] != 3.0 {
		t.Errorf("HTTP answered %s, drlctl %s; want both decided by the owner, the second with 3 left", b, out)
	}
	if out, err := ctl(t, addr, "check", "-user", "u", "-action", "a", "-limit", "5", "-window", "60"); err != nil || !strings.Contains(out, "decided by owner") {
		t.Errorf("drlctl check = %q, %v; want it to say who decided", out, err)
	}
}

// forget of a member nobody counts as failed is an error, and nothing on
// stdout claims it was forgotten; with -json, after the name, the lists
// are [] rather than null.
func TestForgetNobody(t *testing.T) {
	nodes := clustertest.Start(t, 1, nil)
	addr := nodes[0].GRPCAddr()
	out, err := ctl(t, addr, "forget", "nosuch")
	if err == nil || strings.Contains(out, "forgotten by") {
		t.Fatalf("drlctl forget nosuch = %q, %v; want an error and no \"forgotten by\"", out, err)
	}
	out, err = ctl(t, addr, "forget", "nosuch", "-json")
	var lists map[string]json.RawMessage
	if json.Unmarshal([]byte(out), &lists); err == nil || string(lists["forgotten_by"]) != "[]" || string(lists["unreachable"]) != "[]" {
		t.Fatalf("drlctl forget nosuch -json = %q, %v; want an error and empty lists", out, err)
	}
}

// Pointed at a node's HTTP port, drlctl says so in one line, rather than
// "http2: frame too large".
func TestHTTPPortHint(t *testing.T) {
	nodes := clustertest.Start(t, 1, nil)
	// A node's HTTP port takes HTTP/2 without TLS, and answers 404; a
	// server of HTTP/1.1 alone (behind a proxy, say) answers with what
	// gRPC reads as a frame too large.
	http1 := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(http1.Close)
	for _, addr := range []string{nodes[0].HTTPAddr(), http1.Listener.Addr().String()} {
		_, err := ctl(t, addr, "members")
		if err == nil || !strings.Contains(err.Error(), "HTTP port") || strings.Contains(err.Error(), "\n") {
			t.Errorf("drlctl members against an HTTP port: %v; want a one-line hint", err)
		}
	}
}
