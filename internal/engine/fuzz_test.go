package engine

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// FuzzCheck drives the public entry with arbitrary input and an arbitrary
// order of times. Whatever comes in: no panic; bad input is an
// ErrInvalidArgument that changes nothing; a decision's numbers stay in
// range.
func FuzzCheck(f *testing.F) {
	f.Add("u1", "login", int64(5), int64(time.Minute), int64(0), int64(1), uint8(0), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add("", "x", int64(0), int64(0), int64(-1), int64(-1), uint8(9), []byte{})
	f.Add("u", "a", int64(MaxLimit), int64(time.Hour), int64(MaxLimit), int64(MaxLimit), uint8(2), []byte{255, 255, 255, 255, 0, 0, 0, 128})
	f.Add("u", "a", int64(3), int64(time.Second), int64(0), int64(3), uint8(3), []byte{0, 0, 0, 0, 0, 0, 0, 0, 9, 9})
	f.Add("\xff", "a", int64(1), int64(time.Second), int64(0), int64(1), uint8(4), []byte{})
	f.Add("u", "a", int64(7), int64(1500*time.Millisecond), int64(7), int64(2), uint8(5), []byte{3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	// The default, strict_window: hits > 1 with the clock going back past a slot.
	f.Add("u", "login", int64(5), int64(time.Minute), int64(0), int64(2), uint8(0),
		[]byte{0, 0xe8, 0x76, 0x48, 0x17, 0, 0, 0, 0, 0, 0x5c, 0xd0, 0x0b, 0, 0, 0, 0, 0xe8, 0x76, 0x48, 0x17, 0, 0, 0})
	f.Fuzz(func(t *testing.T, user, action string, limit, window, burst, hits int64, alg uint8, times []byte) {
		clock := &ManualClock{}
		store := newTestStore(t, Config{Clock: clock, Shards: 1})
		req := Request{UserID: user, Action: action, Limit: limit, Window: time.Duration(window),
			Burst: burst, Hits: hits, Algorithm: Algorithm(alg)}
		for len(times) >= 8 || len(times) == 0 {
			if len(times) >= 8 {
				// Any time in [0, 2^40 ns), forwards or backwards.
				clock.Set(time.Duration(binary.LittleEndian.Uint64(times) & (1<<40 - 1)))
				times = times[8:]
			}
			d, err := store.Check(req)
			if err != nil {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("Check(%+v) error %v is not ErrInvalidArgument", req, err)
				}
				if store.Len() != 0 {
					t.Fatalf("a rejected check left %d keys", store.Len())
				}
				return
			}
			if d.Remaining < 0 || d.Remaining > d.Limit {
				t.Fatalf("Remaining %d outside [0, %d]", d.Remaining, d.Limit)
			}
			if d.Allowed && hits > 0 && d.Remaining > d.Limit-hits {
				t.Fatalf("spent %d but Remaining %d of %d", hits, d.Remaining, d.Limit)
			}
			if d.ResetAfter < 0 || d.RetryAfter < 0 || d.Allowed != (d.RetryAfter == 0) {
				t.Fatalf("bad waits: %+v", d)
			}
			if len(times) == 0 {
				return
			}
		}
	})
}
