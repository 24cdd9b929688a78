package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/drlimit/drl/bench/internal/scripttest"
)

// bench/latency.sh runs end to end, briefly: both runs, without and with
// the added round trip, report their throughput, checks per frame and the
// delay the proxies achieved. The figures are for DESIGN.md §5.
func TestLatencyScriptRuns(t *testing.T) {
	out := scripttest.Run(t, 29000, 3500, "../latency.sh", "1s", "2ms")
	for _, run := range []string{"no-delay", "rtt-2ms"} {
		var line string
		for l := range strings.Lines(out) {
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
