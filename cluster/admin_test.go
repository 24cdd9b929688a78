package cluster

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// Shadow mode admits what is over the limit, marks it, counts it, and
// spends as a real check would (a denied hit spends nothing), so a real
// check afterwards sees the true state.
func TestShadowModeAdmitsButTells(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	entry := nodes[0]
	user := userOwnedBy(t, entry, nodes[1].Name())
	req := bucket.Request{UserID: user, Action: "api", Limit: 3, Window: time.Minute, Hits: 1}
	ctx := context.Background()
	for i := range 5 {
		d, err := entry.CheckWith(ctx, req, drl.CheckOptions{Shadow: true})
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Shadowed != (i >= 3) {
			t.Fatalf("shadow check %d: %+v", i, d)
		}
	}
	if d, err := entry.Check(ctx, req); err != nil || d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("enforced check after shadow ones: %+v, %v; want denied", d, err)
	}
	if got := entry.Stats().ShadowDenied; got != 2 {
		t.Fatalf("ShadowDenied = %d, want 2", got)
	}
}

// A dry run forwarded to the owner spends nothing there.
func TestDryRunThroughForwarding(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	user := userOwnedBy(t, nodes[0], nodes[1].Name())
	req := bucket.Request{UserID: user, Action: "api", Limit: 2, Window: time.Minute, Hits: 2, DryRun: true}
	for range 5 {
		if d, err := nodes[0].Check(context.Background(), req); err != nil || !d.Allowed || d.Remaining != 2 {
			t.Fatalf("dry run: %+v, %v", d, err)
		}
	}
	req.DryRun = false
	if d, err := nodes[0].Check(context.Background(), req); err != nil || !d.Allowed {
		t.Fatalf("real check after dry runs: %+v, %v", d, err)
	}
}

// A multi-limit check is denied when any limit denies, and then spends
// nothing on the limits that would have admitted, wherever they are owned.
func TestCheckAllDeniedSpendsNothing(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	entry := nodes[0]
	perSecond := bucket.Request{UserID: userOwnedBy(t, entry, nodes[1].Name()), Action: "api", Limit: 2, Window: time.Hour, Hits: 1}
	perHour := bucket.Request{UserID: userOwnedBy(t, entry, nodes[2].Name()), Action: "api", Limit: 5, Window: time.Hour, Hits: 1}
	checks := []drl.LimitCheck{{Request: perSecond}, {Request: perHour}}
	ctx := context.Background()
	for i := range 6 {
		md, err := entry.CheckAll(ctx, checks)
		allowed, ds := md.Allowed, md.Decisions
		if err != nil {
			t.Fatal(err)
		}
		if allowed != (i < 2) || len(ds) != 2 {
			t.Fatalf("request %d: allowed %v, %+v", i, allowed, ds)
		}
		if !allowed && (ds[0].Allowed || !ds[1].Allowed) {
			t.Fatalf("request %d: the first limit should deny and the second admit: %+v", i, ds)
		}
	}
	// The second limit was spent by the two admitted requests only.
	peek := perHour
	peek.Hits = 0
	if d, err := entry.Check(ctx, peek); err != nil || d.Remaining != 3 {
		t.Fatalf("second limit after 2 admitted and 4 denied requests: %+v, %v; want 3 remaining", d, err)
	}
	if got := entry.Stats().MultiLimitRaces; got != 0 {
		t.Fatalf("MultiLimitRaces = %d without concurrency", got)
	}

	// Bad input names the limit at fault.
	bad := []drl.LimitCheck{{Request: perSecond}, {Request: perHour}}
	bad[1].Request.Window = 0
	_, err := entry.CheckAll(ctx, bad)
	var ae *bucket.ArgumentError
	if !errors.As(err, &ae) || ae.Field != "limits[1].window" || !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("bad window in limit 1: %v", err)
	}
	if _, err := entry.CheckAll(ctx, nil); !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("no limits: %v", err)
	}
}

// Reset forgives a key everywhere: at its owner, and in the deny cache of
// a member that had remembered the owner's denial.
func TestResetForgivesEverywhere(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx := context.Background()
	user := userOwnedBy(t, nodes[0], nodes[1].Name())
	req := bucket.Request{UserID: user, Action: "api", Limit: 2, Window: time.Hour, Hits: 1}
	for range 3 {
		nodes[2].Check(ctx, req)
	}
	if d, _ := nodes[2].Check(ctx, req); d.Allowed {
		t.Fatal("key not exhausted")
	}
	if nodes[2].Stats().DenyCacheHits == 0 {
		t.Fatal("the deny cache of the entry node was not used; the test proves less than it should")
	}
	reset, err := nodes[0].Reset(ctx, user, "api")
	dropped, confirmed := reset.Dropped, reset.ConfirmedBy
	if err != nil {
		t.Fatal(err)
	}
	want := []string{nodes[0].Name(), nodes[1].Name(), nodes[2].Name()}
	slices.Sort(want)
	if dropped != 1 || !slices.Equal(confirmed, want) {
		t.Fatalf("Reset: dropped %d, confirmed %v; want 1 and %v", dropped, confirmed, want)
	}
	for i := range 2 {
		if d, err := nodes[2].Check(ctx, req); err != nil || !d.Allowed {
			t.Fatalf("check %d after reset: %+v, %v", i, d, err)
		}
	}
	if _, err := nodes[0].Reset(ctx, "", "api"); !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("reset of an empty user: %v", err)
	}
}

// The top-denied list ranks keys by denials at the node they entered.
func TestTopDeniedRanksKeys(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	ctx := context.Background()
	deny := func(user string, times int) {
		req := bucket.Request{UserID: user, Action: "login", Limit: 1, Window: time.Hour, Hits: 1}
		for range times + 1 {
			nodes[0].Check(ctx, req)
		}
	}
	deny("mallory", 30)
	deny("eve", 10)
	deny("bob", 3)
	for i := range 200 { // more keys than the table holds, each denied once
		deny("crowd-"+strconv.Itoa(i), 1)
	}
	self, top := nodes[0].TopDenied(2)
	if self != nodes[0].Name() || len(top) != 2 || top[0].UserID != "mallory" || top[1].UserID != "eve" {
		t.Fatalf("TopDenied(2) = %s %+v", self, top)
	}
	if top[0].Denied-top[0].Error > 30 || top[0].Denied < 30 {
		t.Fatalf("mallory counted %d (error %d), want 30 within the error", top[0].Denied, top[0].Error)
	}
	if _, other := nodes[1].TopDenied(10); len(other) != 0 {
		t.Fatalf("node-1 saw no checks enter, yet lists %+v", other)
	}
}
