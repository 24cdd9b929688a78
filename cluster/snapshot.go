package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/internal/snapformat"
	"github.com/drlimit/drl/snapshot"
)

// Snapshots keep counts through a stop of the whole cluster (DESIGN.md §6).
// A node saves what it holds when it stops gracefully, after its handoff
// (so a rolling restart saves almost nothing: the buckets went to the
// members that stay), and every SnapshotEvery. It loads the snapshot
// before it serves, and keeps it aside until it first sees the cluster:
// if a member that was already running when the snapshot was taken is
// alive, that member has held the live counts since, and the snapshot is
// dropped; otherwise the whole cluster went down, and the buckets go into
// the store, from where those this node does not own move to their owners
// by the ordinary handoff.

// snapshots is the node's snapshot store and what it loaded and saved.
type snapshots struct {
	store    snapshot.Store                      // nil without Config.StateDir or Config.Snapshots
	restored atomic.Pointer[snapformat.Snapshot] // loaded, waiting for the first ring
	stats    snapshotStats
}

// snapshotStats are the figures of the last save, for metrics and logs.
type snapshotStats struct {
	saves, failures atomic.Uint64
	buckets, bytes  atomic.Uint64
	took            atomic.Int64 // ns
	at              atomic.Int64 // Unix ns of the last success
	restored        atomic.Uint64
}

// openSnapshots returns the configured snapshot store, if any.
func openSnapshots(cfg Config) (snapshot.Store, error) {
	switch {
	case cfg.Snapshots != nil:
		return cfg.Snapshots, nil
	case cfg.StateDir != "":
		return snapshot.NewDir(cfg.StateDir)
	}
	return nil, nil
}

// loadSnapshot reads the saved snapshot, if any, into n.snap.restored. A
// snapshot that cannot be trusted is set aside; the node starts empty.
func (n *Node) loadSnapshot(ctx context.Context) {
	r, err := n.snap.store.Load(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		n.log.Warn("snapshot not loaded; starting empty", "err", err)
		return
	}
	snap, err := snapformat.Read(r, snapformat.Limits{})
	r.Close()
	if err != nil {
		n.log.Warn("snapshot refused and set aside; starting empty", "err", err)
		if err := n.snap.store.Discard(ctx); err != nil {
			n.log.Warn("bad snapshot not set aside", "err", err)
		}
		return
	}
	n.log.Info("snapshot loaded; applied once the node sees the cluster", "buckets", len(snap.Buckets),
		"taken", snap.Taken.UTC().Format(time.RFC3339Nano))
	n.snap.restored.Store(&snap)
}

// restore decides, on the node's first ring, whether its loaded snapshot
// holds the counts (the whole cluster was down) and if so puts its buckets
// in the store. Called by rebuildRing, under the core's lock, before it
// fences and hands off; it returns what to log once the lock is released.
func (n *Node) restore(members []ownership.Member) (log func()) {
	rs := n.snap.restored.Swap(nil)
	if rs == nil {
		return func() {}
	}
	var survivors []string
	for _, m := range members {
		if m.ID != n.id && m.Alive && !m.Foreign && m.Started < rs.Taken.UnixNano() {
			survivors = append(survivors, m.Name)
		}
	}
	if len(survivors) > 0 {
		sort.Strings(survivors)
		return func() {
			n.log.Info("snapshot dropped: members that ran through this node's restart hold the live counts",
				"members", strings.Join(survivors, ","), "buckets", len(rs.Buckets))
			n.events.add("snapshot dropped: " + strings.Join(survivors, ", ") + " kept running")
		}
	}
	now := time.Now()
	kept := n.store.Absorb(rs.Aged(now))
	n.snap.stats.restored.Store(uint64(kept))
	return func() {
		n.log.Info("snapshot restored", "buckets", kept, "of", len(rs.Buckets), "down", now.Sub(rs.Taken).Round(time.Millisecond))
		n.events.add(fmt.Sprintf("restored %d buckets from a snapshot", kept))
	}
}

// saveSnapshot writes what the store holds. It does nothing while a loaded
// snapshot still waits for the first ring: saving then would replace it
// with an empty store.
func (n *Node) saveSnapshot(ctx context.Context) error {
	if n.snap.restored.Load() != nil {
		return nil
	}
	start := time.Now()
	var buckets, bytes uint64
	err := n.snap.store.Save(ctx, func(w io.Writer) error {
		cw := &countingWriter{w: w}
		err := snapformat.Write(cw, counted(n.store.Buckets(), &buckets), time.Now)
		bytes = cw.n
		return err
	})
	if err != nil {
		n.snap.stats.failures.Add(1)
		return fmt.Errorf("cluster: save snapshot: %w", err)
	}
	st := &n.snap.stats
	st.saves.Add(1)
	st.buckets.Store(buckets)
	st.bytes.Store(bytes)
	st.took.Store(int64(time.Since(start)))
	st.at.Store(time.Now().UnixNano())
	return nil
}

// snapshotLoop saves every SnapshotEvery until ctx ends. Owned by n.life.wg.
func (n *Node) snapshotLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := n.saveSnapshot(ctx)
			switch {
			case err != nil && !failing:
				n.log.Warn("periodic snapshot failed; retrying every period", "err", err)
			case err == nil && failing:
				n.log.Info("periodic snapshot saved again")
			}
			failing = err != nil
		}
	}
}

// counted yields seq's values, counting them in *n.
func counted[T any](seq iter.Seq[T], n *uint64) iter.Seq[T] {
	return func(yield func(T) bool) {
		for v := range seq {
			*n++
			if !yield(v) {
				return
			}
		}
	}
}

type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n += uint64(k)
	return k, err
}
