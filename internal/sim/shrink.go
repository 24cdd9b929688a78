package sim

import (
	"fmt"
	"strings"
)

// maxShrinkRuns bounds the runs one Shrink makes.
const maxShrinkRuns = 200

// Shrink looks for a smaller schedule of failed's seed that still breaks
// a bound: it drops faults one at a time, then keys, keeping each drop
// after which the run still fails. It returns the smallest failing run it
// found (failed itself if nothing could go).
func Shrink(cfg Config, failed Result) Result {
	cfg = cfg.withDefaults()
	best := failed
	runs := 0
	try := func(faults, keys []int) bool {
		if runs >= maxShrinkRuns {
			return false
		}
		runs++
		c := cfg
		c.Faults, c.Keys = faults, keys
		res, err := Run(c, failed.Seed)
		if err != nil || len(res.Violations) == 0 {
			return false
		}
		best = res
		return true
	}
	faults := faultIndexes(best.Schedule)
	keys := keyIndexes(best.Schedule)
	// Faults, last first: a later fault often only adds to an earlier one.
	for i := len(faults) - 1; i >= 0; i-- {
		fewer := append(append([]int{}, faults[:i]...), faults[i+1:]...)
		if try(fewer, keys) {
			faults = fewer
		}
	}
	// Keys: first only those a violation names, then one at a time.
	if named := namedKeys(best); len(named) > 0 && len(named) < len(keys) && try(faults, named) {
		keys = named
	}
	for i := len(keys) - 1; i >= 0 && len(keys) > 1; i-- {
		fewer := append(append([]int{}, keys[:i]...), keys[i+1:]...)
		if try(faults, fewer) {
			keys = fewer
		}
	}
	return best
}

func faultIndexes(s Schedule) []int {
	out := []int{}
	for _, f := range s.Faults {
		out = append(out, f.Index)
	}
	return out
}

func keyIndexes(s Schedule) []int {
	out := []int{}
	for _, k := range s.Keys {
		out = append(out, k.Index)
	}
	return out
}

// namedKeys are the keys the violations of res name.
func namedKeys(res Result) []int {
	seen := map[int]bool{}
	out := []int{}
	for _, v := range res.Violations {
		var k int
		if _, err := fmt.Sscanf(v.Detail, "key %d", &k); err == nil && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// ReplayCommand is the command line that replays res's schedule.
func ReplayCommand(cfg Config, res Result) string {
	cfg = cfg.withDefaults()
	return fmt.Sprintf("go run ./cmd/drlsim -seed %d -nodes %d -faults %s -keys %s", res.Seed, cfg.Nodes,
		list(faultIndexes(res.Schedule)), list(keyIndexes(res.Schedule)))
}

func list(xs []int) string {
	if len(xs) == 0 {
		return "none"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}
