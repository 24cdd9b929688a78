package transport

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// fallbackLimiter answers every check as a node with no ring does: by its
// fail policy, saying so.
type fallbackLimiter struct{}

func (fallbackLimiter) CheckWith(_ context.Context, req bucket.Request, _ drl.CheckOptions) (bucket.Decision, error) {
	return bucket.Decision{Limit: req.Limit, RetryAfter: time.Second,
		DecidedBy: bucket.DecidedByFailPolicy, FallbackReason: bucket.FallbackNoRing}, nil
}

func (l fallbackLimiter) CheckAll(ctx context.Context, checks []drl.LimitCheck) (drl.MultiDecision, error) {
	d, _ := l.CheckWith(ctx, checks[0].Request, checks[0].Options)
	return drl.MultiDecision{Decisions: []bucket.Decision{d}}, nil
}

// Every check answer, over HTTP and gRPC, says what decided it and, for
// the fail policy, why.
func TestAnswersSayWhoDecided(t *testing.T) {
	srv := httptest.NewServer(NewHTTPHandler(ServerConfig{Limiter: fallbackLimiter{}, Directory: oneMember{}}))
	t.Cleanup(srv.Close)
	check := `{"user_id":"u","action":"a","limit":5,"window":60}`
	said := func(what string, d map[string]any) {
		t.Helper()
		if d["decided_by"] != "fail_policy" || d["fallback_reason"] != "no_ring" {
			t.Errorf("%s: %v, want decided_by fail_policy and fallback_reason no_ring", what, d)
		}
	}
	_, out := do(t, "POST", srv.URL+"/v1/ratelimit", check)
	said("POST /v1/ratelimit", out)
	_, out = do(t, "POST", srv.URL+"/v1/ratelimit:batch", `{"checks":[`+check+`]}`)
	said("POST /v1/ratelimit:batch", out["results"].([]any)[0].(map[string]any)["decision"].(map[string]any))
	_, out = do(t, "POST", srv.URL+"/v1/ratelimit:all", `{"limits":[`+check+`]}`)
	said("POST /v1/ratelimit:all", out["decisions"].([]any)[0].(map[string]any))

	g := &grpcServer{cfg: ServerConfig{Limiter: fallbackLimiter{}}.withDefaults()}
	req := &drlv1.CheckRequest{UserId: "u", Action: "a", Limit: 5, Window: durationpb.New(time.Minute)}
	resp, err := g.Check(context.Background(), req)
	if err != nil || resp.GetDecidedBy() != drlv1.DecidedBy_DECIDED_BY_FAIL_POLICY || resp.GetFallbackReason() != drlv1.FallbackReason_FALLBACK_REASON_NO_RING {
		t.Errorf("gRPC Check = %v, %v; want decided by the fail policy for no ring", resp, err)
	}
	batch, err := g.CheckBatch(context.Background(), &drlv1.CheckBatchRequest{Checks: []*drlv1.CheckRequest{req}})
	if err != nil || batch.GetResults()[0].GetDecision().GetFallbackReason() != drlv1.FallbackReason_FALLBACK_REASON_NO_RING {
		t.Errorf("gRPC CheckBatch = %v, %v; want decided by the fail policy for no ring", batch, err)
	}
	all, err := g.CheckAll(context.Background(), &drlv1.CheckAllRequest{Limits: []*drlv1.CheckRequest{req}})
	if err != nil || all.GetDecisions()[0].GetDecidedBy() != drlv1.DecidedBy_DECIDED_BY_FAIL_POLICY {
		t.Errorf("gRPC CheckAll = %v, %v; want decided by the fail policy", all, err)
	}
}

// The Go values and the proto enums name the same things: every value
// survives the trip, and the names the HTTP answers give are the proto
// names, lowercase, without their prefix.
func TestDecidedByMatchesTheProto(t *testing.T) {
	for by := bucket.DecidedByUnknown; by <= bucket.DecidedByFailPolicy; by++ {
		for why := bucket.FallbackNone; why <= bucket.FallbackLeaving; why++ {
			d := bucket.Decision{DecidedBy: by, FallbackReason: why}
			if got := DecisionFromProto(DecisionToProto(d)); got != d {
				t.Errorf("DecisionFromProto(DecisionToProto(%+v)) = %+v", d, got)
			}
		}
		if by == bucket.DecidedByUnknown {
			continue
		}
		if want := "DECIDED_BY_" + strings.ToUpper(by.String()); drlv1.DecidedBy(by).String() != want {
			t.Errorf("%v is %v in the proto, want %s", by, drlv1.DecidedBy(by), want)
		}
	}
	for why := bucket.FallbackNoRing; why <= bucket.FallbackLeaving; why++ {
		if want := "FALLBACK_REASON_" + strings.ToUpper(why.String()); drlv1.FallbackReason(why).String() != want {
			t.Errorf("%v is %v in the proto, want %s", why, drlv1.FallbackReason(why), want)
		}
	}
	if got := DecisionFromProto(&drlv1.CheckResponse{DecidedBy: 42, FallbackReason: 42}); got.DecidedBy != 0 || got.FallbackReason != 0 {
		t.Errorf("values from a newer node read as %+v, want unknown", got)
	}
}
