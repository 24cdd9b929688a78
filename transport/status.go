package transport

import (
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/drlimit/drl"
)

// Status is what a node's status page shows.
type Status struct {
	Node    string         `json:"node"`
	Ready   bool           `json:"ready"`
	Members []MemberStatus `json:"members"`
	// Quorum is the node's count of the cluster: without a majority it
	// answers every check by its fail policy.
	Quorum drl.Quorum `json:"quorum"`
	// Keys is how many buckets this node holds.
	Keys int `json:"keys"`
	// ChecksPerSecond and DeniedShare are over the last few seconds, for
	// checks entering through this node.
	ChecksPerSecond float64           `json:"checks_per_second"`
	DeniedShare     float64           `json:"denied_share"`
	Fallbacks       map[string]uint64 `json:"fallbacks"` // by policy, since start
	Events          []Event           `json:"events"`    // newest first
	Now             time.Time         `json:"now"`
	// RateHistory is the same two rates second by second over the last few
	// minutes, oldest first; the page draws it as a chart. Values are
	// finite: PerSecond >= 0 and DeniedShare in [0, 1].
	RateHistory []RatePoint `json:"rate_history"`
	// Warnings are what the operator should fix, such as a node running
	// unprotected with Insecure; the page shows them first.
	Warnings []string `json:"warnings,omitempty"`
}

// MemberStatus is one member as the node sees it.
type MemberStatus struct {
	drl.Member
	// Share is the member's share of the ring's partitions, 0 to 1.
	Share float64 `json:"share"`
}

// Event is one thing the node noticed: a ring change, fallbacks.
type Event struct {
	At    time.Time `json:"at"`
	What  string    `json:"what"`
	Count int       `json:"count"` // how many times in a row, for repeated events
}

// RatePoint is the checks entering a node over one sampling interval
// (about a second) that ended At.
type RatePoint struct {
	At          time.Time `json:"at"`
	PerSecond   float64   `json:"per_second"`
	DeniedShare float64   `json:"denied_share"` // 0 when there were no checks
}

//go:embed status.html
var statusFS embed.FS

var statusPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"percent": func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"rate":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"ago":     func(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() + " ago" },
	"mulf":    func(a, b float64) float64 { return a * b },
	"chart":   newRateChart,
}).ParseFS(statusFS, "status.html"))

// serveStatus renders the page; it refreshes itself every two seconds
// (a meta refresh: no JavaScript).
func serveStatus(source func() Status) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := source()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := statusPage.Execute(w, st); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}

// The rate chart's geometry, in SVG user units: a plot area of
// chartW×chartH with room around it for the axis labels and the legend.
const (
	chartSpan   = 5 * time.Minute // the x axis: this long, up to the newest point
	chartW      = 560
	chartH      = 140
	chartLeft   = 52 // the checks/s labels
	chartRight  = 44 // the share-denied labels
	chartTop    = 30 // the legend
	chartBottom = 22 // the time labels
)

// rateChart is what status.html needs to draw RateHistory as an inline
// SVG: two polylines over one time axis, checks/s against the left axis
// (0 to Top) and the share denied against the right one (0 to 100%).
// Everything is computed here, so the template does no arithmetic.
type rateChart struct {
	Empty        bool   // no points yet: the page shows a placeholder
	Span, Ago    string // "last 5 min", "5 min ago": the x axis
	Top          string // the checks/s at the top of the plot
	Rate, Denied string // the polylines' points attributes
	// RateDot and DeniedDot mark the newest points, so that a history of
	// one point still shows.
	RateDot, DeniedDot chartDot
	Summary            string // the chart in words, for its <desc>
	W, H               int    // the plot area
	Left, Up           int    // where the plot area starts in the SVG
	MX, MY             int    // the plot area's middle
	SVGW, SVGH         int    // the whole SVG
}

// chartDot is one point in the plot area.
type chartDot struct{ X, Y float64 }

