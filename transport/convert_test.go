package transport

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// The answer a node writes per check is one allocation, and the same
// message that building it field by field gives.
func TestAnswerIsOneAllocationOfTheSameMessage(t *testing.T) {
	for _, d := range []bucket.Decision{
		{Allowed: true, Limit: 10, Remaining: 9, ResetAfter: 1500 * time.Millisecond},
		{Limit: 5, ResetAfter: time.Hour, RetryAfter: 2*time.Second + 7, DecidedBy: bucket.DecidedByFailPolicy,
			FallbackReason: bucket.FallbackLeaving, Shadowed: true},
		{RetryAfter: -3*time.Second - 5}, // durationpb's signs: both fields negative
	} {
		want := &drlv1.CheckResponse{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining,
			ResetAfter: durationpb.New(d.ResetAfter), RetryAfter: durationpb.New(d.RetryAfter), Shadowed: d.Shadowed,
			DecidedBy: drlv1.DecidedBy(d.DecidedBy), FallbackReason: drlv1.FallbackReason(d.FallbackReason)}
		if got := DecisionToProto(d); !proto.Equal(got, want) {
			t.Errorf("DecisionToProto(%+v) = %v, want %v", d, got, want)
		}
		wantResult := &drlv1.CheckResult{Result: &drlv1.CheckResult_Decision{Decision: want}}
		if got := decisionResult(d); !proto.Equal(got, wantResult) {
			t.Errorf("decisionResult(%+v) = %v, want %v", d, got, wantResult)
		}
		var sink any
		if n := testing.AllocsPerRun(100, func() { sink = DecisionToProto(d) }); n != 1 {
			t.Errorf("DecisionToProto: %v allocations, want 1", n)
		}
		if n := testing.AllocsPerRun(100, func() { sink = decisionResult(d) }); n != 1 {
			t.Errorf("decisionResult: %v allocations, want 1", n)
		}
		_ = sink
	}
}

func TestRequestIsOneAllocationOfTheSameMessage(t *testing.T) {
	r := bucket.Request{UserID: "u", Action: "a", Limit: 7, Window: 90 * time.Second, Hits: 2,
		Algorithm: bucket.TokenBucket, Burst: 9, DryRun: true}
	hits := r.Hits
	want := &drlv1.CheckRequest{UserId: "u", Action: "a", Limit: 7, Window: durationpb.New(r.Window), Hits: &hits,
		Algorithm: r.Algorithm.String(), Burst: 9, DryRun: true}
	if got := RequestToProto(r); !proto.Equal(got, want) {
		t.Errorf("RequestToProto(%+v) = %v, want %v", r, got, want)
	}
	if back, err := RequestFromProto(RequestToProto(r)); err != nil || back != r {
		t.Errorf("RequestFromProto(RequestToProto(%+v)) = %+v, %v", r, back, err)
	}
	var sink any
	if n := testing.AllocsPerRun(100, func() { sink = RequestToProto(r) }); n != 1 {
		t.Errorf("RequestToProto: %v allocations, want 1", n)
	}
	_ = sink
}
