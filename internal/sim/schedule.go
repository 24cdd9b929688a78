package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/drlimit/drl/bucket"
)

// FaultKind names one kind of fault.
type FaultKind uint8

// The fault kinds.
const (
	Partition FaultKind = iota // sides cut from each other both ways, healed at End
	OneWay                     // From cannot reach To; To still reaches From
	LinkFault                  // delay and loss on some links
	Crash                      // SIGKILL; the node stays down
	Restart                    // SIGKILL, then a new instance at End, with or without a snapshot
	Pause                      // SIGSTOP (or a long GC) until End
	Leave                      // graceful leave at Start, back as a new instance at End
	Join                       // a new member joins at Start
	Rolling                    // a rolling restart of every member from Start, paced by readiness
	numFaultKinds

	// missedHandoff is not drawn: the oracle notes one for a key whose
	// bucket a handoff lost (§6: "a member misses a handoff").
	missedHandoff = numFaultKinds
)

func (k FaultKind) String() string {
	return [...]string{"partition", "one-way", "link-fault", "crash", "restart", "pause", "leave", "join", "rolling-restart", "missed-handoff"}[k]
}

// Fault is one fault of a schedule.
type Fault struct {
	Index      int // in the schedule as drawn
	Kind       FaultKind
	Start, End time.Duration
	// Sides of a partition, or From and To of a one-way cut (two sides),
	// by node slot.
	Sides [][]int
	// Links of a link fault, with the delay and loss each gets.
	Links [][2]int
	Delay time.Duration
	Loss  float64
	// Node is the slot a crash, restart, pause, leave or join acts on.
	Node int
	// Snapshot: a restart starts from its snapshot (it says Restoring).
	Snapshot bool
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: %s %v–%v", f.Index, f.Kind, f.Start, f.End)
	switch f.Kind {
	case Partition:
		fmt.Fprintf(&b, " sides %v", f.Sides)
	case OneWay:
		fmt.Fprintf(&b, " %v cannot reach %v", f.Sides[0], f.Sides[1])
	case LinkFault:
		fmt.Fprintf(&b, " links %v delay %v loss %.0f%%", f.Links, f.Delay, 100*f.Loss)
	case Restart:
		fmt.Fprintf(&b, " n%d snapshot=%v", f.Node, f.Snapshot)
	case Crash, Pause, Leave, Join:
		fmt.Fprintf(&b, " n%d", f.Node)
	}
	return b.String()
}

// State is how spent a key is when the faults begin.
type State uint8

// The key states.
const (
	Fresh     State = iota // no traffic before the first fault
	HalfSpent              // about half its capacity spent just before
	Exhausted              // all of it spent just before
)

func (s State) String() string { return [...]string{"fresh", "half-spent", "exhausted"}[s] }

// KeySpec is one key's shape and load.
type KeySpec struct {
	Index     int
	User      string
	Algorithm bucket.Algorithm
	Limit     int64
	Burst     int64
	Window    time.Duration
	Hits      int64
	Rate      float64 // checks per second while active
	State     State
}

func (k KeySpec) String() string {
	return fmt.Sprintf("key %d %s %s limit %d burst %d per %v hits %d at %.1f/s", k.Index, k.State, k.Algorithm, k.Limit, k.Burst, k.Window, k.Hits, k.Rate)
}

// ClockSpec is one node slot's clock: an offset and a drift.
type ClockSpec struct {
	Offset time.Duration
	PPM    int64
}

// Schedule is everything a seed draws before a run.
type Schedule struct {
	Seed   uint64
	Nodes  int // slots at the start
	Slots  int // slots in all, joins included
	Faults []Fault
	Keys   []KeySpec
	Clocks []ClockSpec
	// Suspicion is how long a member stays suspect before it is declared
	// dead, per slot.
	Suspicion []time.Duration
}

// Timing of a schedule.
const (
	faultsFrom = 5 * time.Second  // the first fault starts no earlier
	faultsTo   = 40 * time.Second // and the last starts no later
	faultsEnd  = 46 * time.Second // every fault ends by then
	// MaxDrift is the fastest or slowest a clock runs, in ppm.
	MaxDrift = 10_000
)

