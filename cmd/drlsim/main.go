// Command drlsim runs the deterministic cluster simulator (internal/sim)
// over many seeds, or replays one.
//
//	drlsim -seeds 1000 -nodes 5        explore seeds 1 to 1000
//	drlsim -seed 42 -nodes 5           replay seed 42 and print its trace hash
//	drlsim -seed 42 -faults 0,2 -keys 3   replay a shrunk schedule
//
// It exits 1 if any run broke a bound, printing the seed, its schedule, a
// shrunk schedule that still fails and the command that replays it. On a
// terminal it shows progress.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drlimit/drl/internal/sim"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A run allocates a closure or two per event, all short-lived, and
		// keeps little: a larger heap target cuts the collector's share of
		// the CPU by about a fifth (user time of `GOMAXPROCS=1 drlsim
		// -seeds 100 -from 300001`, alternating GOGC=100 and 400 twice:
		// 4.1–4.6 s against 3.3–3.7 s).
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("drlsim", flag.ContinueOnError)
	seeds := fs.Uint64("seeds", 1000, "explore seeds from -from to -from+seeds-1")
	from := fs.Uint64("from", 1, "first seed to explore")
	seed := fs.Uint64("seed", 0, "replay this one seed (0: explore)")
	nodes := fs.Int("nodes", 5, "nodes at the start, 3 to 50")
	faults := fs.String("faults", "", "replay only these faults of the schedule (indexes, comma-separated)")
	keys := fs.String("keys", "", "replay only these keys of the schedule (indexes, comma-separated)")
	verbose := fs.Bool("v", false, "with -seed: print every fault, ring change and fallback")
	noShrink := fs.Bool("noshrink", false, "do not shrink a failing schedule")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := sim.Config{Nodes: *nodes}
	var err error
	if cfg.Faults, err = indexes(*faults); err != nil {
		fmt.Fprintln(os.Stderr, "drlsim: -faults:", err)
		return 2
	}
	if cfg.Keys, err = indexes(*keys); err != nil {
		fmt.Fprintln(os.Stderr, "drlsim: -keys:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "drlsim:", err)
		return 2
	}
	if *seed != 0 {
		return replay(cfg, *seed, *verbose)
	}
	return explore(cfg, *from, *seeds, !*noShrink)
}

func replay(cfg sim.Config, seed uint64, verbose bool) int {
	if verbose {
		cfg.Trace = func(line string) { fmt.Println(line) }
	}
	res, err := sim.Run(cfg, seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drlsim:", err)
		return 2
	}
	printSchedule(res.Schedule)
	fmt.Printf("checks=%d admitted=%d events=%d\n", res.Checks, res.Admitted, res.Events)
	for _, v := range res.Violations {
		fmt.Println("violation:", v)
	}
	fmt.Printf("trace=%016x\n", res.Trace)
	if len(res.Violations) > 0 {
		return 1
	}
	return 0
}

func explore(cfg sim.Config, from, count uint64, shrink bool) int {
	tty := false
	if st, err := os.Stdout.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	start := time.Now()
	var checks int
	violations := 0
	lastShown := time.Time{}
	worst := map[string]seedWorst{}
	for i := range count {
		seed := from + i
		res, err := sim.Run(cfg, seed)
		if err != nil {
			fmt.Fprintln(os.Stderr, "drlsim:", err)
			return 2
		}
		checks += res.Checks
		for class, w := range res.Worst {
			if w.Factor > worst[class].Factor {
				worst[class] = seedWorst{w, seed}
			}
		}
		if len(res.Violations) > 0 {
			violations++
			if tty {
				fmt.Print("\r\033[K")
			}
			report(cfg, res, shrink)
		}
		if tty && time.Since(lastShown) > 200*time.Millisecond {
			lastShown = time.Now()
			fmt.Printf("\r\033[Kseeds %d/%d  %.0f schedules/min  violations %d", i+1, count, perMin(i+1, start), violations)
		}
	}
	if tty {
		fmt.Print("\r\033[K")
	}
	printWorst(worst)
	fmt.Printf("seeds=%d violations=%d schedules_per_min=%.0f checks=%d\n", count, violations, perMin(count, start), checks)
	if violations > 0 {
		return 1
	}
	return 0
}

// seedWorst is a fault class's worst window over an exploration, and the
// seed it came from.
type seedWorst struct {
	sim.Worst
	seed uint64
}

// printWorst prints, per fault class, the most any window admitted, as a
// multiple of what one exact limiter admits in it.
func printWorst(worst map[string]seedWorst) {
	classes := make([]string, 0, len(worst))
	for c := range worst {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		w := worst[c]
		fmt.Printf("worst %-34s %.3f (seed %d key %d: %d admitted of %d)\n", c, w.Factor, w.seed, w.Key, w.Admitted, w.Limit)
	}
}

func perMin(n uint64, since time.Time) float64 {
	return float64(n) / time.Since(since).Minutes()
}

func report(cfg sim.Config, res sim.Result, shrink bool) {
	fmt.Printf("seed %d: %d violations\n", res.Seed, len(res.Violations))
	for _, v := range res.Violations {
		fmt.Println("  ", v)
	}
	printSchedule(res.Schedule)
	if !shrink {
		fmt.Printf("replay: go run ./cmd/drlsim -seed %d -nodes %d\n", res.Seed, cfg.Nodes)
		return
	}
	small := sim.Shrink(cfg, res)
	fmt.Println("shrunk:")
	for _, v := range small.Violations {
		fmt.Println("  ", v)
	}
	printSchedule(small.Schedule)
	fmt.Println("replay:", sim.ReplayCommand(cfg, small))
}

func printSchedule(s sim.Schedule) {
	for _, f := range s.Faults {
		fmt.Println("   fault", f)
	}
	for _, k := range s.Keys {
		fmt.Println("  ", k)
	}
}

func indexes(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	out := []int{}
	if s == "none" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || i < 0 {
			return nil, fmt.Errorf("%q is not an index", part)
		}
		out = append(out, i)
	}
	return out, nil
}
