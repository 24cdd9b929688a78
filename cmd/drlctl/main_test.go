package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/certs"
	"github.com/drlimit/drl/certs/certstest"
	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/cluster/clustertest"
	"github.com/drlimit/drl/transport"
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
	// -window in seconds reads as the HTTP API reads it: the same bucket.
	out, err = ctl(t, addrs, "check", "-user", "u1", "-action", "login", "-limit", "2", "-window", "3600")
	if err != nil || !strings.HasPrefix(out, "denied") {
		t.Fatalf("check -window 3600 after two of -window 1h: %q %v, want denied (the same bucket)", out, err)
	}

	out, err = ctl(t, addrs, "members")
	if err != nil || strings.Count(out, "alive") != 3 {
		t.Fatalf("members: %q %v", out, err)
	}
	// Reaching every member and finding nobody counting it as failed is
	// an answer, not a usage error.
	if out, err := ctl(t, addrs, "forget", "nobody"); err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "no member counts") {
		t.Fatalf("forget of a member nobody counts as failed: %q %v, want the members' answer", out, err)
	}
	out, err = ctl(t, addrs, "owner", "-user", "u1", "-action", "login")
	o, _ := nodes[0].OwnerOf("u1", "login")
	if err != nil || !strings.HasPrefix(out, o.Member.Name) {
		t.Fatalf("owner: %q %v, want %s", out, err, o.Member.Name)
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
			User   string `json:"user_id"`
			Denied uint64 `json:"denied"`
		} `json:"keys"`
		Members []string `json:"members"`
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

// Against nodes with TLS and tokens, drlctl needs -tls-ca and a token
// (-token or DRL_TOKEN).
func TestTLSAndToken(t *testing.T) {
	ca := certstest.NewCA(t, "cluster")
	dir := t.TempDir()
	const token = "ctl-token-0123456789abcdef"
	tokenPath := filepath.Join(dir, "tokens")
	os.WriteFile(tokenPath, []byte(token+"\n"), 0o600)
	tokens, err := transport.LoadTokens(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	nodes := clustertest.Start(t, 1, func(c *cluster.Config) {
		store, err := certs.Load(ca.Issue(c.Name))
		if err != nil {
			t.Fatal(err)
		}
		c.TLS, c.Tokens = store, tokens
	})
	addr := nodes[0].GRPCAddr()
	ctlEnv := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"-addr", addr, "-timeout", "2s"}, args...), &out, func(k string) string { return env[k] })
		return out.String(), err
	}
	if out, err := ctlEnv(nil, "-tls-ca", ca.File, "-token", token, "members"); err != nil || !strings.Contains(out, "node-0") {
		t.Fatalf("members with TLS and a token: %q %v", out, err)
	}
	if out, err := ctlEnv(map[string]string{"DRL_TOKEN": token}, "-tls-ca", ca.File, "members"); err != nil || !strings.Contains(out, "node-0") {
		t.Fatalf("members with DRL_TOKEN: %q %v", out, err)
	}
	if _, err := ctlEnv(nil, "-tls-ca", ca.File, "members"); !errors.Is(err, drl.ErrUnauthenticated) {
		t.Fatalf("members without a token: %v", err)
	}
	if _, err := ctlEnv(nil, "-token", token, "members"); err == nil {
		t.Fatal("members over plaintext to a TLS node answered")
	}
	if _, err := ctlEnv(nil, "-tls-ca", filepath.Join(dir, "missing.pem"), "members"); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}

// forget NAME reaches every live member and makes them stop counting a
// crashed one.
func TestForgetACrashedMember(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	addrs := strings.Join(clustertest.GRPCAddrs(nodes[:2]), ",")
	gone := nodes[2].Name()
	nodes[2].Halt()
	deadline := time.Now().Add(15 * time.Second)
	for {
		q0, q1 := nodes[0].Quorum(), nodes[1].Quorum()
		if len(q0.Failed) == 1 && len(q1.Failed) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not counted as failed: %+v, %+v", gone, q0, q1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := ctl(t, addrs, "forget", gone)
	if err != nil || !strings.Contains(out, "forgotten by") {
		t.Fatalf("forget %s: %q %v", gone, out, err)
	}
	// Each member recounts on its next ring rebuild, moments later.
	for _, n := range nodes[:2] {
		for q := n.Quorum(); len(q.Failed) != 0; q = n.Quorum() {
			if time.Now().After(deadline) {
				t.Fatalf("%s still counts %v as failed after %q", n.Name(), q.Failed, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
