// Package report writes the chaos suite's results: a Markdown table with
// one row per scenario of the main suite, a second for the hot-key
// scenarios, and a timeline picture per scenario (admitted checks per
// second against the exact rate, the fault marked).
package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/chaos"
)

// Write writes README.md and one PNG per scenario into dir, which it
// creates. header is printed above the tables (what ran, where, when).
// results are the main suite's (chaos.Scenarios), hot the hot-key
// scenarios' (chaos.HotKeyScenarios); either may be empty.
func Write(dir, header string, results, hot []chaos.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, r := range append(results[:len(results):len(results)], hot...) {
		if err := Timeline(filepath.Join(dir, pngName(r)), r); err != nil {
			return fmt.Errorf("report: %s: %w", r.Scenario.Name, err)
		}
	}
	f, err := os.Create(filepath.Join(dir, "README.md"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := Markdown(f, header, results, hot); err != nil {
		return err
	}
	return f.Close()
}

func pngName(r chaos.Result) string {
	return strings.NewReplacer("/", "-", "%", "pct", " ", "-").Replace(r.Scenario.Name) + ".png"
}

// Markdown writes both tables and links the pictures.
func Markdown(w io.Writer, header string, results, hot []chaos.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chaos report\n\n%s\n\n", header)
	all := append(results[:len(results):len(results)], hot...)
	if defaultPolicy(all) {
		b.WriteString("Every run uses the default fail policy, local: a check that cannot reach its key's owner in time is answered by a provisional bucket " +
			"on the node that received it, with the limit divided by the ring size (DESIGN.md §9).\n\n")
	} else {
		b.WriteString("Some runs set a fail policy other than the default, local; the bounds below assume local.\n\n")
	}
	b.WriteString("Per key, *exact* is what a perfect limiter admits over the run (Limit + refill over the run), and *bound* what DESIGN.md §14 allows under the fault:\n\n")
	b.WriteString("    bound = Exact + Extra × (Limit + refill over the fault)\n\n")
	b.WriteString("where the fault lasts from its start until every member agrees again, and Extra is the share of the limit the fault may add: ")
	b.WriteString("(N−1)/N for a fault that can take a key's owner away from the other members of N (a split, an isolated owner, a one-way cut, loss, latency, a crash, a pause; ")
	b.WriteString("flapping, once per cut), 1/3 for a 2|1 split with the owner on the majority side, 0 for a rolling restart or a join.\n\n")
	b.WriteString("Exact counts the limit's steady refill over the run. strict_window admits at most the limit in any rolling window, and a run lasts " +
		"about one window (the hot key's run, a small part of one), so a key held to its limit gets less than exact.\n\n")
	b.WriteString("Latency is of every check, the deadline being the check timeout plus scheduling grace. ")
	b.WriteString("*Converged* is the time from the fault's end until every member agreed on members and owners.\n")

	if len(results) > 0 {
		fmt.Fprintf(&b, "\n## Many keys\n\n%s\n\n", loadText(results[0].Run))
		b.WriteString("*Worst* is the most any key got, *over exact* the worst key's admissions beyond exact.\n\n")
		b.WriteString("| scenario | checks | admitted | exact/key | bound/key | worst/key | over exact | p99 | max | over deadline | errors | converged | result |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, r := range results {
			fmt.Fprintf(&b, "| [%s](#%s) | %d | %d | %.1f | %.0f | %.0f | %+.1f | %v | %v | %d | %d | %v | %s |\n",
				r.Scenario.Name, anchor(r.Scenario.Name), r.Checks, r.Admitted, r.Exact, r.Bound, r.WorstKey, r.WorstKey-r.Exact,
				ms(r.P99), ms(r.Max), r.OverDeadline, r.Errors, ms(r.Converged), verdict(r))
		}
	}
	if len(hot) > 0 {
		fmt.Fprintf(&b, "\n## One hot key\n\n%s Each fault is aimed at the hot key's owner.\n\n", loadText(hot[0].Run))
		b.WriteString("*Over* is what the key got beyond exact, as a share of its limit (0 when it got no more than exact); *extra* the share the bound allows.\n\n")
		b.WriteString("| scenario | checks | admitted | exact | bound | over | extra | p99 | converged | result |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, r := range hot {
			over := max(r.WorstKey-r.Exact, 0) / float64(r.Run.Load.Limit)
			fmt.Fprintf(&b, "| [%s](#%s) | %d | %d | %.1f | %.0f | %+.2f | %.2f | %v | %v | %s |\n",
				r.Scenario.Name, anchor(r.Scenario.Name), r.Checks, r.Admitted, r.Exact, r.Bound, over, r.Scenario.Extra(r.Run),
				ms(r.P99), ms(r.Converged), verdict(r))
		}
	}

	if len(all) > 0 {
		b.WriteString("\n## Timelines\n")
	}
	for _, r := range all {
		fmt.Fprintf(&b, "\n### %s\n\n%s. Fault from %.1f s to %.1f s of the load; %d goroutines left after the cluster closed.\n\n![%s](%s)\n",
			r.Scenario.Name, r.Scenario.Description, r.FaultStart.Seconds(), r.FaultEnd.Seconds(), r.Goroutines, r.Scenario.Name, pngName(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func verdict(r chaos.Result) string {
	if r.Passed() {
		return "pass"
	}
	return "FAIL: " + strings.Join(r.Violations, "; ")
}

// loadText says what load a run drives.
func loadText(r chaos.Run) string {
	l := r.Load
	return fmt.Sprintf("Load: %s (strict_window, the default), %d callers every %v through random live nodes; check timeout %v.",
		loadShape(l), l.Callers, l.Interval, r.CheckTimeout)
}

// defaultPolicy reports whether every run leaves the fail policy at its
// default, local, which the bounds assume.
func defaultPolicy(results []chaos.Result) bool {
	for _, r := range results {
		if r.Run.Load.FailPolicy != drl.FailDefault {
			return false
		}
	}
	return true
}

func anchor(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return -1
	}, strings.ToLower(name))
}

// ms rounds d to milliseconds, or to 10 µs below a millisecond so that
// a fast check does not read 0s.
func ms(d time.Duration) string {
	if d > 0 && d < time.Millisecond {
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
