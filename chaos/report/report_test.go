package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlimit/drl/chaos"
)

// The report has a row per scenario, says which failed and why, and draws
// a picture for each.
func TestWrite(t *testing.T) {
	scenarios := chaos.Scenarios()
	ok := chaos.Result{Scenario: scenarios[0], Run: chaos.DefaultRun(1), Checks: 100, Admitted: 60,
		Exact: 38.3, Bound: 66, WorstKey: 51, FaultStart: 2 * time.Second, FaultEnd: 6 * time.Second,
		PerSecond: []int{70, 60, 65, 90, 80, 60, 60, 60, 61}}
	bad := ok
	bad.Scenario = scenarios[1]
	bad.Violations = []string{"key 3: 70 admitted, bound 66"}
	dir := t.TempDir()
	if err := Write(dir, "test run", []chaos.Result{ok, bad}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| [split-2/1](#split-21) | 100 | 60 | 38.3 | 66 | 51 | +12.7 |", "FAIL: key 3: 70 admitted, bound 66",
		"![split-3/2](split-3-2.svg)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, name := range []string{"split-2-1.svg", "split-3-2.svg"} {
		svg, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.Contains(string(svg), "<svg") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
