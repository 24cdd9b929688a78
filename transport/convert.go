package transport

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// RequestFromProto converts a public CheckRequest. Absent hits mean 1.
//
// A request that names no algorithm but sets a burst gets the token
// bucket: a burst means nothing to the default strict window, and it is
// what such requests got before strict_window became the default.
func RequestFromProto(m *drlv1.CheckRequest) (bucket.Request, error) {
	alg, err := bucket.ParseAlgorithm(m.GetAlgorithm())
	if err != nil {
		return bucket.Request{}, err
	}
	if m.GetAlgorithm() == "" && m.GetBurst() > 0 {
		alg = bucket.TokenBucket
	}
	req := bucket.Request{
		UserID:    m.GetUserId(),
		Action:    m.GetAction(),
		Limit:     m.GetLimit(),
		Burst:     m.GetBurst(),
		Hits:      1,
		Algorithm: alg,
		DryRun:    m.GetDryRun(),
	}
	if m.Hits != nil {
		req.Hits = m.GetHits()
	}
	if w := m.GetWindow(); w != nil {
		if err := w.CheckValid(); err != nil {
			return bucket.Request{}, &bucket.ArgumentError{Field: "window", Reason: err.Error()}
		}
		req.Window = w.AsDuration()
	}
	return req, nil
}

// RequestToProto is the inverse of RequestFromProto.
func RequestToProto(r bucket.Request) *drlv1.CheckRequest {
	// One allocation for the message and what it points to: a client
	// writes one per check.
	box := new(struct {
		request drlv1.CheckRequest
		window  durationpb.Duration
		hits    int64
	})
	m := &box.request
	m.UserId, m.Action, m.Limit, m.Burst, m.DryRun = r.UserID, r.Action, r.Limit, r.Burst, r.DryRun
	m.Algorithm = r.Algorithm.String()
	setDuration(&box.window, r.Window)
	box.hits = r.Hits
	m.Window, m.Hits = &box.window, &box.hits
	return m
}

// answerOf is d as a check's answer says it, for a request with the
// given window: ResetAfter at most the window. A bucket may count a hit a
// little past its window (the strict window rounds the newest hits up to
// their slot's end, at most 1/(K-1) of the window later; the sliding
// window weighs the previous window for one window more), and says so in
// its own ResetAfter, which the store uses to expire it; a caller reads
// reset_after as "when this window ends" and must never see more than
// the window it asked for.
func answerOf(d bucket.Decision, window time.Duration) bucket.Decision {
	if window > 0 && d.ResetAfter > window {
		d.ResetAfter = window
	}
	return d
}

// DecisionToProto converts a decision for the public API.
func DecisionToProto(d bucket.Decision) *drlv1.CheckResponse {
	a := new(answerBox)
	a.fill(d)
	return &a.response
}

// answerBox holds an answer and the durations it points to in one
// allocation, not three: a node writes one per check it answers.
type answerBox struct {
	response         drlv1.CheckResponse
	resetAt, retryAt durationpb.Duration
}

// resultBox is an answerBox as one result of a batch, with its wrappers.
type resultBox struct {
	result   drlv1.CheckResult
	decision drlv1.CheckResult_Decision
	answer   answerBox
}

func (a *answerBox) fill(d bucket.Decision) {
	r := &a.response
	r.Allowed, r.Limit, r.Remaining, r.Shadowed = d.Allowed, d.Limit, d.Remaining, d.Shadowed
	setDuration(&a.resetAt, d.ResetAfter)
	setDuration(&a.retryAt, d.RetryAfter)
	r.ResetAfter, r.RetryAfter = &a.resetAt, &a.retryAt
	// The enums number their values as bucket does.
	r.DecidedBy = drlv1.DecidedBy(d.DecidedBy)
	r.FallbackReason = drlv1.FallbackReason(d.FallbackReason)
}

// decisionResult is d as one result of a batch.
func decisionResult(d bucket.Decision) *drlv1.CheckResult {
	r := new(resultBox)
	r.answer.fill(d)
	r.decision.Decision = &r.answer.response
	r.result.Result = &r.decision
	return &r.result
}

// setDuration is what durationpb.New(d) returns, written into p.
func setDuration(p *durationpb.Duration, d time.Duration) {
	p.Seconds = int64(d / time.Second)
	p.Nanos = int32(d % time.Second)
}

// DecisionFromProto is the inverse of DecisionToProto.
func DecisionFromProto(m *drlv1.CheckResponse) bucket.Decision {
	return bucket.Decision{
		Allowed:    m.GetAllowed(),
		Limit:      m.GetLimit(),
		Remaining:  m.GetRemaining(),
		ResetAfter: m.GetResetAfter().AsDuration(),
		RetryAfter: m.GetRetryAfter().AsDuration(),
		Shadowed:   m.GetShadowed(),
		// A value this version does not know (from a newer node) reads as
		// unknown, or as a fallback without a reason it can name.
		DecidedBy:      bucket.DecidedBy(knownOr0(int32(m.GetDecidedBy()), int32(bucket.DecidedByFailPolicy))),
		FallbackReason: bucket.FallbackReason(knownOr0(int32(m.GetFallbackReason()), int32(bucket.FallbackLeaving))),
	}
}

// knownOr0 is v if it is in [0, last], else 0.
func knownOr0(v, last int32) int32 {
	if v < 0 || v > last {
		return 0
	}
	return v
}

// LimitCheckToProto converts one check with its options for the public API.
func LimitCheckToProto(c drl.LimitCheck) *drlv1.CheckRequest {
	m := RequestToProto(c.Request)
	if c.Options.FailPolicy != drl.FailDefault {
		m.FailPolicy = c.Options.FailPolicy.String()
	}
	m.Shadow = c.Options.Shadow
	return m
}
