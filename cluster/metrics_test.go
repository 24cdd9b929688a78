package cluster

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drlimit/drl/bucket"
)

func TestMetricsEndpoint(t *testing.T) {
	cfg := TestConfig("metered")
	cfg.HTTPAddr = "127.0.0.1:0"
	n := startNode(t, cfg)
	for range 3 {
		n.RateLimit(context.Background(), "u", "login", 2, time.Minute)
	}
	n.RateLimit(context.Background(), "", "login", 2, time.Minute) // an error
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`drl_checks_total{algorithm="strict_window",outcome="allowed"} 2`,
		`drl_checks_total{algorithm="strict_window",outcome="denied"} 1`,
		`drl_checks_total{algorithm="strict_window",outcome="error"} 1`,
		`drl_checks_owned_total 3`,
		`drl_members 1`,
		`drl_ready 1`,
		`drl_quorum 1`,
		`drl_members_failed 0`,
		`drl_keys 1`,
		`drl_forward_duration_seconds_count 0`,
		`drl_fallbacks_total{policy="local"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), `user="`) || strings.Contains(string(body), "login") {
		t.Error("a metric label carries a user or an action")
	}
}

// A node can register on the application's registry instead; two nodes in
// one process keep separate metrics (no package-level state).
func TestMetricsOnAnApplicationRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := TestConfig("embedded")
	cfg.Registerer = reg
	n := startNode(t, cfg)
	if n.MetricsHandler() != nil {
		t.Fatal("MetricsHandler with an application registry, want nil")
	}
	startNode(t, TestConfig("another")) // its own registry: no clash
	n.RateLimit(context.Background(), "u", "a", 1, time.Minute)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() == "drl_checks_total" {
			found = true
		}
	}
	if !found {
		t.Fatal("drl_checks_total not on the application's registry")
	}
	if got := len(n.metrics.checks); got != len(bucket.Algorithms()) {
		t.Fatalf("metrics count %d algorithms, bucket has %d", got, len(bucket.Algorithms()))
	}
}
