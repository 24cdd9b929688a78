package engine

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Store. The zero value of every field means its
// default.
type Config struct {
	// Clock supplies "now" for every decision. Default: SystemClock().
	Clock Clock
	// Hasher maps (user, action) to a Key. Default: NewKeyHasher(), which
	// is private to the process; a cluster that moves keys between nodes
	// sets one that all nodes share.
	Hasher KeyHasher
	// MinWindow and MaxWindow bound Request.Window. Default 1 s and 1 h;
	// MaxWindow may be at most HardMaxWindow.
	MinWindow, MaxWindow time.Duration
	// Shards is the number of independently locked parts of the table, a
	// power of two. Default 256: enough that checks on different keys
	// rarely wait for each other on any machine we run on.
	Shards int
	// MaxEntries caps the keys held. When a new key arrives at a full
	// shard, the entry closest to fresh among a small random sample is
	// dropped (see DESIGN.md). Default 10,000,000 (about 800 MB).
	MaxEntries int
	// SweepInterval is how often the background sweeper samples each shard
	// for entries that are fresh again. Default 250 ms; negative disables
	// the sweeper (entries are then dropped only lazily and by Sweep).
	SweepInterval time.Duration
}

// Default configuration values.
const (
	DefaultMinWindow     = time.Second
	DefaultMaxWindow     = time.Hour
	DefaultShards        = 256
	DefaultMaxEntries    = 10_000_000
	DefaultSweepInterval = 250 * time.Millisecond
)

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = SystemClock()
	}
	if c.Hasher == nil {
		c.Hasher = NewKeyHasher()
	}
	if c.MinWindow == 0 {
		c.MinWindow = DefaultMinWindow
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = DefaultMaxWindow
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	return c
}

// Validate reports the first invalid field of c, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MinWindow <= 0:
		return fmt.Errorf("bucket: MinWindow %v must be positive", c.MinWindow)
	case c.MaxWindow < c.MinWindow || c.MaxWindow > HardMaxWindow:
		return fmt.Errorf("bucket: MaxWindow %v must be within MinWindow %v and %v", c.MaxWindow, c.MinWindow, HardMaxWindow)
	case c.Shards < 1 || c.Shards > 1<<16 || c.Shards&(c.Shards-1) != 0:
		return fmt.Errorf("bucket: Shards %d must be a power of two from 1 to 65536", c.Shards)
	case c.MaxEntries < 0:
		return fmt.Errorf("bucket: MaxEntries %d must not be negative", c.MaxEntries)
	}
	return nil
}

// Store holds one bucket per key in memory and answers checks against
// them. Checks on one key are serialized; checks on keys in different
// shards run in parallel. A Store is safe for concurrent use; its zero
// value is not usable: call New.
type Store struct {
	clock      Clock
	hash       KeyHasher
	minW, maxW time.Duration
	shift      uint // Key.Hi >> shift picks the shard
	shards     []shard
	closed     atomic.Bool
	fence      atomic.Pointer[func(Key) bool]

	sweep sweepStats

	stop chan struct{}
	wg   sync.WaitGroup
}

// shard is one independently locked part of the table.
type shard struct {
	// mu guards everything below it.
	mu      sync.Mutex
	tab     table
	logs    map[Key]*Log // SlidingLog's events, beside their entries
	limit   int          // most entries held
	expired uint64       // fresh entries dropped on access, by the sweeper or when full
	evicted uint64       // live entries dropped because the shard was full
	cursor  int          // where the sweeper goes on
	rand    uint64       // xorshift state for picking eviction samples

	_ [64]byte // keep neighbouring shards' locks off one cache line
}

// entry is a key's stored state: the State's numbers and when the bucket
// will be fresh again if left alone.
type entry struct {
	a, b, c int64
	freshAt time.Duration
}

