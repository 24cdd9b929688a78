package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// A node started with -envoy-rules answers Envoy's ShouldRateLimit, and
// takes new rules on SIGHUP; bad rules stop it at start-up with the rule
// named.
func TestEnvoyRulesAndReload(t *testing.T) {
	bin := buildNode(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(perMinute string) {
		body := "domain: edge\ndescriptors:\n  - key: remote_address\n    rate_limit: {unit: minute, requests_per_unit: " + perMinute + "}\n"
		if err := os.WriteFile(rules, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("2")
	p := startProc(t, bin, "a", "", "-envoy-rules", rules, "-envoy-addr", "127.0.0.1:0")
	var addr string
	select {
	case addr = <-p.envoyAddr:
	case <-time.After(10 * time.Second):
		t.Fatal("the Envoy service did not start")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rls := rlsv3.NewRateLimitServiceClient(conn)
	ask := func(ip string) *rlsv3.RateLimitResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := rls.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: ip}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i, want := range []rlsv3.RateLimitResponse_Code{rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT} {
		if got := ask("10.0.0.1").GetOverallCode(); got != want {
			t.Fatalf("request %d: %v, want %v", i, got, want)
		}
	}

	write("7")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ask("10.0.0.2").GetStatuses()[0].GetCurrentLimit().GetRequestsPerUnit() != 7 {
		if time.Now().After(deadline) {
			t.Fatal("the new rules did not take effect after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Bad rules: the process refuses to start and says which rule.
	os.WriteFile(rules, []byte("domain: edge\ndescriptors:\n  - key: remote_address\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n"), 0o644)
	out, err := exec.Command(bin, "-gossip-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-http-addr", "",
		"-envoy-rules", rules, "-envoy-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `descriptors[0] (remote_address): rate_limit: unit "fortnight"`) {
		t.Fatalf("bad rules: %v\n%s", err, out)
	}
}
