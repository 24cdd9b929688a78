package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster/clustertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctl(t *testing.T, addrs string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(append([]string{"-addr", addrs}, args...), &out, func(string) string { return "" })
	return out.String(), err
}

// Every command against a real three-node cluster.
func TestCommands(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	addrs := strings.Join(clustertest.GRPCAddrs(nodes), ",")

	out, err := ctl(t, addrs, "check", "-user", "u1", "-action", "login", "-limit", "2", "-window", "1h")
	if err != nil || !strings.HasPrefix(out, "allowed") || !strings.Contains(out, "remaining 1 of 2") {
		t.Fatalf("check: %q %v", out, err)
	}
	ctl(t, addrs, "check", "-user", "u1", "-action", "login", "-limit", "2", "-window", "1h")
	out, err = ctl(t, addrs, "-json", "check", "-user", "u1", "-action", "login", "-limit", "2", "-window", "1h")
	var d struct{ Allowed bool }
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Allowed {
		t.Fatalf("third check: %q %v", out, err)
	}

	out, err = ctl(t, addrs, "members")
	if err != nil || strings.Count(out, "alive") != 3 {
		t.Fatalf("members: %q %v", out, err)
	}
	out, err = ctl(t, addrs, "owner", "-user", "u1", "-action", "login")
	m, _, _ := nodes[0].OwnerOf("u1", "login")
	if err != nil || !strings.HasPrefix(out, m.Name) {
		t.Fatalf("owner: %q %v, want %s", out, err, m.Name)
	}

	// Denials enter through different nodes; top sums them.
	for i, n := range nodes {
		for range 3 + i {
			n.Check(context.Background(), bucket.Request{UserID: "mallory", Action: "login", Limit: 1, Window: time.Hour, Hits: 1})
		}
	}
	out, err = ctl(t, addrs, "-json", "top", "-n", "1")
	var topOut struct {
		Keys []struct {
			User   string
			Denied uint64
		}
		Members []string
	}
	if err != nil || json.Unmarshal([]byte(out), &topOut) != nil || len(topOut.Keys) != 1 ||
		topOut.Keys[0].User != "mallory" || topOut.Keys[0].Denied != 3+4+5-1 || len(topOut.Members) != 3 {
		t.Fatalf("top: %q %v", out, err)
	}

	out, err = ctl(t, addrs, "reset", "-user", "u1", "-action", "login")
	if err != nil || !strings.Contains(out, "1 live bucket(s) dropped") {
		t.Fatalf("reset: %q %v", out, err)
	}
	if out, _ := ctl(t, addrs, "check", "-user", "u1", "-action", "login", "-limit", "2", "-window", "1h"); !strings.HasPrefix(out, "allowed") {
		t.Fatalf("check after reset: %q", out)
	}
}

func TestUsageAndBadInput(t *testing.T) {
	nodes := clustertest.Start(t, 1, nil)
	addr := nodes[0].GRPCAddr()
	for _, args := range [][]string{{}, {"fly"}, {"owner", "-user", "u"}, {"members", "extra"}, {"top", "-n", "0"},
		{"check", "-user", "u", "-action", "a", "-bogus"}} {
		if _, err := ctl(t, addr, args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	_, err := ctl(t, addr, "check", "-user", "u", "-action", "a", "-limit", "0", "-window", "1m")
	if !errors.Is(err, bucket.ErrInvalidArgument) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("limit 0: %v", err)
	}
	if _, err := ctl(t, addr, "check", "-user", "u", "-action", "a", "-limit", "1", "-window", "1m", "-algorithm", "leaky"); !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("unknown algorithm: %v", err)
	}
}
