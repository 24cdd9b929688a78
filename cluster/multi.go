package cluster

import (
	"context"
	"sync"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

// checkFunc decides one check, as drl.Limiter.CheckWith does.
type checkFunc func(ctx context.Context, req bucket.Request, opts drl.CheckOptions) (bucket.Decision, error)

// checkAllWith runs a multi-limit check over check, in two rounds so that
// a denied request spends nothing:
//
//  1. a dry run of every limit, side by side: if any would deny (and is
//     not in shadow mode), the request is denied with the dry-run
//     decisions, and nothing was spent;
//  2. otherwise the real checks, side by side. A limit can still deny here
//     if concurrent requests spent it between the rounds; then the request
//     is denied and the limits that admitted in this round stay spent,
//     the one case where a denied request costs something.
//
// One limit alone takes one round. Argument errors name the limit
// ("limits[1].window"). Checks that local says are decided without a
// hop run on the caller's goroutine, while the others run side by side
// (a goroutine and its wake-up cost far more than a local decision), as in
// CheckBatch.
func checkAllWith(ctx context.Context, checks []drl.LimitCheck, check checkFunc, local func(userID, action string) bool) (allowed bool, ds []bucket.Decision, err error) {
	if len(checks) == 1 {
		d, err := check(ctx, checks[0].Request, checks[0].Options)
		if err != nil {
			return false, nil, transport.InLimit(0, err)
		}
		return d.Allowed, []bucket.Decision{d}, nil
	}
	dry := make([]drl.LimitCheck, len(checks))
	for i, c := range checks {
		dry[i] = c
		dry[i].Request.DryRun = true
	}
	for _, round := range [][]drl.LimitCheck{dry, checks} {
		if ds, err = checkEach(ctx, round, check, local); err != nil {
			return false, nil, err
		}
		for _, d := range ds {
			if !d.Allowed {
				return false, ds, nil
			}
		}
	}
	return true, ds, nil
}

// checkEach decides every check, the remote ones side by side; the first
// error wins.
func checkEach(ctx context.Context, checks []drl.LimitCheck, check checkFunc, local func(userID, action string) bool) ([]bucket.Decision, error) {
	ds := make([]bucket.Decision, len(checks))
	errs := make([]error, len(checks))
	here := make([]bool, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		if here[i] = local(c.Request.UserID, c.Request.Action); !here[i] {
			wg.Go(func() { ds[i], errs[i] = check(ctx, c.Request, c.Options) })
		}
	}
	for i, c := range checks {
		if here[i] {
			ds[i], errs[i] = check(ctx, c.Request, c.Options)
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, transport.InLimit(i, err)
		}
	}
	return ds, nil
}
