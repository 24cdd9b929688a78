package report

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlimit/drl/chaos"
)

// The report has a row per scenario in each table, says which failed and
// why, states the policy and the bound, and draws a picture for each.
func TestWrite(t *testing.T) {
	scenarios := chaos.Scenarios()
	ok := chaos.Result{Scenario: scenarios[0], Run: chaos.DefaultRun(1), Checks: 100, Admitted: 60,
		Exact: 38.3, Bound: 66, WorstKey: 51, FaultStart: 2 * time.Second, FaultEnd: 6 * time.Second,
		PerSecond: []int{70, 60, 65, 90, 80, 60, 60, 60, 61}}
	bad := ok
	bad.Scenario = scenarios[1]
	bad.Violations = []string{"key 3: 70 admitted, bound 66"}
	hotScenarios := chaos.HotKeyScenarios()
	hot := chaos.Result{Scenario: hotScenarios[1], Run: chaos.HotKeyRun(1), Checks: 20000, Admitted: 1663,
		Exact: 1002.7, Bound: 1671, WorstKey: 1663, P99: 201 * time.Millisecond, Converged: 180 * time.Millisecond,
		FaultStart: 2 * time.Second, FaultEnd: 6 * time.Second, PerSecond: []int{1000, 0, 0, 400, 200, 60, 0, 0, 1}}
	under := hot
	under.Scenario = hotScenarios[5]
	under.Admitted, under.WorstKey, under.Bound = 1001, 1001, 1002
	dir := t.TempDir()
	if err := Write(dir, "test run", []chaos.Result{ok, bad}, []chaos.Result{hot, under}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| [split-2/1](#split-21) | 100 | 60 | 38.3 | 66 | 51 | +12.7 |", "FAIL: key 3: 70 admitted, bound 66",
		"the default fail policy, local", "bound = Exact + Extra × (Limit + refill over the fault)",
		"Load: 30 keys × 20 per 10s (strict_window, the default)", "Load: 1 key × 1000 per 1h (strict_window, the default)",
		"| [hot-split-2/1-owner-alone](#hot-split-21-owner-alone) | 20000 | 1663 | 1002.7 | 1671 | +0.66 | 0.67 | 201ms | 180ms | pass |",
		"| [hot-rolling-restart](#hot-rolling-restart) | 20000 | 1001 | 1002.7 | 1002 | +0.00 | 0.00 |",
		"![split-3/2](split-3-2.png)", "![hot-split-2/1-owner-alone](hot-split-2-1-owner-alone.png)",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "(token bucket") {
		t.Errorf("report names the token bucket, not the default strict_window:\n%s", md)
	}
	for _, name := range []string{"split-2-1.png", "split-3-2.png", "hot-split-2-1-owner-alone.png", "hot-rolling-restart.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := img.Bounds().Dx(); got != 768 {
			t.Errorf("%s is %d pixels wide, want 768", name, got)
		}
	}
}

// Nothing is drawn in the image's rightmost column: the legend and the
// time axis's last label used to run off the right edge.
func TestTimelineFitsImage(t *testing.T) {
	r := chaos.Result{Scenario: chaos.Scenarios()[0], Run: chaos.DefaultRun(1), FaultStart: 2 * time.Second,
		FaultEnd: 6 * time.Second, PerSecond: []int{700, 60, 65, 90, 80, 60, 60, 60, 61, 60, 60, 58}}
	path := filepath.Join(t.TempDir(), "t.png")
	if err := Timeline(path, r); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	for x := b.Max.X - 4; x < b.Max.X; x++ {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || bl != 0xffff {
				t.Fatalf("pixel (%d, %d) near the right edge is drawn on: %v", x, y, img.At(x, y))
			}
		}
	}
}

// The time axis runs to the end of the load, past the last second that
// admitted anything.
func TestTimelineRunsToLoadEnd(t *testing.T) {
	r := chaos.Result{Scenario: chaos.HotKeyScenarios()[0], Run: chaos.HotKeyRun(1), FaultStart: 2 * time.Second,
		FaultEnd: 6 * time.Second, Converged: 200 * time.Millisecond, PerSecond: []int{1000}}
	p, _, err := timeline(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := 10.0; p.X.Max != want { // 6 s + 0.2 s + 3 s of cool-down, in whole seconds
		t.Errorf("timeline ends at %v s, want %v", p.X.Max, want)
	}
}
