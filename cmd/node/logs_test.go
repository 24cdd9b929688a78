package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// JSON logs give durations as strings, as the text logs and the HTTP API
// do, and errors on one line.
func TestJSONLogsAreReadable(t *testing.T) {
	var b bytes.Buffer
	logger, err := newLogger(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("took", "took", 1500*time.Millisecond, "err", errors.Join(errors.New("first"), errors.New("second")))
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("%q: %v", b.String(), err)
	}
	if rec["took"] != "1.5s" || rec["err"] != "first; second" {
		t.Fatalf("logged %s, want took \"1.5s\" and err \"first; second\"", b.String())
	}
}

// A node that has not joined anyone (its seed is not there) answers each
// check by its fail policy, 200 with decided_by fail_policy and
// fallback_reason no_ring, as the README says; /readyz answers 503; and
// its failed join is one log line.
func TestUnjoinedNodeAnswersByFailPolicy(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	var logs syncBuffer
	done := make(chan error, 1)
	args := append(append([]string{}, loopback...), "-join", "127.0.0.1:1", "-log-format", "json", "-rejoin-interval", "1h")
	go func() { done <- run(args, func(string) string { return "" }, sigs, io.Discard, &logs) }()
	t.Cleanup(func() {
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var httpAddr string
	failed := 0
	deadline := time.Now().Add(10 * time.Second)
	for httpAddr == "" || failed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no start and failed join within 10 s:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
		failed = 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if l == "" {
				continue // the empty log, or after the last line
			}
			var rec struct{ Msg, HTTP, Err string }
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log line %q is not one JSON object: %v", l, err)
			}
			switch rec.Msg {
			case "node started":
				httpAddr = rec.HTTP
			case "join failed; retrying":
				failed++
				if strings.ContainsAny(rec.Err, "\n\t") || strings.Contains(rec.Err, "error occurred") {
					t.Fatalf("failed join's err = %q, want one line", rec.Err)
				}
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d lines for one failed join, want 1:\n%s", failed, logs.String())
	}
	resp, err := http.Post("http://"+httpAddr+"/v1/ratelimit", "application/json",
		strings.NewReader(`{"user_id":"u1","action":"login","limit":5,"window":"60s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out["allowed"] != false || out["decided_by"] != "fail_policy" || out["fallback_reason"] != "no_ring" {
		t.Fatalf("check on an unjoined node = %d %v, want 200, denied by fail_policy for no_ring", resp.StatusCode, out)
	}
	if resp, err := http.Get("http://" + httpAddr + "/readyz"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("/readyz of an unjoined node = %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
}
