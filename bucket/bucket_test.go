package bucket_test

import (
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// A ManualClock's After fires when the clock reaches its deadline, which
// is what lets a test drive a node's waits while ownership moves.
func TestManualClockAfter(t *testing.T) {
	var c bucket.ManualClock
	ch := c.After(time.Second)
	c.Advance(999 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("After(1s) fired at 999ms")
	default:
	}
	if got := c.Advance(time.Millisecond); got != time.Second {
		t.Fatalf("Advance(1ms) = %v, want 1s", got)
	}
	select {
	case <-ch:
	default:
		t.Fatal("After(1s) did not fire at 1s")
	}
}

// The bounds and defaults are written out here so that go doc shows them;
// they must be the engine's.
func TestConstantsAreTheEngines(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"MaxKeyLen", bucket.MaxKeyLen, engine.MaxKeyLen},
		{"MaxLimit", bucket.MaxLimit, engine.MaxLimit},
		{"HardMaxWindow", int64(bucket.HardMaxWindow), int64(engine.HardMaxWindow)},
		{"DefaultMinWindow", int64(bucket.DefaultMinWindow), int64(engine.DefaultMinWindow)},
		{"DefaultMaxWindow", int64(bucket.DefaultMaxWindow), int64(engine.DefaultMaxWindow)},
		{"DefaultShards", bucket.DefaultShards, engine.DefaultShards},
		{"DefaultMaxEntries", bucket.DefaultMaxEntries, engine.DefaultMaxEntries},
		{"DefaultSweepInterval", int64(bucket.DefaultSweepInterval), int64(engine.DefaultSweepInterval)},
	} {
		if c.got != c.want {
			t.Errorf("bucket.%s = %d, want the engine's %d", c.name, c.got, c.want)
		}
	}
}

// BenchmarkStoreCheck is internal/engine's BenchmarkCheckExistingKey for
// the default algorithm through the public Store: the wrapper adds nothing
// (0 allocs/op, the same ns/op).
func BenchmarkStoreCheck(b *testing.B) {
	s, err := bucket.NewStore(bucket.StoreConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	req := bucket.Request{UserID: "user-42", Action: "login", Limit: bucket.MaxLimit, Window: time.Hour, Hits: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Check(req); err != nil {
			b.Fatal(err)
		}
	}
}
