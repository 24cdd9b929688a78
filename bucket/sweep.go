package bucket

import (
	"sync/atomic"
	"time"
)

// The sweeper drops entries that are fresh again, without ever walking a
// whole shard under its lock. Like Redis's active expiry, it samples: per
// shard it looks at sweepSample entries (map iteration starts at a random
// place), drops the fresh ones, and samples again while more than a
// quarter of a sample was fresh, at most sweepRounds times per pass. So
// one pass looks at no more than shards*sweepSample*sweepRounds entries,
// holds a lock for at most sweepSample of them, and, in the steady state,
// leaves no more than about a quarter of a shard's entries stale.
const (
	sweepSample = 32
	sweepRounds = 16
)

type sweepStats struct {
	visited atomic.Uint64
	nanos   atomic.Int64
}

// sweepLoop runs Sweep every interval until Close. Owned by Store.wg.
func (s *Store) sweepLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep makes one bounded pass over every shard, dropping sampled entries
// that are fresh again, and returns how many it looked at and dropped. The
// background sweeper calls it; tests may call it directly.
func (s *Store) Sweep() (visited, dropped int) {
	start := time.Now() // measures the sweeper's own cost, not a decision
	now := s.clock.Now()
	for i := range s.shards {
		v, d := s.shards[i].sweep(now)
		visited += v
		dropped += d
	}
	s.sweep.visited.Add(uint64(visited))
	s.sweep.nanos.Add(int64(time.Since(start)))
	return visited, dropped
}

func (sh *shard) sweep(now time.Duration) (visited, dropped int) {
	for range sweepRounds {
		n, d := 0, 0
		sh.mu.Lock()
		for k, e := range sh.entries {
			if n == sweepSample {
				break
			}
			n++
			if e.freshAt <= now {
				sh.drop(k)
				d++
			}
		}
		sh.expired += uint64(d)
		sh.mu.Unlock()
		visited += n
		dropped += d
		if d*4 <= n || n < sweepSample {
			break
		}
	}
	return visited, dropped
}
