package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/drlimit/drl/transport"
)

var sampleStart = time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)

// finitePoint reports what is wrong with p for the JSON and the chart.
func finitePoint(p transport.RatePoint) error {
	if math.IsNaN(p.PerSecond) || math.IsInf(p.PerSecond, 0) || p.PerSecond < 0 ||
		math.IsNaN(p.DeniedShare) || p.DeniedShare < 0 || p.DeniedShare > 1 {
		return fmt.Errorf("point %+v is out of range", p)
	}
	return nil
}

// The rate now and the history, one sample at a time.
func TestStatusRatesSteps(t *testing.T) {
	var r rates
	for i, step := range []struct {
		at             time.Duration // since sampleStart
		checks, denied uint64        // totals
		points         int
		last           transport.RatePoint // newest point; At is filled in from at
		perSecond      float64             // the rate now, over rateWindow seconds
		deniedNow      float64
	}{
		{0, 0, 0, 0, transport.RatePoint{}, 0, 0},
		{time.Second, 10, 5, 1, transport.RatePoint{PerSecond: 10, DeniedShare: 0.5}, 10, 0.5},
		{2 * time.Second, 30, 5, 2, transport.RatePoint{PerSecond: 20}, 15, 5.0 / 30},
		{3 * time.Second, 30, 5, 3, transport.RatePoint{}, 10, 5.0 / 30},                                 // no checks: nothing denied
		{3 * time.Second, 40, 6, 4, transport.RatePoint{}, 40.0 / 3, 6.0 / 40},                           // no time passed: 0, not Inf
		{4 * time.Second, 30, 6, 5, transport.RatePoint{}, 30.0 / 4, 6.0 / 30},                           // counters went back: 0, not huge
		{5 * time.Second, 40, 16, 6, transport.RatePoint{PerSecond: 10, DeniedShare: 1}, 7.5, 11.0 / 30}, // more denied than checked is all
		{6 * time.Second, 50, 16, 7, transport.RatePoint{PerSecond: 10}, 5, 11.0 / 20},                   // the window: 2 s to 6 s
	} {
		r.add(rateSample{at: sampleStart.Add(step.at), checks: step.checks, denied: step.denied})
		h := r.history()
		if h == nil || len(h) != step.points {
			t.Fatalf("step %d: history() has %d points (nil %v), want %d", i, len(h), h == nil, step.points)
		}
		for _, p := range h {
			if err := finitePoint(p); err != nil {
				t.Errorf("step %d: %v", i, err)
			}
		}
		if len(h) > 0 {
			want := step.last
			want.At = sampleStart.Add(step.at)
			if got := h[len(h)-1]; got != want {
				t.Errorf("step %d: newest point = %+v, want %+v", i, got, want)
			}
		}
		if ps, d := r.now(); math.Abs(ps-step.perSecond) > 1e-9 || math.Abs(d-step.deniedNow) > 1e-9 {
			t.Errorf("step %d: now() = %g/s, %g denied; want %g/s, %g", i, ps, d, step.perSecond, step.deniedNow)
		}
	}
}

// The ring keeps the last historyLen points and no more, oldest first.
func TestStatusRatesRingWraps(t *testing.T) {
	var r rates
	const total = 3*historyLen + 7
	for i := range total {
		r.add(rateSample{at: sampleStart.Add(time.Duration(i) * time.Second), checks: uint64(i * i)})
	}
	h := r.history()
	if len(h) != historyLen {
		t.Fatalf("history() has %d points after %d samples, want %d", len(h), total, historyLen)
	}
	for j, p := range h {
		i := total - historyLen + j // the sample that ends this point
		want := transport.RatePoint{At: sampleStart.Add(time.Duration(i) * time.Second), PerSecond: float64(2*i - 1)}
		if p != want {
			t.Fatalf("history()[%d] = %+v, want %+v", j, p, want)
		}
	}
	if ps, _ := r.now(); ps != float64(2*(total-1)-rateWindow) { // (i² - (i-5)²)/5 for i = total-1
		t.Errorf("now() = %g/s, want %d", ps, 2*(total-1)-rateWindow)
	}
}

// Readers and the sampler share the ring; run with -race.
func TestStatusRatesConcurrent(t *testing.T) {
	var r rates
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2 * historyLen {
			r.add(rateSample{at: sampleStart.Add(time.Duration(i) * time.Second), checks: uint64(i)})
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 200 {
				for _, p := range r.history() {
					if err := finitePoint(p); err != nil {
						t.Error(err)
						return
					}
				}
				r.now()
			}
		})
	}
	wg.Wait()
}

// A running node fills RateHistory from its own checks, and the status
// JSON stays encodable.
func TestStatusRateHistoryOfNode(t *testing.T) {
	n := startCluster(t, 1, nil)[0]
	ctx := context.Background()
	eventually(t, 10*time.Second, func() error {
		for range 20 {
			if _, err := n.RateLimit(ctx, "user", "status", 5, time.Minute); err != nil {
				return err
			}
		}
		st := n.Status()
		for _, p := range st.RateHistory {
			if err := finitePoint(p); err != nil {
				t.Fatal(err)
			}
			if p.PerSecond > 0 && p.DeniedShare > 0 {
				return nil
			}
		}
		return fmt.Errorf("RateHistory = %+v, want a point with checks and denials", st.RateHistory)
	})
	if _, err := json.Marshal(n.Status()); err != nil {
		t.Fatalf("json.Marshal(Status()) = %v", err)
	}
}
