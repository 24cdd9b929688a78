package engine

import (
	"sync/atomic"
	"time"
)

// The sweeper drops entries that are fresh again, without ever walking a
// whole shard under its lock. Each shard keeps a cursor; a pass looks at up
// to sweepBatch slots of each shard from its cursor, drops the fresh
// entries, and goes on for another batch (at most sweepRounds) only while
// more than a quarter of the entries it saw were fresh. So one pass looks
// at no more than shards*sweepBatch*sweepRounds slots and holds a lock for
// at most sweepBatch of them, and every slot is visited once per
// len(slots)/sweepBatch passes when nothing is expiring.
const (
	sweepBatch  = 256
	sweepRounds = 8
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
		sh.mu.Lock()
		n := len(sh.tab.slots)
		v, d, live, advanced := 0, 0, 0, 0
		for v < sweepBatch && advanced < n {
			if sh.cursor >= n {
				sh.cursor = 0
			}
			v++
			if sh.tab.tags[sh.cursor] != 0 {
				live++
				if sh.tab.slots[sh.cursor].freshAt <= now {
					// The next entry of the run may shift into this slot:
					// look at it again rather than moving on.
					sh.removeAt(sh.cursor)
					d++
					continue
				}
			}
			sh.cursor++
			advanced++
		}
		if d > 0 {
			sh.tab.maybeShrink()
		}
		sh.expired += uint64(d)
		sh.mu.Unlock()
		visited += v
		dropped += d
		if d*4 <= live || advanced >= n {
			break
		}
	}
	return visited, dropped
}
