package hotkeys

import (
	"strconv"
	"testing"

	"github.com/drlimit/drl/bucket"
)

// Heavy hitters survive a crowd of one-off keys, counts halve every
// minute, and a key falls out once it stops being denied.
func TestTopDeniedFindsHeavyHittersAndForgets(t *testing.T) {
	clock := &bucket.ManualClock{}
	td := NewTopDenied(clock)
	for i := range 5000 {
		td.Record("crowd-"+strconv.Itoa(i), "a")
		if i%10 == 0 {
			td.Record("heavy", "a")
		}
		if i%25 == 0 {
			td.Record("medium", "a")
		}
	}
	top := td.Top(2)
	if len(top) != 2 || top[0].UserID != "heavy" || top[1].UserID != "medium" {
		t.Fatalf("top 2: %+v", top)
	}
	if top[0].Denied < 500 || top[0].Denied-top[0].Error > 500 {
		t.Fatalf("heavy counted %d ± %d, want 500 within the error", top[0].Denied, top[0].Error)
	}
	clock.Advance(TopDeniedHalfLife)
	if got := td.Top(1)[0].Denied; got != top[0].Denied/2 {
		t.Fatalf("after a half-life: %d, want %d", got, top[0].Denied/2)
	}
	clock.Advance(20 * TopDeniedHalfLife)
	if got := td.Top(10); len(got) != 0 {
		t.Fatalf("after 20 half-lives without denials: %+v", got)
	}
	td.Record("heavy", "a")
	td.Forget("heavy", "a")
	if got := td.Top(10); len(got) != 0 {
		t.Fatalf("after forget: %+v", got)
	}
}
