// Command chaos runs the chaos suite (package chaos) and writes its report:
// a Markdown table and a timeline picture per scenario.
//
//	go run ./chaos/cmd/chaos -out docs/chaos            # the short run, ~2 min
//	go run ./chaos/cmd/chaos -out /tmp/chaos -fault 20s  # longer faults
//	go run ./chaos/cmd/chaos -run 'split|pause'          # some scenarios
//
// It exits non-zero if any scenario broke an invariant.
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
	var results []chaos.Result
	failed := 0
	for _, s := range chaos.Scenarios() {
		if !re.MatchString(s.Name) {
			continue
		}
		run := chaos.DefaultRun(seed)
		run.FaultFor = fault
		fmt.Fprintf(os.Stderr, "%-16s ", s.Name)
		res, err := chaos.RunScenario(ctx, s, run)
		if err != nil {
			return err
		}
		results = append(results, res)
		verdict := "pass"
		if !res.Passed() {
			verdict = fmt.Sprintf("FAIL %v", res.Violations)
			failed++
		}
		fmt.Fprintf(os.Stderr, "worst key %.0f (exact %.1f, bound %.0f), p99 %v, converged %v: %s\n",
			res.WorstKey, res.Exact, res.Bound, res.P99.Round(time.Millisecond), res.Converged.Round(time.Millisecond), verdict)
	}
	l := chaos.DefaultRun(seed).Load
	header := fmt.Sprintf("Run on %s, %d CPUs, %s; seed %d; faults of %v. Load: %d keys, each %d per %v (strict_window), "+
		"%d callers every %v through random live nodes; fail policy %v; check timeout %v.\n\n"+
		"Regenerate: `go run ./chaos/cmd/chaos -out %s -seed %d -fault %v`.",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), seed, fault,
		l.Keys, l.Limit, l.Window, l.Callers, l.Interval, l.FailPolicy, chaos.DefaultRun(seed).CheckTimeout, out, seed, fault)
	if err := report.Write(out, header, results); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "report in %s\n", out)
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios broke an invariant", failed, len(results))
	}
	return nil
}
