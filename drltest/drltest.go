// Package drltest checks that a drl.Limiter keeps the contract that every
// limiter of this module keeps, the way testing/fstest checks a file
// system. *cluster.Node, *client.Client and the batching client each run
// it in their tests; a wrapper of your own can run it too.
package drltest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// TestLimiter runs the contract against lim as subtests. Every key it uses
// starts with a prefix unique to the call, so lim may be shared with other
// tests. lim must use the default window range (1 s to 1 h).
func TestLimiter(t *testing.T, lim drl.Limiter) {
	t.Helper()
	prefix := "drltest-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	user := func(name string) string { return prefix + name }
	ctx := context.Background()
	check := func(t *testing.T, req bucket.Request, opts drl.CheckOptions) bucket.Decision {
		t.Helper()
		d, err := lim.CheckWith(ctx, req, opts)
		if err != nil {
			t.Fatalf("CheckWith(%+v): %v", req, err)
		}
		return d
	}

	for _, alg := range bucket.Algorithms() {
		t.Run("exactly the limit/"+alg.String(), func(t *testing.T) {
			req := bucket.Request{UserID: user("exact-" + alg.String()), Action: "login", Limit: 5, Window: time.Hour, Hits: 1, Algorithm: alg}
			for i := range 5 {
				d := check(t, req, drl.CheckOptions{})
				if !d.Allowed || d.Remaining != int64(4-i) {
					t.Fatalf("check %d: %+v, want allowed with %d remaining", i+1, d, 4-i)
				}
			}
			d := check(t, req, drl.CheckOptions{})
			if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 {
				t.Fatalf("check 6: %+v, want denied with a positive RetryAfter", d)
			}
		})
	}

	t.Run("hits and peeks", func(t *testing.T) {
		req := bucket.Request{UserID: user("hits"), Action: "upload", Limit: 5, Window: time.Hour, Hits: 3}
		if d := check(t, req, drl.CheckOptions{}); !d.Allowed || d.Remaining != 2 {
			t.Fatalf("3 of 5: %+v", d)
		}
		if d := check(t, req, drl.CheckOptions{}); d.Allowed {
			t.Fatalf("3 more of the 2 left: %+v, want denied", d)
		}
		dry := req
		dry.Hits, dry.DryRun = 2, true
		if d := check(t, dry, drl.CheckOptions{}); !d.Allowed {
			t.Fatalf("a dry run of 2 with 2 left: %+v, want allowed", d)
		}
		peek := req
		peek.Hits = 0
		if d := check(t, peek, drl.CheckOptions{}); !d.Allowed || d.Remaining != 2 {
			t.Fatalf("a peek: %+v, want 2 remaining: a denied check and a dry run spend nothing", d)
		}
	})

	t.Run("shadow admits and marks", func(t *testing.T) {
		req := bucket.Request{UserID: user("shadow"), Action: "api", Limit: 1, Window: time.Hour, Hits: 1}
		check(t, req, drl.CheckOptions{})
		d := check(t, req, drl.CheckOptions{Shadow: true})
		if !d.Allowed || !d.Shadowed {
			t.Fatalf("over the limit in shadow mode: %+v, want allowed and shadowed", d)
		}
		if d := check(t, req, drl.CheckOptions{}); d.Allowed {
			t.Fatalf("after shadow mode: %+v, want denied", d)
		}
	})

	t.Run("concurrent callers admit exactly the limit", func(t *testing.T) {
		const callers, each, limit = 16, 20, 100
		req := bucket.Request{UserID: user("hammer"), Action: "api", Limit: limit, Window: time.Hour, Hits: 1}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for range each {
					d, err := lim.CheckWith(ctx, req, drl.CheckOptions{})
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := admitted.Load(); got != limit {
			t.Fatalf("admitted %d of %d with limit %d", got, callers*each, limit)
		}
	})

	t.Run("bad input names its field", func(t *testing.T) {
		good := bucket.Request{UserID: user("bad"), Action: "api", Limit: 5, Window: time.Minute, Hits: 1}
		for field, edit := range map[string]func(*bucket.Request){
			"user_id":   func(r *bucket.Request) { r.UserID = "" },
			"action":    func(r *bucket.Request) { r.Action = "" },
			"limit":     func(r *bucket.Request) { r.Limit = 0 },
			"window":    func(r *bucket.Request) { r.Window = 2 * time.Hour },
			"hits":      func(r *bucket.Request) { r.Hits = -1 },
			"algorithm": func(r *bucket.Request) { r.Algorithm = 200 },
		} {
			req := good
			edit(&req)
			_, err := lim.CheckWith(ctx, req, drl.CheckOptions{})
			if err := wantField(err, field); err != nil {
				t.Errorf("%+v: %v", req, err)
			}
		}
	})

	t.Run("a multi-limit check is all or nothing", func(t *testing.T) {
		tight := bucket.Request{UserID: user("all"), Action: "tight", Limit: 1, Window: time.Hour, Hits: 1}
		loose := bucket.Request{UserID: user("all"), Action: "loose", Limit: 5, Window: time.Hour, Hits: 1}
		check(t, tight, drl.CheckOptions{})
		md, err := lim.CheckAll(ctx, []drl.LimitCheck{{Request: tight}, {Request: loose}})
		if err != nil || md.Allowed || len(md.Decisions) != 2 {
			t.Fatalf("CheckAll: %+v, %v; want denied with two decisions", md, err)
		}
		peek := loose
		peek.Hits = 0
		if d := check(t, peek, drl.CheckOptions{}); d.Remaining != 5 {
			t.Fatalf("the loose limit after a denied multi-limit check: %+v, want all 5 left", d)
		}
		bad := loose
		bad.Window = 0
		_, err = lim.CheckAll(ctx, []drl.LimitCheck{{Request: loose}, {Request: bad}})
		if err := wantField(err, "limits[1].window"); err != nil {
			t.Errorf("a bad second limit: %v", err)
		}
		if _, err := lim.CheckAll(ctx, nil); !errors.Is(err, bucket.ErrInvalidArgument) {
			t.Errorf("no limits: %v, want an invalid argument", err)
		}
	})
}

// wantField says what is wrong unless err is a *bucket.ArgumentError about
// field that errors.Is matches to bucket.ErrInvalidArgument.
func wantField(err error, field string) error {
	var ae *bucket.ArgumentError
	switch {
	case !errors.Is(err, bucket.ErrInvalidArgument):
		return fmt.Errorf("error %v, want an invalid argument naming %s", err, field)
	case !errors.As(err, &ae) || ae.Field != field:
		return fmt.Errorf("error %v names the wrong field, want %s", err, field)
	}
	return nil
}

// TestClosed checks that lim, closed, refuses checks with drl.ErrClosed.
func TestClosed(t *testing.T, lim drl.Limiter) {
	t.Helper()
	_, err := lim.CheckWith(context.Background(), bucket.Request{UserID: "u", Action: "a", Limit: 1, Window: time.Second, Hits: 1}, drl.CheckOptions{})
	if !errors.Is(err, drl.ErrClosed) {
		t.Fatalf("a check after Close: %v, want drl.ErrClosed", err)
	}
}
