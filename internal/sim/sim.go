package sim

import (
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/ring"
)

// The product's defaults that the bounds are stated for (DESIGN.md §6).
const (
	CheckTimeout      = 50 * time.Millisecond
	HandoffWait       = ownership.DefaultHandoffWait
	MaxRoutes         = 64
	LeaveDrain        = 300 * time.Millisecond
	DoneMarkRetry     = time.Second // cluster's doneMarkRetry
	ForgetFailedAfter = ownership.DefaultForgetFailedAfter

	// Gossip, as the LAN profile of internal/membership sets memberlist.
	ProbeInterval   = 500 * time.Millisecond
	ProbeTimeout    = 250 * time.Millisecond
	GossipInterval  = 100 * time.Millisecond
	RejoinInterval  = 2 * time.Second
	PushPullEvery   = 10 * time.Second
	gossipFanout    = 3
	gossipTransmits = 4
)

// Config configures one run.
type Config struct {
	// Nodes is the cluster's size at the start, 3 to 50. Default 5.
	Nodes int
	// Duration is the virtual time a run lasts. Default 60 s.
	Duration time.Duration
	// Faults and Keys, when not nil, keep only the schedule's faults and
	// keys of those indexes: how a schedule is shrunk and replayed.
	Faults, Keys []int
	// Hooks are a test-only seam: they plant known bugs in the shell's
	// calls to the core so that tests can show the oracle catches them.
	// The zero value plants nothing.
	Hooks Hooks
	// Trace, if set, is called with a line for every decision and fault.
	Trace func(string)
}

// Hooks wrap the shell's calls to the core. Each nil hook leaves the call
// as it is.
type Hooks struct {
	// View may replace every view the core returns before the node uses
	// it (a copy: views are immutable).
	View func(v *ownership.View) *ownership.View
	// Owned may change what a check on an owned key tells DecideOwned.
	Owned func(o ownership.Owned) ownership.Owned
	// Lend replaces the local fail policy's Provisional.Lend. side is a
	// store of the node's own, fresh at the node's start, for a bug that
	// wants one.
	Lend func(p *ownership.Provisional, side *engine.Store, v *ownership.View, key bucket.Key, req bucket.Request, know ownership.Knowledge, unsettled bool) (bucket.Decision, error)
	// ViewChanged may replace the node's provisional state at every ring
	// change; new makes an empty one.
	ViewChanged func(p *ownership.Provisional, new func() *ownership.Provisional) *ownership.Provisional
}

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 5
	}
	if c.Duration == 0 {
		c.Duration = time.Minute
	}
	return c
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Nodes < 3 || c.Nodes > 50 {
		return fmt.Errorf("sim: Nodes %d; want 3 to 50", c.Nodes)
	}
	if c.Duration < faultsEnd+convergeWithin {
		return fmt.Errorf("sim: Duration %v; want at least %v", c.Duration, faultsEnd+convergeWithin)
	}
	return nil
}

// Result is what one run did and what the oracle found.
type Result struct {
	Seed     uint64
	Schedule Schedule // the schedule as run (after Faults and Keys)
	Trace    uint64   // hash of every event
	Events   int
	Checks   int // checks answered
	Admitted int64
	// Violations are what the oracle found; empty when the run passed.
	Violations []Violation
	// Worst is the highest admitted/bound ratio seen per fault class.
	Worst map[string]Worst
}

// Worst is the worst window of one fault class.
type Worst struct {
	Admitted, Limit int64
	Factor          float64
	Key             int
}

// Violation is one bound the run broke.
type Violation struct {
	Kind   string // over-admission, deadline, convergence, under-admission
	Detail string
}

func (v Violation) String() string { return v.Kind + ": " + v.Detail }

// simHasher is the key hasher every simulated node shares: fixed, so that
// a run is the same in every process.
func simHasher(userID, action string) bucket.Key {
	return bucket.KeyOf(xxhash.Sum64String(userID), xxhash.Sum64String(action)^0x5bd1e995)
}

// ringConfig is smaller than the product's default (4099 partitions, 200
// points each), which would spend most of a run building rings; the
// protocol does not depend on the numbers.
var ringConfig = ring.Config{Partitions: 271, ReplicationFactor: 20, Load: 1.25}

// Run runs the schedule seed draws for cfg, and checks it.
func Run(cfg Config, seed uint64) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	sch := Draw(seed, cfg.Nodes, cfg.Duration)
	sch = sch.keep(cfg.Faults, cfg.Keys)
	s := newSim(cfg, sch)
	s.start()
	s.w.run(cfg.Duration, 50_000_000)
	res := Result{Seed: seed, Schedule: sch, Events: s.w.events}
	s.finish(&res)
	res.Trace = s.w.trace.Sum64()
	s.close()
	return res, nil
}

// keep returns s with only the faults and keys of the given indexes (nil:
// all).
func (s Schedule) keep(faults, keys []int) Schedule {
	if faults != nil {
		var fs []Fault
		for _, i := range faults {
			if i >= 0 && i < len(s.Faults) {
				fs = append(fs, s.Faults[i])
			}
		}
		s.Faults = fs
	}
	if keys != nil {
		var ks []KeySpec
		for _, i := range keys {
			if i >= 0 && i < len(s.Keys) {
				ks = append(ks, s.Keys[i])
			}
		}
		s.Keys = ks
	}
	return s
}
