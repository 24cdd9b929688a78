package bucket_test

import (
	"fmt"
	"time"

	"github.com/drlimit/drl/bucket"
)

// Five logins per minute under the default algorithm: however the five are
// spaced, a sixth within 60 s of the first is denied, and RetryAfter says
// when the first leaves the window.
func ExampleStore_Check() {
	clock := &bucket.ManualClock{}
	s, err := bucket.NewStore(bucket.StoreConfig{Clock: clock, SweepInterval: -1})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	login := bucket.Request{UserID: "alice", Action: "login", Limit: 5, Window: time.Minute, Hits: 1}
	for _, at := range []time.Duration{0, 14 * time.Second, 28 * time.Second, 42 * time.Second, 56 * time.Second} {
		clock.Set(at)
		d, _ := s.Check(login)
		fmt.Println(at, d.Allowed, d.Remaining)
	}
	clock.Set(59 * time.Second)
	d, _ := s.Check(login)
	fmt.Println("59s", d.Allowed, d.RetryAfter)
	// Output:
	// 0s true 4
	// 14s true 3
	// 28s true 2
	// 42s true 1
	// 56s true 0
	// 59s false 1s
}
