package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/snapformat"
	"github.com/drlimit/drl/snapshot"
)

// snapshotCluster starts size nodes, each with a state directory under
// dirs named after it, the first as the seed.
func snapshotCluster(t *testing.T, dirs string, size int, edit func(*Config)) []*Node {
	t.Helper()
	return startCluster(t, size, func(c *Config) {
		c.StateDir = filepath.Join(dirs, c.Name)
		if edit != nil {
			edit(c)
		}
	})
}

// spend takes hits from each of keys' hour-long buckets of 1000.
func spend(t *testing.T, n *Node, keys int, hits int64) {
	t.Helper()
	for k := range keys {
		d, err := n.Check(context.Background(), bucket.Request{UserID: fmt.Sprint("user-", k), Action: "login",
			Limit: 1000, Window: time.Hour, Hits: hits})
		if err != nil || !d.Allowed {
			t.Fatalf("spending %d on user-%d: %+v, %v", hits, k, d, err)
		}
	}
}

// remaining returns what each key has left, spending nothing.
func remaining(t *testing.T, n *Node, keys int) []int64 {
	t.Helper()
	out := make([]int64, keys)
	for k := range keys {
		d, err := n.Check(context.Background(), bucket.Request{UserID: fmt.Sprint("user-", k), Action: "login",
			Limit: 1000, Window: time.Hour, Hits: 1, DryRun: true})
		if err != nil {
			t.Fatalf("user-%d: %v", k, err)
		}
		out[k] = d.Remaining
	}
	return out
}

func closeAll(t *testing.T, nodes []*Node) {
	t.Helper()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.Close(ctx); err != nil {
				t.Errorf("%s: %v", n.Name(), err)
			}
		})
	}
	wg.Wait()
}

// Stopping every node at once and starting them again keeps every count:
// each node saves what nobody stays to hold, and the restarted cluster
// puts it back with its owners.
func TestWholeClusterRestartKeepsCounts(t *testing.T) {
	const keys = 60
	dirs := t.TempDir()
	nodes := snapshotCluster(t, dirs, 3, nil)
	spend(t, nodes[0], keys, 700)
	closeAll(t, nodes)
	saved := 0
	for _, n := range nodes {
		saved += int(n.snap.stats.buckets.Load())
	}
	if saved < keys {
		t.Fatalf("the snapshots hold %d buckets, want at least %d", saved, keys)
	}
	again := snapshotCluster(t, dirs, 3, nil)
	restored := 0
	for _, n := range again {
		restored += int(n.snap.stats.restored.Load())
	}
	// A bucket in the snapshot of a member other than its owner (handed
	// over as the cluster stopped) reaches the owner by handoff; the owner
	// waits for it before it decides a key it holds nothing for.
	for k, left := range remaining(t, again[1], keys) {
		if left > 300 {
			t.Errorf("user-%d has %d left after the restart; 700 of 1000 were spent", k, left)
		}
	}
	if restored < keys {
		t.Errorf("%d buckets saved, %d restored; want at least %d", saved, restored, keys)
	}
}

// A node that restarts while others keep running drops its snapshot: the
// others hold the live counts, and adding the snapshot's would count the
// same hits twice.
func TestSnapshotDroppedWhenOthersKeptRunning(t *testing.T) {
	const keys = 30
	dirs := t.TempDir()
	nodes := snapshotCluster(t, dirs, 3, func(c *Config) { c.SnapshotEvery = 20 * time.Millisecond })
	spend(t, nodes[0], keys, 700)
	eventually(t, 5*time.Second, func() error {
		if nodes[2].snap.stats.saves.Load() < 2 || nodes[2].snap.stats.buckets.Load() == 0 {
			return fmt.Errorf("node-2 saved %d snapshots", nodes[2].snap.stats.saves.Load())
		}
		return nil
	})
	nodes[2].Halt()
	cfg := TestConfig("node-2")
	cfg.StateDir = filepath.Join(dirs, "node-2")
	cfg.Join = []string{nodes[0].GossipAddr()}
	back := startNode(t, cfg)
	waitForRing(t, []*Node{nodes[0], nodes[1], back}, 3)
	if got := back.snap.stats.restored.Load(); got != 0 {
		t.Fatalf("node-2 restored %d buckets while node-0 and node-1 kept running", got)
	}
	if back.snap.restored.Load() != nil {
		t.Fatal("node-2 still holds its loaded snapshot after its first ring")
	}
}

// Time that passed while the cluster was down refills what it would have:
// a bucket whose window ended while down is fresh, a longer one is not.
func TestRestoreAppliesDowntime(t *testing.T) {
	dir := t.TempDir()
	cfg := TestConfig("solo")
	cfg.StateDir = dir
	n := startNode(t, cfg)
	ctx := context.Background()
	short := bucket.Request{UserID: "u", Action: "short", Limit: 10, Window: time.Second, Hits: 10}
	long := bucket.Request{UserID: "u", Action: "long", Limit: 10, Window: time.Hour, Hits: 10}
	for _, r := range []bucket.Request{short, long} {
		if d, err := n.Check(ctx, r); err != nil || !d.Allowed {
			t.Fatalf("%+v: %v", d, err)
		}
	}
	closeAll(t, []*Node{n})
	time.Sleep(1100 * time.Millisecond) // the short window ends while down
	again := startNode(t, cfg)
	short.Hits, long.Hits = 1, 1
	if d, err := again.Check(ctx, short); err != nil || !d.Allowed {
		t.Errorf("the 1 s bucket after 1.1 s down: %+v, %v; want it fresh", d, err)
	}
	if d, err := again.Check(ctx, long); err != nil || d.Allowed {
		t.Errorf("the hour bucket after 1.1 s down: %+v, %v; want it still spent", d, err)
	}
}

// A snapshot that cannot be trusted is set aside, and the node starts
// empty: truncated, damaged, from a newer version, or not one at all.
func TestBadSnapshotSetAside(t *testing.T) {
	for name, data := range map[string][]byte{
		"garbage":   []byte("not a snapshot at all"),
		"truncated": validSnapshot(t)[:40],
		"newer":     func() []byte { b := validSnapshot(t); b[8] = snapformat.Version + 1; return b }(),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, snapshot.FileName), data, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := TestConfig("solo")
			cfg.StateDir = dir
			n := startNode(t, cfg)
			d, err := n.Check(context.Background(), bucket.Request{UserID: "u", Action: "a", Limit: 5, Window: time.Hour, Hits: 1})
			if err != nil || !d.Allowed || d.Remaining != 4 {
				t.Fatalf("first check after a bad snapshot: %+v, %v; want a fresh bucket", d, err)
			}
			entries, _ := os.ReadDir(dir)
			aside := false
			for _, e := range entries {
				aside = aside || strings.Contains(e.Name(), ".bad-")
				if e.Name() == snapshot.FileName {
					t.Error("the bad snapshot is still in place")
				}
			}
			if !aside {
				t.Errorf("nothing set aside in %v", entries)
			}
		})
	}
}

// validSnapshot returns a snapshot of one spent bucket.
func validSnapshot(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	cfg := TestConfig("writer")
	cfg.StateDir = dir
	n := startNode(t, cfg)
	spend(t, n, 1, 700)
	closeAll(t, []*Node{n})
	b, err := os.ReadFile(filepath.Join(dir, snapshot.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
