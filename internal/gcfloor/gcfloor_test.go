package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 16 * mib, 400},
		{2 * mib, 16 * mib, 400}, // capped: the runtime's own minimum goal scales with GOGC
		{4 * mib, 16 * mib, 400},
		{5 * mib, 16 * mib, 320},
		{8 * mib, 16 * mib, 200},
		{16 * mib, 16 * mib, 100},
		{1 << 40, 16 * mib, 100},
		{8 * mib, 0, 100},
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d MiB live, %d MiB floor) = %d, want %d", c.live/mib, c.floor/mib, got, c.want)
		}
	}
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC collects until GOGC is want (the tuner runs after a collection,
// on the runtime's cleanup goroutine), for at most two seconds.
func waitGOGC(t *testing.T, want int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); gogc() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d, want %d", gogc(), want)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStartFollowsTheLiveHeapAndStopPutsGOGCBack(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(150))

	const floor = 32 << 20 // far above this test's live heap
	stop := Start(floor)
	if got := gogc(); got != 400 {
		t.Fatalf("after Start with a small live heap: GOGC %d, want 400", got)
	}

	live := make([]byte, 2*floor) // the live heap passes the floor
	waitGOGC(t, 100)
	runtime.KeepAlive(live)
	live = nil

	waitGOGC(t, 400) // and falls below it again
	stop()
	if got := gogc(); got != 150 {
		t.Fatalf("after stop: GOGC %d, want 150 as Start found it", got)
	}
	for range 3 { // the sentinel armed last must not set it again
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if got := gogc(); got != 150 {
		t.Fatalf("collections after stop: GOGC %d, want 150", got)
	}
	stop() // a second stop changes nothing
	if got := gogc(); got != 150 {
		t.Fatalf("after a second stop: GOGC %d, want 150", got)
	}
}
