package main

import (
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bench/floor.sh runs end to end, briefly: every row of DESIGN.md §5's
// table gets a throughput, the round ends with its ratios to the floor
// (http rows to the HTTP floor), and the embedded row says its syscalls
// per forwarded check and checks per frame. The figures themselves are for
// DESIGN.md §5, not for a test.
func TestFloorScriptRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs a cluster for about 30 s")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	// Below Linux's ephemeral range, so no port-0 listener of another
	// test takes one of ours.
	base := 20000 + 100*rand.IntN(90)
	cmd := exec.Command("bash", "../floor.sh", "1s", "1")
	cmd.Env = append(cmd.Environ(), "BENCH_PORT="+strconv.Itoa(base))
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("floor.sh: %v\n%s", err, out)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
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
	if !strings.Contains(string(out), "the floor's checks/s") {
		t.Errorf("no ratios in:\n%s", out)
	}
	for _, want := range []string{"read+write syscalls per forwarded check", "checks per frame"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	for _, row := range []string{"http", "http-batch", "http-solo", "solo"} {
		if !strings.Contains(string(out), "  "+row+" ") {
			t.Errorf("no ratio line for %s in:\n%s", row, out)
		}
	}
}