// Draw draws the schedule of seed for a cluster of nodes.
func Draw(seed uint64, nodes int, d time.Duration) Schedule {
	r := stream(seed, streamSchedule)
	s := Schedule{Seed: seed, Nodes: nodes, Slots: nodes}
	nFaults := r.IntN(5) // 0 to 4
	if seed%10 == 0 {
		nFaults = 0 // every tenth schedule is quiet: exact limits throughout
	}
	for range nFaults {
		s.Faults = append(s.Faults, drawFault(r, &s))
	}
	slices.SortStableFunc(s.Faults, func(a, b Fault) int { return int(a.Start - b.Start) })
	for i := range s.Faults {
		s.Faults[i].Index = i
	}
	s.Clocks = make([]ClockSpec, s.Slots)
	s.Suspicion = make([]time.Duration, s.Slots)
	for i := range s.Clocks {
		s.Clocks[i] = ClockSpec{Offset: time.Duration(r.Int64N(int64(4 * time.Hour))), PPM: r.Int64N(2*MaxDrift+1) - MaxDrift}
		s.Suspicion[i] = 1500*time.Millisecond + time.Duration(r.Int64N(int64(1500*time.Millisecond)))
	}
	nKeys := 16 + r.IntN(16)
	for i := range nKeys {
		s.Keys = append(s.Keys, drawKey(r, i))
	}
	return s
}

func drawFault(r *rand.Rand, s *Schedule) Fault {
	f := Fault{Kind: FaultKind(r.IntN(int(numFaultKinds)))}
	f.Start = faultsFrom + time.Duration(r.Int64N(int64(faultsTo-faultsFrom)))
	dur := time.Second + time.Duration(r.Int64N(int64(9*time.Second)))
	f.End = min(f.Start+dur, faultsEnd)
	n := s.Nodes
	switch f.Kind {
	case Partition, OneWay:
		perm := r.Perm(n)
		sides := 2
		if f.Kind == Partition && n >= 3 && r.IntN(3) == 0 {
			sides = 3
		}
		// Every side gets at least one member.
		cuts := r.Perm(n - 1)[:sides-1]
		slices.Sort(cuts)
		prev := 0
		for _, c := range cuts {
			f.Sides = append(f.Sides, sorted(perm[prev:c+1]))
			prev = c + 1
		}
		f.Sides = append(f.Sides, sorted(perm[prev:]))
	case LinkFault:
		for a := range n {
			for b := range n {
				if a != b && r.IntN(3) == 0 {
					f.Links = append(f.Links, [2]int{a, b})
				}
			}
		}
		f.Delay = time.Duration(r.Int64N(int64(120 * time.Millisecond)))
		f.Loss = float64(r.IntN(4)) * 0.1
	case Crash, Restart, Pause, Leave:
		f.Node = r.IntN(n)
		f.Snapshot = r.IntN(2) == 0
	case Join:
		f.Node = s.Slots
		s.Slots++
	case Rolling:
		f.End = faultsEnd
	}
	return f
}

func sorted(s []int) []int {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func drawKey(r *rand.Rand, i int) KeySpec {
	k := KeySpec{Index: i, User: fmt.Sprintf("user-%d", i), Hits: 1, State: State(r.IntN(3))}
	windows := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, time.Hour}
	k.Window = windows[r.IntN(len(windows))]
	switch x := r.IntN(10); {
	case x < 6:
		k.Algorithm = bucket.StrictWindow
	case x < 7:
		k.Algorithm = bucket.SlidingLog
	default:
		others := []bucket.Algorithm{bucket.TokenBucket, bucket.GCRA, bucket.SlidingWindow, bucket.FixedWindow}
		k.Algorithm = others[r.IntN(len(others))]
	}
	rates := []float64{2, 4, 8, 16}
	k.Rate = rates[r.IntN(len(rates))]
	// The limit is a fraction of what the callers ask for over a window
	// (or over the run, for windows longer than it): most keys are asked
	// for more than they hold.
	span := min(k.Window, time.Minute).Seconds()
	frac := []float64{0.3, 0.6, 1.5}[r.IntN(3)]
	k.Limit = max(int64(k.Rate*span*frac), 3)
	if r.IntN(8) == 0 {
		k.Hits = 2
	}
	if (k.Algorithm == bucket.TokenBucket || k.Algorithm == bucket.GCRA) && r.IntN(2) == 0 {
		k.Burst = max(k.Limit/2, k.Hits)
	}
	return k
}
