package envoyrls

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

// Service answers ShouldRateLimit from rules and a cluster.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer
	limiter drl.Limiter
	rules   atomic.Pointer[Rules]
}

// MaxDescriptors bounds the descriptors in one request (each is a limit
// checked together with the others).
const MaxDescriptors = drl.MaxLimitsPerCheck

// NewService returns a service that decides with lim under rules.
func NewService(lim drl.Limiter, rules *Rules) *Service {
	s := &Service{limiter: lim}
	s.rules.Store(rules)
	return s
}

// SetRules swaps the rules, for a reload; requests in flight finish under
// the old ones.
func (s *Service) SetRules(r *Rules) { s.rules.Store(r) }

// Register registers the service on gs.
func (s *Service) Register(gs *grpc.Server) { rlsv3.RegisterRateLimitServiceServer(gs, s) }

// ShouldRateLimit decides one request. Its descriptors are checked
// together, as one multi-limit check: the request is OVER_LIMIT if any
// descriptor's limit denies, and then no descriptor's hits are spent
// (users of envoyproxy/ratelimit see denied hits counted against the
// other limits; here they are not). A descriptor that matches no rule, or
// an unlimited one, is OK with no limit. A shadow-mode rule counts its
// denials but answers OK.
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	rules := s.rules.Load()
	descs := req.GetDescriptors()
	switch {
	case req.GetDomain() == "":
		return nil, status.Error(codes.InvalidArgument, "envoyrls: domain is empty")
	case len(descs) == 0:
		return nil, status.Error(codes.InvalidArgument, "envoyrls: no descriptors")
	case len(descs) > MaxDescriptors:
		return nil, status.Errorf(codes.InvalidArgument, "envoyrls: %d descriptors, more than %d", len(descs), MaxDescriptors)
	}
	out := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK,
		Statuses: make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(descs))}
	var checks []drl.LimitCheck
	var checked []int // descriptor of each check
	var limits []*limit
	for i, d := range descs {
		out.Statuses[i] = &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		if d.GetIsNegativeHits() {
			return nil, status.Errorf(codes.InvalidArgument, "envoyrls: descriptors[%d]: negative hits are not supported", i)
		}
		entries := make([][2]string, len(d.GetEntries()))
		for j, e := range d.GetEntries() {
			if e.GetKey() == "" {
				return nil, status.Errorf(codes.InvalidArgument, "envoyrls: descriptors[%d].entries[%d]: empty key", i, j)
			}
			entries[j] = [2]string{e.GetKey(), e.GetValue()}
		}
		l, user, action, ok := rules.match(req.GetDomain(), entries)
		if !ok || l.unlimited {
			continue
		}
		c := drl.LimitCheck{Request: l.req, Options: drl.CheckOptions{FailPolicy: l.policy, Shadow: l.shadow}}
		c.Request.UserID, c.Request.Action = user, action
		if o := d.GetLimit(); o != nil {
			// Envoy's per-route override of the limit's size and unit.
			w, ok := envoyUnits[rlsv3.RateLimitResponse_RateLimit_Unit(o.GetUnit())] // the same numbers for second to day
			if !ok || o.GetRequestsPerUnit() == 0 {
				return nil, status.Errorf(codes.InvalidArgument, "envoyrls: descriptors[%d].limit: %d per %v", i, o.GetRequestsPerUnit(), o.GetUnit())
			}
			c.Request.Limit, c.Request.Window, c.Request.Burst = int64(o.GetRequestsPerUnit()), w, 0
		}
		c.Request.Hits = hits(req.GetHitsAddend(), d.GetHitsAddend().GetValue(), d.GetHitsAddend() != nil)
		checks = append(checks, c)
		checked = append(checked, i)
		limits = append(limits, l)
	}
	if len(checks) == 0 {
		return out, nil
	}
	md, err := s.limiter.CheckAll(ctx, checks)
	if err != nil {
		return nil, transport.GRPCError(err)
	}
	if !md.Allowed {
		out.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
	}
	for k, d := range md.Decisions {
		st := out.Statuses[checked[k]]
		if !d.Allowed {
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
		}
		st.CurrentLimit = currentLimit(limits[k], checks[k].Request)
		st.LimitRemaining = uint32(min(d.Remaining, math.MaxUint32))
		st.DurationUntilReset = durationpb.New(d.ResetAfter)
	}
	return out, nil
}

// hits is a descriptor's cost: its own hits_addend if set, else the
// request's, where 0 means 1.
func hits(request uint32, own uint64, ownSet bool) int64 {
	switch {
	case ownSet:
		return int64(min(own, bucket.MaxLimit))
	case request == 0:
		return 1
	}
	return int64(request)
}

var envoyUnits = map[rlsv3.RateLimitResponse_RateLimit_Unit]time.Duration{
	rlsv3.RateLimitResponse_RateLimit_SECOND: 1e9,
	rlsv3.RateLimitResponse_RateLimit_MINUTE: 60e9,
	rlsv3.RateLimitResponse_RateLimit_HOUR:   3600e9,
	rlsv3.RateLimitResponse_RateLimit_DAY:    86400e9,
}

func currentLimit(l *limit, req bucket.Request) *rlsv3.RateLimitResponse_RateLimit {
	out := &rlsv3.RateLimitResponse_RateLimit{Name: l.name, RequestsPerUnit: uint32(min(req.Limit, math.MaxUint32))}
	for u, w := range envoyUnits {
		if w == req.Window {
			out.Unit = u
		}
	}
	if out.Unit == rlsv3.RateLimitResponse_RateLimit_UNKNOWN && req.Window%time.Second == 0 {
		// A window that is no unit: seconds, times a multiplier.
		out.Unit = rlsv3.RateLimitResponse_RateLimit_SECOND
		out.UnitMultiplier = wrapperspb.UInt32(uint32(req.Window / time.Second))
	}
	if out.Name == "" {
		out.Name = fmt.Sprintf("%d per %v", req.Limit, req.Window)
	}
	return out
}
