package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster/clustertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hammer makes callers×each one-hit checks on (user, "upload") with limit
// per hour, side by side, and returns how many were admitted.
func hammer(t *testing.T, c *Client, callers, each int, user string, limit int64) int64 {
	t.Helper()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				ok, err := c.RateLimit(context.Background(), user, "upload", limit, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return admitted.Load()
}

// Through the client, spread over three real nodes, one key admits exactly
// its limit, and every other call of the public API answers.
func TestClientAgainstCluster(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	c, err := New(clustertest.GRPCAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if got := hammer(t, c, 8, 50, "alice", 100); got != 100 {
		t.Fatalf("admitted %d of 400 with limit 100", got)
	}

	view, err := c.Members(ctx)
	self, members, q := view.Self, view.Members, view.Quorum
	if err != nil || self == "" || len(members) != 3 || !q.Majority || q.Size != 3 {
		t.Fatalf("Members: %q %v %+v %v", self, members, q, err)
	}
	o, err := c.Owner(ctx, "alice", "upload")
	owner := o.Member
	if err != nil || owner.Name == "" {
		t.Fatalf("Owner: %v %v", owner, err)
	}

	limits := []drl.LimitCheck{
		{Request: bucket.Request{UserID: "bob", Action: "api", Limit: 1, Window: time.Hour, Hits: 1}},
		{Request: bucket.Request{UserID: "bob", Action: "api-daily", Limit: 10, Window: time.Hour, Hits: 1}},
	}
	for i, want := range []bool{true, false} {
		md, err := c.CheckAll(ctx, limits)
		ok, ds := md.Allowed, md.Decisions
		if err != nil || ok != want || len(ds) != 2 {
			t.Fatalf("CheckAll %d: %v %+v %v", i, ok, ds, err)
		}
	}

	// Every node saw some of alice's denials enter; reset forgives her.
	reset, err := c.Reset(ctx, "alice", "upload")
	dropped, confirmed := reset.Dropped, reset.ConfirmedBy
	if err != nil || dropped != 1 || len(confirmed) != 3 {
		t.Fatalf("Reset: %d %v %v", dropped, confirmed, err)
	}
	if ok, err := c.RateLimit(ctx, "alice", "upload", 100, time.Hour); err != nil || !ok {
		t.Fatalf("after reset: %v %v", ok, err)
	}

	shadow := bucket.Request{UserID: "carol", Action: "api", Limit: 1, Window: time.Hour, Hits: 1}
	c.Check(ctx, shadow)
	d, err := c.CheckWith(ctx, shadow, drl.CheckOptions{Shadow: true})
	if err != nil || !d.Allowed || !d.Shadowed || d.DecidedBy != bucket.DecidedByOwner {
		t.Fatalf("shadow check over the limit: %+v %v, want allowed, shadowed, decided by the owner", d, err)
	}
	c.Check(ctx, shadow)
	if top, err := c.TopDenied(ctx, 5); err != nil || len(top.Keys) > 5 {
		t.Fatalf("TopDenied: %v %v", top, err)
	}
}

// Bad input comes back as the typed error, naming the field.
func TestClientBadInput(t *testing.T) {
	nodes := clustertest.Start(t, 1, nil)
	c, err := New(clustertest.GRPCAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Check(context.Background(), bucket.Request{UserID: "u", Action: "a", Limit: 5, Window: 2 * time.Hour, Hits: 1})
	var ae *bucket.ArgumentError
	if !errors.Is(err, bucket.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Field != "window" {
		t.Fatalf("window of 2h: %v", err)
	}
	_, err = c.CheckAll(context.Background(), []drl.LimitCheck{
		{Request: bucket.Request{UserID: "u", Action: "a", Limit: 5, Window: time.Second, Hits: 1}},
		{Request: bucket.Request{UserID: "", Action: "a", Limit: 5, Window: time.Second, Hits: 1}},
	})
	if !errors.As(err, &ae) || ae.Field != "limits[1].user_id" {
		t.Fatalf("empty user in limit 1: %v", err)
	}
	// Bytes that are not UTF-8 reach the node (the generated codec, unlike
	// protobuf's reflection, does not refuse them whole) and come back as
	// the field at fault.
	_, err = c.Check(context.Background(), bucket.Request{UserID: "u\xff", Action: "a", Limit: 5, Window: time.Second, Hits: 1})
	if !errors.Is(err, bucket.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Field != "user_id" {
		t.Fatalf("user not UTF-8: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New with no addresses")
	}
}

// A node that stops is skipped: calls go on through the others.
func TestClientSkipsAStoppedNode(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	c, err := New(clustertest.GRPCAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitForRing(t, nodes[:2], 2)
	for i := range 30 {
		if _, err := c.RateLimit(ctx, "dave", "api", 1000, time.Minute); err != nil {
			t.Fatalf("call %d with a node down: %v", i, err)
		}
	}
}
