package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/drlimit/drl/certs"
	"github.com/drlimit/drl/certs/certstest"
	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"),
		goleak.IgnoreTopFunction("github.com/armon/go-metrics.(*InmemSink).run"))
}

// Every mode drives a real one-node cluster and reports what happened.
func TestLoadgenAgainstANode(t *testing.T) {
	cfg := cluster.TestConfig("target")
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())

	for _, tc := range []struct {
		mode  string
		extra []string
	}{{"client", nil}, {"embedded", nil}, {"http", nil}, {"http", []string{"-per-call", "5"}}, {"http", []string{"-h2c"}}} {
		mode, targets := tc.mode, n.GRPCAddr()
		if mode == "http" {
			targets = n.HTTPAddr()
		}
		o, err := parse(append([]string{"-mode", mode, "-targets", targets, "-join", n.GossipAddr(), "-expect-members", "0",
			"-duration", "300ms", "-concurrency", "4", "-keys", "5", "-limit", "5", "-quiet", "-algorithm", "fixed_window",
			"-action", mode + strings.Join(tc.extra, ""),
			// Exactness is the point here: no local fallback when the race
			// detector makes a check miss its deadline.
			"-fail-policy", "closed",
			"-pids", strconv.Itoa(os.Getpid())}, tc.extra...))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := run(context.Background(), o, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if rep.Checks == 0 || rep.Errors != 0 || rep.ChecksPerSec <= 0 || rep.P99us < rep.P50us {
			t.Fatalf("%s: report %+v", mode, rep)
		}
		// 5 keys, 5 each per minute: most checks are denied, even on a
		// machine so loaded that the run makes only a few dozen.
		if rep.AdmittedShare <= 0 || rep.AdmittedShare >= 1 {
			t.Fatalf("%s: admitted share %v, want between 0 and 1", mode, rep.AdmittedShare)
		}
		if rep.KeysOverLimit != 0 || rep.Admitted != rep.ExactAdmitted {
			t.Fatalf("%s: admitted %d, exact %d, %d keys over: a fixed window must be exact", mode, rep.Admitted, rep.ExactAdmitted, rep.KeysOverLimit)
		}
		if rep.NodeCPUPerCheck < 0 {
			t.Fatalf("%s: no CPU figure for -pids", mode)
		}
	}
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-mode", "x"}, {"-dist", "x"}, {"-dist", "zipf", "-zipf-s", "1"},
		{"-concurrency", "0"}, {"-algorithm", "x"}, {"-per-call", "0"}} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
	if _, err := parsePIDs("12,x"); err == nil {
		t.Error("parsePIDs accepted a non-number")
	}
	if _, err := cpuTime([]int{os.Getpid()}); err != nil {
		t.Errorf("cpuTime(self): %v", err)
	}
}

// Client mode against a node with TLS and tokens: -tls-ca and -token.
func TestClientModeWithTLSAndToken(t *testing.T) {
	ca := certstest.NewCA(t, "cluster")
	store, err := certs.Load(ca.Issue("target"))
	if err != nil {
		t.Fatal(err)
	}
	const token = "loadgen-token-0123456789"
	tokenPath := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokenPath, []byte(token+"\n"), 0o600)
	tokens, err := transport.LoadTokens(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.TestConfig("target")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.TLS, cfg.Tokens = store, tokens
	n, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	o, err := parse([]string{"-targets", n.GRPCAddr(), "-tls-ca", ca.File, "-token", token, "-duration", "200ms",
		"-concurrency", "2", "-keys", "20", "-quiet"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), o, io.Discard)
	if err != nil || rep.Checks == 0 || rep.Errors != 0 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	o.batching = true
	if rep, err := run(context.Background(), o, io.Discard); err != nil || rep.Checks == 0 || rep.Errors != 0 {
		t.Fatalf("with -client-batching: report %+v, %v", rep, err)
	}
	o.batching, o.ownerRouting = false, false
	if rep, err := run(context.Background(), o, io.Discard); err != nil || rep.Checks == 0 || rep.Errors != 0 {
		t.Fatalf("with -owner-routing=false: report %+v, %v", rep, err)
	}
	o.token = ""
	if _, err := run(context.Background(), o, io.Discard); err == nil {
		t.Fatal("no token, and yet the run went through")
	}
}
