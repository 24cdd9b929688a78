// Package middleware rate-limits HTTP handlers and gRPC servers with a drl
// cluster: an embedded *cluster.Node or a *client.Client. It answers
// denied calls with 429 (HTTP) or ResourceExhausted (gRPC), and tells
// callers their quota in the IETF httpapi RateLimit-Policy and RateLimit
// fields (draft-ietf-httpapi-ratelimit-headers), or the older
// RateLimit-Limit, -Remaining and -Reset trio, with Retry-After.
package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// Limit is one quota of a rule: Limit calls per Window for each key.
type Limit struct {
	// Name is the quota's name in the RateLimit fields and the action of
	// its bucket: two rules that share a Name share buckets. Required.
	Name string
	// Limit, Window, Burst and Algorithm shape the bucket as in
	// bucket.Request.
	Limit     int64
	Window    time.Duration
	Burst     int64
	Algorithm bucket.Algorithm
}

// Rule is what applies to the calls it matches: every Limit must admit a
// call (a denied call spends nothing on any of them).
type Rule struct {
	Limits []Limit
	// Shadow counts and reports denials but lets the calls through.
	Shadow bool
	// FailPolicy is what to answer when a key's owner cannot be reached;
	// zero means the node's.
	FailPolicy drl.FailPolicy
}

// ErrConfig is matched by every configuration error NewHTTP and
// UnaryServerInterceptor return.
var ErrConfig = errors.New("middleware: bad configuration")

func (r Rule) validate(where string) error {
	if len(r.Limits) == 0 || len(r.Limits) > drl.MaxLimitsPerCheck {
		return fmt.Errorf("%w: %s: %d limits; want 1 to %d", ErrConfig, where, len(r.Limits), drl.MaxLimitsPerCheck)
	}
	for i, l := range r.Limits {
		req := l.request("probe")
		if l.Name == "" {
			return fmt.Errorf("%w: %s: limit %d has no name", ErrConfig, where, i)
		}
		// The bucket package knows the bounds; ask it with a probe key.
		if err := bucket.ValidateIDs(req.UserID, req.Action); err != nil {
			return fmt.Errorf("%w: %s: limit %q: %v", ErrConfig, where, l.Name, err)
		}
		if l.Limit <= 0 || l.Window <= 0 || l.Burst < 0 {
			return fmt.Errorf("%w: %s: limit %q: limit %d per %v, burst %d", ErrConfig, where, l.Name, l.Limit, l.Window, l.Burst)
		}
	}
	return nil
}

func (l Limit) request(user string) bucket.Request {
	return bucket.Request{UserID: user, Action: l.Name, Limit: l.Limit, Window: l.Window, Burst: l.Burst,
		Algorithm: l.Algorithm, Hits: 1}
}

// key checks the caller's key as the cluster would, so that a key the
// cluster refuses (too long, not UTF-8) is the caller's error: were it
// the limiter's, OnError would let the call through unlimited.
func key(user string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if err := bucket.ValidateIDs(user, "-"); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	return user, nil
}

// verdict is a rule's answer to one call.
type verdict struct {
	allowed bool
	limits  []Limit
	ds      []bucket.Decision
}

// decide asks lim about one call by user under rule.
func decide(ctx context.Context, lim drl.Limiter, rule *Rule, user string) (verdict, error) {
	opts := drl.CheckOptions{FailPolicy: rule.FailPolicy, Shadow: rule.Shadow}
	if len(rule.Limits) == 1 {
		d, err := lim.CheckWith(ctx, rule.Limits[0].request(user), opts)
		if err != nil {
			return verdict{}, err
		}
		return verdict{allowed: d.Allowed, limits: rule.Limits, ds: []bucket.Decision{d}}, nil
	}
	checks := make([]drl.LimitCheck, len(rule.Limits))
	for i, l := range rule.Limits {
		checks[i] = drl.LimitCheck{Request: l.request(user), Options: opts}
	}
	md, err := lim.CheckAll(ctx, checks)
	if err != nil {
		return verdict{}, err
	}
	return verdict{allowed: md.Allowed, limits: rule.Limits, ds: md.Decisions}, nil
}

// HeaderStyle picks the response fields that describe the quota.
type HeaderStyle int

const (
	// HeadersDraft sends RateLimit-Policy and RateLimit, as the current
	// httpapi draft defines them. The default.
	HeadersDraft HeaderStyle = iota
	// HeadersLegacy sends RateLimit-Limit, RateLimit-Remaining and
	// RateLimit-Reset (earlier drafts, and what many clients read) for
	// the most restrictive limit.
	HeadersLegacy
	// HeadersBoth sends both sets.
	HeadersBoth
	// HeadersNone sends neither; Retry-After still comes with a denial.
	HeadersNone
)

// fields returns the quota fields of v, names in canonical form.
func (v verdict) fields(style HeaderStyle) [][2]string {
	var out [][2]string
	if style == HeadersDraft || style == HeadersBoth {
		policies := make([]string, len(v.ds))
		states := make([]string, len(v.ds))
		for i, d := range v.ds {
			l := v.limits[i]
			policies[i] = fmt.Sprintf("%q;q=%d;w=%d", l.Name, d.Limit, seconds(l.Window))
			states[i] = fmt.Sprintf("%q;r=%d;t=%d", l.Name, d.Remaining, seconds(d.ResetAfter))
		}
		out = append(out, [2]string{"RateLimit-Policy", strings.Join(policies, ", ")},
			[2]string{"RateLimit", strings.Join(states, ", ")})
	}
	if style == HeadersLegacy || style == HeadersBoth {
		d := v.ds[v.tightest()]
		out = append(out, [2]string{"RateLimit-Limit", strconv.FormatInt(d.Limit, 10)},
			[2]string{"RateLimit-Remaining", strconv.FormatInt(d.Remaining, 10)},
			[2]string{"RateLimit-Reset", strconv.FormatInt(seconds(d.ResetAfter), 10)})
	}
	if !v.allowed {
		out = append(out, [2]string{"Retry-After", strconv.FormatInt(max(seconds(v.retryAfter()), 1), 10)})
	}
	return out
}

// tightest is the limit with the fewest hits left (the one that denied,
// if one did).
func (v verdict) tightest() int {
	best := 0
	for i, d := range v.ds {
		if !d.Allowed && v.ds[best].Allowed || d.Remaining < v.ds[best].Remaining && d.Allowed == v.ds[best].Allowed {
			best = i
		}
	}
	return best
}

// retryAfter is the longest wait among the limits that denied.
func (v verdict) retryAfter() time.Duration {
	var wait time.Duration
	for _, d := range v.ds {
		if !d.Allowed {
			wait = max(wait, d.RetryAfter)
		}
	}
	return wait
}

// seconds rounds up to whole seconds, as the fields want.
func seconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}
