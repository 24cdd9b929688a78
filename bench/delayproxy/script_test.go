package main

import (
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bench/latency.sh runs end to end, briefly: both runs, without and with
// the added round trip, report their throughput, checks per frame and the
// delay the proxies achieved. The figures are for DESIGN.md §5.
func TestLatencyScriptRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs two clusters for about 20 s")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	// Below Linux's ephemeral range, so no port-0 listener of another
	// test takes one of ours.
	base := 29000 + 100*rand.IntN(35)
	cmd := exec.Command("bash", "../latency.sh", "1s", "2ms")
	cmd.Env = append(cmd.Environ(), "BENCH_PORT="+strconv.Itoa(base))
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("latency.sh: %v\n%s", err, out)
	}
	for _, run := range []string{"no-delay", "rtt-2ms"} {
		var line string
		for l := range strings.Lines(string(out)) {
			if strings.HasPrefix(l, run+" ") {
				line = l
			}
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("no %s run in:\n%s", run, out)
		}
		if cps, err := strconv.ParseFloat(f[1], 64); err != nil || cps <= 0 {
			t.Errorf("%s: no throughput in %q", run, line)
		}
		for _, want := range []string{"checks per frame", "chunks held"} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: no %q in %q", run, want, line)
			}
		}
	}
}
