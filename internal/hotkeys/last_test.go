package hotkeys

import (
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
)

// What an owner last said is kept per bucket, whatever the hits of the
// check that asked, for one window, and forgotten on a reset.
func TestLastAnswers(t *testing.T) {
	clock := &bucket.ManualClock{}
	l := NewLastAnswers(clock)
	key := bucket.Key{Hi: 1, Lo: 2}
	req := bucket.Request{Limit: 100, Window: time.Minute, Hits: 3}
	if _, ok := l.Remaining(key, req); ok {
		t.Fatal("an answer before any was stored")
	}
	l.Store(key, req, bucket.Decision{Allowed: true, Remaining: 40}, clock.Now())
	other := req
	other.Hits, other.DryRun = 1, true
	if left, ok := l.Remaining(key, other); !ok || left != 40 {
		t.Fatalf("Remaining = %d, %v; want 40 for the same bucket", left, ok)
	}
	shape := req
	shape.Limit = 101
	if _, ok := l.Remaining(key, shape); ok {
		t.Fatal("an answer for another bucket shape")
	}
	clock.Advance(time.Minute)
	if _, ok := l.Remaining(key, req); ok {
		t.Fatal("an answer a window old still counts")
	}
	l.Store(key, req, bucket.Decision{Remaining: 0}, clock.Now())
	l.Forget(key)
	if _, ok := l.Remaining(key, req); ok {
		t.Fatal("an answer survived Forget")
	}
}
