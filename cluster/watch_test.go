package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/transport"
)

// WatchRing sends the ring at once and after each change, naming members
// by their configured names, and ends when the node stops, without
// holding up its Close.
func TestWatchRingFollowsChangesAndStops(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	states := make(chan transport.RingState, 16)
	watched := make(chan error, 1)
	go func() {
		watched <- nodes[0].WatchRing(context.Background(), func(st transport.RingState) error {
			states <- st
			return nil
		})
	}()
	next := func() transport.RingState {
		t.Helper()
		select {
		case st := <-states:
			return st
		case <-time.After(10 * time.Second):
			t.Fatal("no ring from WatchRing within 10 s")
			return transport.RingState{}
		}
	}
	st := next()
	if len(st.Members) != 3 || st.Members[0].Name != "node-0" || st.Members[2].GRPCAddr != nodes[2].GRPCAddr() ||
		st.Partitions == 0 || st.ReplicationFactor == 0 || st.Load <= 1 || st.ID == 0 {
		t.Fatalf("first ring %+v, want node-0..2 with their addresses and the defaults", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	for len(st.Members) != 2 {
		prev := st.Version
		if st = next(); st.Version <= prev {
			t.Fatalf("version went from %d to %d", prev, st.Version)
		}
	}

	start := time.Now()
	if err := nodes[0].Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watched:
		if !errors.Is(err, drl.ErrClosed) {
			t.Fatalf("WatchRing after Close = %v, want drl.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchRing still running 5 s after Close returned")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with a watcher", d)
	}
}