// New returns a Store, with its sweeper running unless disabled.
// Call Close to stop the sweeper.
func New(cfg Config) (*Store, error) {
	s := new(Store)
	if err := Init(s, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Init makes the zero Store s ready, as New does, so that a Store can be
// held by value inside another type (package bucket's Store).
func Init(s *Store, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	*s = Store{
		clock:  cfg.Clock,
		hash:   cfg.Hasher,
		minW:   cfg.MinWindow,
		maxW:   cfg.MaxWindow,
		shift:  uint(64 - bits.TrailingZeros(uint(cfg.Shards))),
		shards: make([]shard, cfg.Shards),
		stop:   make(chan struct{}),
	}
	perShard := max((cfg.MaxEntries+cfg.Shards-1)/cfg.Shards, 1)
	for i := range s.shards {
		s.shards[i].logs = make(map[Key]*Log)
		s.shards[i].limit = perShard
		s.shards[i].rand = uint64(i)*0x9e3779b97f4a7c15 | 1
	}
	if cfg.SweepInterval > 0 {
		s.wg.Go(func() { s.sweepLoop(cfg.SweepInterval) })
	}
	return nil
}

// Validate checks req against this store's bounds without touching any
// state. Errors match ErrInvalidArgument.
func (s *Store) Validate(req Request) error {
	_, err := req.validate(s.minW, s.maxW)
	return err
}

// Check spends req.Hits from the bucket of (req.UserID, req.Action) and
// returns the decision. The error is non-nil only when there is no
// decision: bad input (ErrInvalidArgument, and no state changes) or a
// closed store (ErrClosed).
func (s *Store) Check(req Request) (Decision, error) {
	lim, err := req.validate(s.minW, s.maxW)
	if err != nil {
		return Decision{}, err
	}
	if s.closed.Load() {
		return Decision{}, ErrClosed
	}
	k := s.hash(req.UserID, req.Action).withAlgorithm(req.Algorithm)
	d, ok := s.check(k, req.Algorithm, lim, req.Hits, req.DryRun, 1, nil, anyBucket)
	if !ok {
		return Decision{}, ErrFenced
	}
	return d, nil
}

// Key returns the Key of (userID, action) under this store's hasher.
func (s *Store) Key(userID, action string) Key { return s.hash(userID, action) }

// Repeated is the answer to n identical checks applied in order at one
// instant. Because a denied check changes nothing and time does not move
// between them, the admitted checks are always the first ones.
type Repeated struct {
	// Admitted is how many of the checks passed.
	Admitted int
	// LastAdmitted is the decision of the last admitted check; the k-th
	// from the end of the admitted ones had k*hits more Remaining.
	LastAdmitted Decision
	// Denied is the decision of every check after the admitted ones.
	Denied Decision
}

// CheckKey applies n identical checks of req, in order at one instant, to
// the bucket named by k (from Key), as a node does for checks forwarded to
// it. req.UserID and req.Action are not used; everything else is
// validated as in Check. n must be at least 1.
func (s *Store) CheckKey(k Key, req Request, n int) (Repeated, error) {
	lim, err := req.shape(s.minW, s.maxW)
	if err != nil {
		return Repeated{}, err
	}
	if n < 1 {
		return Repeated{}, invalid("count", "%d checks; want at least 1", n)
	}
	if s.closed.Load() {
		return Repeated{}, ErrClosed
	}
	var rep Repeated
	if _, ok := s.check(k.withAlgorithm(req.Algorithm), req.Algorithm, lim, req.Hits, req.DryRun, n, &rep, anyBucket); !ok {
		return Repeated{}, ErrFenced
	}
	return rep, nil
}

// whichBucket says which buckets a check may decide on.
type whichBucket uint8

const (
	anyBucket whichBucket = iota
	onlyHeld              // a live bucket: CheckKeyIfHeld
	onlyFresh             // no live bucket: Seed
)

// Seed spends spent hits of a bucket of req's shape for key k, as one
// decision, only if the store holds no live bucket for it, atomically
// under the key's lock, and reports whether it did. It is how a node
// starts a bucket it cannot know the history of from a share already
// spent: racing first checks seed it once. spent beyond the bucket's
// capacity is an argument error, as for hits.
func (s *Store) Seed(k Key, req Request, spent int64) (bool, error) {
	req.Hits, req.DryRun = spent, false
	lim, err := req.shape(s.minW, s.maxW)
	if err != nil {
		return false, err
	}
	if s.closed.Load() {
		return false, ErrClosed
	}
	_, ok := s.check(k.withAlgorithm(req.Algorithm), req.Algorithm, lim, spent, false, 1, nil, onlyFresh)
	return ok, nil
}

// Reset drops the buckets of the key k (from Key) under every algorithm,
// so that its next check starts from a fresh bucket, and returns how many
// live buckets it dropped. It is how an operator forgives a key.
func (s *Store) Reset(k Key) int {
	sh := &s.shards[k.Hi>>s.shift]
	now := s.clock.Now()
	dropped := 0
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, alg := range Algorithms() {
		if i := sh.tab.find(k.withAlgorithm(alg)); i >= 0 {
			if sh.tab.slots[i].freshAt > now {
				dropped++
			}
			sh.removeAt(i)
		}
	}
	return dropped
}

// SetFence makes the store refuse checks (ErrFenced) on every key for which
// refuse reports true, until the next SetFence; nil lifts the fence. A node
// fences off the keys it no longer owns at the moment its ring changes, so
// that no check racing the change can start a bucket behind the back of
// the handoff. refuse is called with a shard locked; it must be quick and
// must not call the store. Extract and Absorb are not fenced.
func (s *Store) SetFence(refuse func(Key) bool) {
	if refuse == nil {
		s.fence.Store(nil)
		return
	}
	s.fence.Store(&refuse)
}

// CheckKeyIfHeld is CheckKey for a store that may no longer be the key's
// authority: it decides only if it holds a bucket for k that is not fresh,
// and otherwise changes nothing and reports held false. A node that has
// lost ownership of a key answers for it this way until it has handed the
// bucket over.
func (s *Store) CheckKeyIfHeld(k Key, req Request, n int) (rep Repeated, held bool, err error) {
	lim, err := req.shape(s.minW, s.maxW)
	if err != nil {
		return Repeated{}, false, err
	}
	if n < 1 {
		return Repeated{}, false, invalid("count", "%d checks; want at least 1", n)
	}
	if s.closed.Load() {
		return Repeated{}, false, ErrClosed
	}
	var ok bool
	_, ok = s.check(k.withAlgorithm(req.Algorithm), req.Algorithm, lim, req.Hits, req.DryRun, n, &rep, onlyHeld)
	if !ok {
		// Not held, or fenced: either way this store does not answer.
		return Repeated{}, false, nil
	}
	return rep, true, nil
}

// check decides n checks on key k, which already holds the algorithm, and
// returns the last decision. rep, when not nil, receives the details. It
// decides nothing and returns ok false for a fenced key, and, with
// onlyHeld, for a key without a live bucket. A dry check decides on a copy
// of the state and writes nothing back.
func (s *Store) check(k Key, alg Algorithm, lim Limit, hits int64, dry bool, n int, rep *Repeated, which whichBucket) (d Decision, ok bool) {
	sh := &s.shards[k.Hi>>s.shift]
	now := s.clock.Now()

	sh.mu.Lock()
	i := sh.tab.find(k)
	var st State
	held := false
	if i >= 0 {
		if e := &sh.tab.slots[i].entry; e.freshAt > now {
			st = State{A: e.a, B: e.b, C: e.c}
			if alg == SlidingLog {
				st.Log = sh.logs[k]
			}
			held = true
		} else {
			sh.expired++ // lazily: the stored state is as good as fresh
		}
	}
	if which == onlyHeld && !held || which == onlyFresh && held {
		sh.mu.Unlock()
		return Decision{}, false
	}
	if f := s.fence.Load(); f != nil && (*f)(k) {
		// Checked under the shard lock, so that a decision either lands
		// before Extract takes this shard or does not happen at all.
		sh.mu.Unlock()
		return Decision{}, false
	}
	if dry {
		d = dryRun(alg, st, lim, now, hits)
		sh.mu.Unlock()
		if rep != nil {
			rep.record(d, n, 0) // nothing spent: every repeat answers alike
		}
		return d, true
	}
	d = decide(alg, &st, lim, now, hits)
	if rep != nil {
		rep.record(d, n, hits)
		for i := 1; i < n && d.Allowed && hits > 0; i++ {
			d = decide(alg, &st, lim, now, hits)
			rep.record(d, n, hits)
		}
	}
	switch {
	case st.fresh():
		if i >= 0 {
			sh.removeAt(i)
		}
	default:
		if i < 0 {
			if sh.tab.used >= sh.limit {
				sh.evictOne(now)
			}
			i = sh.tab.insert(k)
		}
		sh.tab.slots[i].entry = entry{a: st.A, b: st.B, c: st.C, freshAt: now + d.ResetAfter}
		if st.Log != nil {
			sh.logs[k] = st.Log
		}
	}
	sh.mu.Unlock()
	return d, true
}

// dryRun decides hits on a copy of st: whether they would pass, and when
// they would if not, with Remaining and ResetAfter of the bucket as it
// stands, since nothing is spent.
func dryRun(alg Algorithm, st State, lim Limit, now time.Duration, hits int64) Decision {
	cur := st
	cur.Log = st.Log.clone()
	d := decide(alg, &cur, lim, now, hits)
	if hits == 0 || !d.Allowed {
		return d // it spent nothing in the copy either
	}
	cur = st
	cur.Log = st.Log.clone()
	peek := decide(alg, &cur, lim, now, 0)
	d.Remaining, d.ResetAfter = peek.Remaining, peek.ResetAfter
	return d
}

// record adds one decision of n repeated checks.
func (r *Repeated) record(d Decision, n int, hits int64) {
	switch {
	case !d.Allowed:
		r.Denied = d
	case hits == 0: // a peek changes nothing: every repeat answers alike
		r.Admitted, r.LastAdmitted = n, d
	default:
		r.Admitted++
		r.LastAdmitted = d
	}
}

// removeAt drops the entry in slot i. Requires sh.mu held.
func (sh *shard) removeAt(i int) {
	k := sh.tab.slots[i].key
	sh.tab.removeAt(i)
	if len(sh.logs) > 0 {
		delete(sh.logs, k)
	}
}

// evictSample is how many entries a full shard looks at to pick a victim.
const evictSample = 8

// evictOne makes room for one entry: among a few entries from a random
// place, it drops the one that will be fresh soonest. One that is already
// fresh costs nothing to drop; any other loses the least state. Either way
// that key starts again from a fresh bucket, which never grants more than
// a fresh bucket would. Requires sh.mu held.
func (sh *shard) evictOne(now time.Duration) {
	sh.rand ^= sh.rand << 13
	sh.rand ^= sh.rand >> 7
	sh.rand ^= sh.rand << 17
	n := len(sh.tab.slots)
	if n == 0 {
		return
	}
	i := sh.tab.sample(int(sh.rand%uint64(n)), evictSample, now)
	if i < 0 {
		return
	}
	if sh.tab.slots[i].freshAt <= now {
		sh.expired++
	} else {
		sh.evicted++
	}
	sh.removeAt(i)
}

// Close stops the sweeper and makes later checks fail with ErrClosed. It
// is idempotent.
func (s *Store) Close() {
	if s.closed.CompareAndSwap(false, true) {
		close(s.stop)
	}
	s.wg.Wait()
}

// Len returns the number of keys held.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.tab.used
		sh.mu.Unlock()
	}
	return n
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	Keys    int    // keys held now
	Expired uint64 // entries dropped because they were fresh again
	Evicted uint64 // live entries dropped to respect MaxEntries
	// SweepVisited counts entries the sweeper looked at; SweepTime is the
	// time it spent, so SweepTime/SweepVisited is its cost per entry.
	SweepVisited uint64
	SweepTime    time.Duration
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		SweepVisited: s.sweep.visited.Load(),
		SweepTime:    time.Duration(s.sweep.nanos.Load()),
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Keys += sh.tab.used
		st.Expired += sh.expired
		st.Evicted += sh.evicted
		sh.mu.Unlock()
	}
	return st
}