// newRateChart lays out history, oldest first, for the page.
func newRateChart(history []RatePoint) rateChart {
	c := rateChart{
		Span: "last " + spanLabel(chartSpan), Ago: spanLabel(chartSpan) + " ago",
		W: chartW, H: chartH, Left: chartLeft, Up: chartTop, MX: chartW / 2, MY: chartH / 2,
		SVGW: chartLeft + chartW + chartRight, SVGH: chartTop + chartH + chartBottom,
	}
	history = recent(history, chartSpan)
	if len(history) == 0 {
		c.Empty, c.Top = true, axisLabel(1)
		c.Summary = "No samples yet."
		return c
	}
	peak := 0.0
	for _, p := range history {
		if v := finite(p.PerSecond); v > peak {
			peak = v
		}
	}
	top := niceTop(peak)
	perSecond := func(p RatePoint) float64 { return p.PerSecond }
	denied := func(p RatePoint) float64 { return p.DeniedShare }
	c.Top = axisLabel(top)
	c.Rate = chartPoints(history, perSecond, top, chartW, chartH)
	c.Denied = chartPoints(history, denied, 1, chartW, chartH)
	last := history[len(history)-1]
	c.RateDot.X, c.RateDot.Y = chartXY(last, last.At, last.PerSecond, top, chartW, chartH)
	c.DeniedDot.X, c.DeniedDot.Y = chartXY(last, last.At, last.DeniedShare, 1, chartW, chartH)
	c.Summary = fmt.Sprintf("Now %.1f checks/s with %.1f%% denied; peak %.1f checks/s over the %s.",
		max(0, finite(last.PerSecond)), 100*max(0, min(1, finite(last.DeniedShare))), peak, c.Span)
	return c
}

// recent returns the tail of history, oldest first, that falls within span
// of its newest point.
func recent(history []RatePoint, span time.Duration) []RatePoint {
	if len(history) == 0 {
		return nil
	}
	end := history[len(history)-1].At
	i := len(history)
	for i > 0 && end.Sub(history[i-1].At) <= span {
		i--
	}
	return history[i:]
}

// chartPoints maps history, oldest first, to the points attribute of an SVG
// polyline in a w×h box. x is time: the newest point is at the right edge
// and one chartSpan earlier is the left edge (older points are left out).
// y is value(p) from 0 at the bottom edge to top at the top edge; values
// are clamped to that range, NaN counts as 0 and a top that is not a
// positive finite number as 1, so the result never holds NaN or Inf. An
// empty history gives "".
func chartPoints(history []RatePoint, value func(RatePoint) float64, top, w, h float64) string {
	history = recent(history, chartSpan)
	var b []byte
	for _, p := range history {
		x, y := chartXY(p, history[len(history)-1].At, value(p), top, w, h)
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendFloat(b, x, 'f', 1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, y, 'f', 1, 64)
	}
	return string(b)
}

// chartXY places value v of the point p as chartPoints does, with end at
// the right edge.
func chartXY(p RatePoint, end time.Time, v, top, w, h float64) (x, y float64) {
	if !(top > 0) || math.IsInf(top, 0) {
		top = 1
	}
	x = w - w*float64(end.Sub(p.At))/float64(chartSpan)
	x = max(0, min(w, x)) // a point after end, if history is out of order
	y = h - h*max(0, min(1, finite(v)/top))
	return x, y
}

// finite returns f, with NaN as 0 and ±Inf as the largest float of that
// sign.
func finite(f float64) float64 {
	switch {
	case math.IsNaN(f):
		return 0
	case math.IsInf(f, 1):
		return math.MaxFloat64
	case math.IsInf(f, -1):
		return -math.MaxFloat64
	}
	return f
}

// niceTop returns the axis top for a peak: the least 1, 2 or 5 times a
// power of ten that is at least peak, and at least 1.
func niceTop(peak float64) float64 {
	if !(peak > 1) {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(peak)))
	for _, m := range []float64{1, 2, 5, 10} {
		if t := m * e; t >= peak && !math.IsInf(t, 0) {
			return t
		}
	}
	return peak // near the largest float
}

// axisLabel writes an axis value briefly: 500, 5000, 20k, 1.5M.
func axisLabel(f float64) string {
	for _, u := range []struct {
		from, unit float64
		suffix     string
	}{{1e9, 1e9, "G"}, {1e6, 1e6, "M"}, {1e4, 1e3, "k"}} {
		if f >= u.from {
			return strconv.FormatFloat(f/u.unit, 'g', 3, 64) + u.suffix
		}
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// spanLabel writes a chart span as "5 min" or "90 s".
func spanLabel(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	return strconv.Itoa(int(d/time.Second)) + " s"
}
