// Command chaos runs the chaos suite (package chaos) and writes its report:
// a Markdown table for the main suite, one for the hot-key scenarios, and a
// timeline picture per scenario.
//
//	go run ./chaos/cmd/chaos -out docs/chaos            # the short run, ~2.5 min
//	go run ./chaos/cmd/chaos -out /tmp/chaos -fault 20s  # longer faults
//	go run ./chaos/cmd/chaos -run 'split|pause'          # some scenarios
//
// The main suite (chaos.Scenarios) runs under chaos.DefaultRun, the
// hot-key scenarios (chaos.HotKeyScenarios) under chaos.HotKeyRun. It
// exits non-zero if any scenario broke an invariant.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"time"

	"github.com/drlimit/drl/chaos"
	"github.com/drlimit/drl/chaos/report"
)

func main() {
	out := flag.String("out", "chaos-report", "folder for the report")
	seed := flag.Uint64("seed", 1, "seed of every random choice")
	fault := flag.Duration("fault", 4*time.Second, "length of each timed fault")
	match := flag.String("run", "", "only scenarios whose name matches this regular expression")
	flag.Parse()
	if err := run(*out, *seed, *fault, *match); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(out string, seed uint64, fault time.Duration, match string) error {
	re, err := regexp.Compile(match)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	began := time.Now()
	base := chaos.DefaultRun(seed)
	base.FaultFor = fault
	results, err := suite(ctx, chaos.Scenarios(), base, re)
	if err != nil {
		return err
	}
	hotRun := chaos.HotKeyRun(seed)
	hotRun.FaultFor = fault
	hot, err := suite(ctx, chaos.HotKeyScenarios(), hotRun, re)
	if err != nil {
		return err
	}
	took := time.Since(began).Round(time.Second)

	header := fmt.Sprintf("Run on %s, %d CPUs, %s; seed %d; faults of %v; the whole run took %v.\n\n"+
		"Regenerate: `go run ./chaos/cmd/chaos -out %s -seed %d -fault %v`.",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), seed, fault, took, out, seed, fault)
	if err := report.Write(out, header, results, hot); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "report in %s; took %v\n", out, took)
	failed := 0
	for _, r := range append(results, hot...) {
		if !r.Passed() {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios broke an invariant", failed, len(results)+len(hot))
	}
	return nil
}

// suite runs the scenarios whose name re matches, each under run, and
// prints a line per scenario as it ends.
func suite(ctx context.Context, scenarios []chaos.Scenario, run chaos.Run, re *regexp.Regexp) ([]chaos.Result, error) {
	var results []chaos.Result
	for _, s := range scenarios {
		if !re.MatchString(s.Name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "%-30s ", s.Name)
		res, err := chaos.RunScenario(ctx, s, run)
		if err != nil {
			return results, err
		}
		results = append(results, res)
		verdict := "pass"
		if !res.Passed() {
			verdict = fmt.Sprintf("FAIL %v", res.Violations)
		}
		fmt.Fprintf(os.Stderr, "worst key %.0f (exact %.1f, bound %.0f), p99 %v, converged %v: %s\n",
			res.WorstKey, res.Exact, res.Bound, res.P99.Round(time.Millisecond), res.Converged.Round(time.Millisecond), verdict)
	}
	return results, nil
}
