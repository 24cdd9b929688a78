package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
)

// A forwarder answers repeated denied checks itself until the owner's
// RetryAfter has passed, and then asks the owner again.
func TestDenyCacheAnswersUntilRetryAfter(t *testing.T) {
	clock := &bucket.ManualClock{}
	clock.Set(time.Hour)
	nodes := startCluster(t, 2, func(c *Config) { c.Clock = clock })
	a := nodes[0]
	user := userOwnedBy(t, a, "node-1")
	req := bucket.Request{UserID: user, Action: "api", Limit: 2, Window: 10 * time.Second, Hits: 1, Algorithm: bucket.TokenBucket}
	check := func() bucket.Decision {
		t.Helper()
		d, err := a.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	check()
	check()
	if d := check(); d.Allowed || d.RetryAfter != 5*time.Second {
		t.Fatalf("third check: %+v, want denied for 5 s", d)
	}
	forwarded := a.Stats().Forwarded
	clock.Advance(4900 * time.Millisecond)
	if d := check(); d.Allowed || d.RetryAfter != 100*time.Millisecond {
		t.Fatalf("4.9 s later: %+v, want denied for 100 ms more", d)
	}
	if st := a.Stats(); st.Forwarded != forwarded || st.DenyCacheHits != 1 {
		t.Fatalf("forwarded %d -> %d, cache hits %d: want the answer from the cache", forwarded, st.Forwarded, st.DenyCacheHits)
	}
	clock.Advance(100 * time.Millisecond)
	if d := check(); !d.Allowed {
		t.Fatalf("at RetryAfter: %+v, want the owner to admit", d)
	}
	if a.Stats().Forwarded != forwarded+1 {
		t.Fatal("the check at RetryAfter did not go to the owner")
	}
}
