package sim

import (
	"testing"
)

// shortSeeds is the fixed set of seeds go test -short runs; the full run
// explores more.
func shortSeeds() uint64 {
	if testing.Short() {
		return 60
	}
	return 400
}

// TestSeeds runs a fixed set of seeds of 5-node clusters through the
// oracle: any violation fails.
func TestSeeds(t *testing.T) {
	var checks int
	for seed := uint64(1); seed <= shortSeeds(); seed++ {
		res, err := Run(Config{}, seed)
		if err != nil {
			t.Fatal(err)
		}
		checks += res.Checks
		for _, v := range res.Violations {
			t.Errorf("seed %d: %v (replay: go run ./cmd/drlsim -seed %d)", seed, v, seed)
		}
	}
	t.Logf("%d seeds, %d checks", shortSeeds(), checks)
}

// TestFixedSeeds replays the seeds of every bug the simulator found and
// the core fixed: each must pass.
func TestFixedSeeds(t *testing.T) {
	fixed := map[uint64]string{
		52:    "an instance replaced by a newer one of its name is taken over",
		104:   "lent hits stay lent hits on the wire (a restart admitted 110 of 108)",
		243:   "credits go with their key when its ownership moves first",
		362:   "an instance replaced by a newer one of its name is taken over",
		589:   "no share for a key taken over within its window",
		595:   "credits go with their key (a rolling restart admitted 46 of 24)",
		2931:  "a node's lent hits of a key it owns again are credited to the key (15 of 14)",
		2484:  "a takeover counts the members failed since (1|1|3: 44 admitted of 43)",
		299:   "a done mark lost to a cut is asked for again (a view stayed unsettled)",
		3704:  "a done mark lost to a cut is asked for again (a taken-over key stayed on the fail policy: 52 of 48)",
		997:   "a joiner's keys whose owner failed before handing them over are taken over",
		14871: "an old instance never takes back the place its newer instance left (26 of 24)",
		5371:  "a one-way cut failed a joiner's handoff (13 of 12); passes on split-brain's allowance alone, so TestOwedHandoffArrivesWithDoneMark holds the owed handoff to 2L",
		44052: "oracle: split-brained gossip adds one owner to what the faults cost (13 of 12)",
		74564: "lent hits a failed handoff gave back after a newer plan are passed on at once (282 of 259)",
	}
	for seed, what := range fixed {
		res, err := Run(Config{}, seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Violations {
			t.Errorf("seed %d (%s): %v", seed, what, v)
		}
	}
}

// TestReplayIsExact: the same seed makes the same run, event for event.
func TestReplayIsExact(t *testing.T) {
	for _, seed := range []uint64{3, 7, 52} {
		a, err := Run(Config{}, seed)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Run(Config{}, seed)
		if a.Trace != b.Trace || a.Admitted != b.Admitted || a.Checks != b.Checks || a.Events != b.Events {
			t.Errorf("seed %d: runs differ: trace %x/%x admitted %d/%d checks %d/%d", seed, a.Trace, b.Trace, a.Admitted, b.Admitted, a.Checks, b.Checks)
		}
	}
}

// TestScheduleShape: a 5-node schedule lasts 60 s of virtual time with
// at least 5,000 checks.
func TestScheduleShape(t *testing.T) {
	low := 0
	for seed := uint64(1); seed <= 20; seed++ {
		res, _ := Run(Config{}, seed)
		if res.Checks < 5000 {
			low++
			t.Logf("seed %d: %d checks", seed, res.Checks)
		}
	}
	if low > 2 {
		t.Errorf("%d of 20 schedules had fewer than 5,000 checks", low)
	}
}

// TestQuietSchedulesAreExact: with no fault, every key admits exactly
// what one limiter would, and every check is answered in time.
func TestQuietSchedulesAreExact(t *testing.T) {
	for seed := uint64(10); seed <= 100; seed += 10 {
		res, err := Run(Config{Nodes: 3 + int(seed/10)%5}, seed)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Schedule.Faults) != 0 {
			t.Fatalf("seed %d: %d faults, want a quiet schedule", seed, len(res.Schedule.Faults))
		}
		for _, v := range res.Violations {
			t.Errorf("seed %d: %v", seed, v)
		}
		if w := res.Worst["none"]; w.Factor > 1 {
			t.Errorf("seed %d: worst window %d of %d", seed, w.Admitted, w.Limit)
		}
	}
}

// TestRestartTakesOverFromPredecessor is the regression test of the
// simulator's seed 52 (shrunk: its one fault, a restart of n4 without a
// snapshot, and key 29, 288 per minute, exhausted before it): the new
// instance started the key fresh and 600 were admitted in a window. With
// the takeover from its predecessor it starts from the failed side's share
// spent: 542, of which 24 are hits the others lent themselves and handed
// to the crashed instance, which are still lost (a finding left open).
func TestRestartTakesOverFromPredecessor(t *testing.T) {
	res, err := Run(Config{Faults: []int{0}, Keys: []int{29}}, 52)
	if err != nil {
		t.Fatal(err)
	}
	if res.Admitted > 542 {
		t.Errorf("seed 52, restart of the owner: admitted %d, want at most 542 (600 before the fix)", res.Admitted)
	}
}

// TestOwedHandoffArrivesWithDoneMark is the regression test of seed 5371
// (key 9, 6 per 10 s, exhausted): a one-way cut failed the handoff of the
// key's spent bucket to the restarted owner, which started it from its
// takeover seed and admitted 13 in a window. The bucket is now owed and
// sent again with the sender's done mark, which the owner waits for.
func TestOwedHandoffArrivesWithDoneMark(t *testing.T) {
	res, err := Run(Config{Keys: []int{9}}, 5371)
	if err != nil {
		t.Fatal(err)
	}
	for class, w := range res.Worst {
		if w.Admitted > 2*w.Limit {
			t.Errorf("%s: %d admitted in a window, limit %d; want at most %d (13 before the fix)", class, w.Admitted, w.Limit, 2*w.Limit)
		}
	}
}
