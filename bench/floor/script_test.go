package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/drlimit/drl/bench/internal/scripttest"
)

// bench/floor.sh runs end to end, briefly: every row of DESIGN.md §5's
// table gets a throughput, the round ends with its ratios to the floor
// (http rows to the HTTP floor), and the embedded row says its syscalls
// per forwarded check and checks per frame. The figures themselves are for
// DESIGN.md §5, not for a test.
func TestFloorScriptRuns(t *testing.T) {
	out := scripttest.Run(t, 20000, 9000, "../floor.sh", "1s", "1")
	rows := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "1" {
			if cps, err := strconv.ParseFloat(f[2], 64); err == nil && cps > 0 {
				rows[f[1]] = true
			}
		}
	}
	for _, row := range []string{"floor", "client", "client-rr", "client-batching", "embedded", "embedded-nobatch",
		"solo", "http-floor", "http", "http-batch", "http-solo", "floor-1", "client-1", "embedded-1"} {
		if !rows[row] {
			t.Errorf("no throughput for %s in:\n%s", row, out)
		}
	}
	if !strings.Contains(out, "the floor's checks/s") {
		t.Errorf("no ratios in:\n%s", out)
	}
	for _, want := range []string{"read+write syscalls per forwarded check", "checks per frame"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	for _, row := range []string{"http", "http-batch", "http-solo", "solo"} {
		if !strings.Contains(out, "  "+row+" ") {
			t.Errorf("no ratio line for %s in:\n%s", row, out)
		}
	}
}
