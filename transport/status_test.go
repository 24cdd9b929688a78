package transport

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drlimit/drl"
)

var chartEnd = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// history makes points ending at chartEnd, one per second, with these
// checks per second and a denied share of a tenth of each.
func history(perSecond ...float64) []RatePoint {
	out := make([]RatePoint, len(perSecond))
	for i, v := range perSecond {
		out[i] = RatePoint{At: chartEnd.Add(time.Duration(i-len(perSecond)+1) * time.Second), PerSecond: v, DeniedShare: v / 10}
	}
	return out
}

func perSecond(p RatePoint) float64 { return p.PerSecond }

// coords parses a points attribute and checks that every pair is finite
// and inside the w×h box.
func coords(t *testing.T, points string, w, h float64) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, pair := range strings.Fields(points) {
		xs, ys, ok := strings.Cut(pair, ",")
		x, errx := strconv.ParseFloat(xs, 64)
		y, erry := strconv.ParseFloat(ys, 64)
		if !ok || errx != nil || erry != nil {
			t.Fatalf("points %q: pair %q is not x,y", points, pair)
		}
		if math.IsNaN(x) || math.IsNaN(y) || x < 0 || x > w || y < 0 || y > h {
			t.Fatalf("points %q: pair %q is outside the %gx%g box", points, pair, w, h)
		}
		out = append(out, [2]float64{x, y})
	}
	return out
}

func TestChartPoints(t *testing.T) {
	at := func(ago time.Duration, v float64) RatePoint { return RatePoint{At: chartEnd.Add(-ago), PerSecond: v} }
	for _, tc := range []struct {
		name    string
		history []RatePoint
		top     float64
		want    string
	}{
		{"empty", nil, 10, ""},
		{"one point", []RatePoint{at(0, 5)}, 10, "100.0,25.0"},
		{"scaled to the box", []RatePoint{at(chartSpan, 0), at(chartSpan/2, 5), at(0, 10)}, 10, "0.0,50.0 50.0,25.0 100.0,0.0"},
		{"older than the span left out", []RatePoint{at(chartSpan+time.Second, 10), at(chartSpan/4, 10), at(0, 0)}, 10, "75.0,0.0 100.0,50.0"},
		{"all zero lies on the bottom", []RatePoint{at(2*time.Second, 0), at(time.Second, 0), at(0, 0)}, 1, "99.3,50.0 99.7,50.0 100.0,50.0"},
		{"over the top is clamped", []RatePoint{at(time.Second, 1e308), at(0, math.Inf(1))}, 10, "99.7,0.0 100.0,0.0"},
		{"NaN and negative are 0", []RatePoint{at(time.Second, math.NaN()), at(0, -5)}, 10, "99.7,50.0 100.0,50.0"},
		{"top 0 counts as 1", []RatePoint{at(0, 0.5)}, 0, "100.0,25.0"},
		{"top NaN counts as 1", []RatePoint{at(0, 0.5)}, math.NaN(), "100.0,25.0"},
		{"top Inf counts as 1", []RatePoint{at(0, 0.5)}, math.Inf(1), "100.0,25.0"},
		{"out of order stays in the box", []RatePoint{at(-time.Minute, 5), at(0, 5)}, 10, "100.0,25.0 100.0,25.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := chartPoints(tc.history, perSecond, tc.top, 100, 50)
			if got != tc.want {
				t.Errorf("chartPoints(%s) = %q, want %q", tc.name, got, tc.want)
			}
			coords(t, got, 100, 50)
		})
	}
}

func TestNiceTop(t *testing.T) {
	for _, tc := range []struct{ peak, want float64 }{
		{math.NaN(), 1}, {-3, 1}, {0, 1}, {0.4, 1}, {1, 1}, {1.1, 2}, {3, 5}, {7, 10}, {10, 10},
		{11, 20}, {999, 1000}, {1000, 1000}, {1001, 2000}, {4.2e6, 5e6},
	} {
		if got := niceTop(tc.peak); got != tc.want {
			t.Errorf("niceTop(%g) = %g, want %g", tc.peak, got, tc.want)
		}
	}
	if got := niceTop(math.MaxFloat64); math.IsInf(got, 0) || got < math.MaxFloat64 {
		t.Errorf("niceTop(MaxFloat64) = %g, want a finite top at least the peak", got)
	}
}

func TestAxisLabel(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{{1, "1"}, {500, "500"}, {5000, "5000"}, {20000, "20k"}, {1.5e6, "1.5M"}, {2e9, "2G"}} {
		if got := axisLabel(tc.f); got != tc.want {
			t.Errorf("axisLabel(%g) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestNewRateChart(t *testing.T) {
	if c := newRateChart(nil); !c.Empty || c.Rate != "" || c.Span != "last 5 min" {
		t.Errorf("newRateChart(nil) = %+v, want Empty with no points over the last 5 min", c)
	}
	c := newRateChart(history(0, 30, 60))
	if c.Empty || c.Top != "100" {
		t.Errorf("newRateChart(0, 30, 60 /s): Empty %v, Top %q; want a chart with top 100", c.Empty, c.Top)
	}
	if got := coords(t, c.Rate, chartW, chartH); len(got) != 3 || got[2][1] != chartH*0.4 {
		t.Errorf("newRateChart(0, 30, 60 /s).Rate = %q, want 3 points ending at y %g", c.Rate, chartH*0.4)
	}
	if got := coords(t, c.Denied, chartW, chartH); len(got) != 3 || got[0][1] != chartH {
		t.Errorf("newRateChart(0, 30, 60 /s).Denied = %q, want 3 points starting at the bottom", c.Denied)
	}
	if c.RateDot.X != chartW || c.RateDot.Y != chartH*0.4 {
		t.Errorf("newRateChart(0, 30, 60 /s).RateDot = %+v, want the newest point (%d, %g)", c.RateDot, chartW, chartH*0.4)
	}
	huge := newRateChart(history(math.Inf(1), math.NaN(), math.MaxFloat64, 0))
	for _, s := range []string{huge.Rate, huge.Denied, huge.Top, huge.Summary} {
		if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
			t.Errorf("newRateChart(Inf, NaN, MaxFloat64, 0) has %q", s)
		}
	}
	coords(t, huge.Rate, chartW, chartH)
	coords(t, huge.Denied, chartW, chartH)
}

// statusServer serves the status page and JSON for a fixed Status.
func statusServer(t *testing.T, st Status) *httptest.Server {
	t.Helper()
	h := NewHTTPHandler(ServerConfig{Limiter: storeLimiter{newStore(t)}, Directory: oneMember{},
		Status: func() Status { return st }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func fakeStatus(h []RatePoint) Status {
	return Status{Node: "a", Ready: true, Keys: 3, ChecksPerSecond: 12.5, DeniedShare: 0.2,
		Members:   []MemberStatus{{Member: drl.Member{Name: "a", State: "alive", InRing: true}, Share: 1}},
		Fallbacks: map[string]uint64{"local": 1}, Now: chartEnd, RateHistory: h,
		Events: []Event{{At: chartEnd.Add(-time.Second), What: "ring changed to a", Count: 1}}}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v:\n%s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// svgElement is the part of an SVG element the tests look at.
type svgElement struct {
	name  string
	attrs map[string]string
	text  string
}

// parseSVG finds the page's one <svg> element and parses it as XML,
// returning its elements in document order.
func parseSVG(t *testing.T, page string) []svgElement {
	t.Helper()
	start, end := strings.Index(page, "<svg"), strings.LastIndex(page, "</svg>")
	if start < 0 || end < start || strings.Count(page, "<svg") != 1 {
		t.Fatalf("the page has no single <svg> element:\n%s", page)
	}
	d := xml.NewDecoder(strings.NewReader(page[start : end+len("</svg>")]))
	d.Strict = true
	var out []svgElement
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("the <svg> element is not well-formed XML: %v\n%s", err, page[start:end+len("</svg>")])
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := svgElement{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
		case xml.CharData:
			if len(out) > 0 {
				out[len(out)-1].text += string(tok)
			}
		}
	}
}

func find(es []svgElement, name, class string) []svgElement {
	var out []svgElement
	for _, e := range es {
		if e.name == name && (class == "" || e.attrs["class"] == class) {
			out = append(out, e)
		}
	}
	return out
}

func TestStatusPageChart(t *testing.T) {
	many := history(0, 10, 20, 40, 80, 40, 20, 10, 0, 5)
	for _, tc := range []struct {
		name      string
		history   []RatePoint
		polylines bool
	}{
		{"empty", nil, false},
		{"one point", history(7), true},
		{"many points", many, true},
		{"huge and zero", history(0, 1e300, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := get(t, statusServer(t, fakeStatus(tc.history)).URL+"/status")
			// What cmd/node's browser test and people rely on stays.
			for _, want := range []string{`id="members"`, `id="keys"`, `id="rate"`, `id="denied"`, `id="member-table"`,
				`id="fallbacks"`, `id="events"`, `class="member" data-name="a" data-state="alive"`, `ring changed to a<`} {
				if !strings.Contains(page, want) {
					t.Errorf("the page lacks %s", want)
				}
			}
			if regexp.MustCompile(`NaN|Inf|<script`).MatchString(page) {
				t.Errorf("the page has NaN, Inf or a script:\n%s", page)
			}
			es := parseSVG(t, page)
			if es[0].name != "svg" || es[0].attrs["role"] != "img" || es[0].attrs["id"] != "rate-chart" {
				t.Errorf("the chart's root is <%s %v>, want <svg id=rate-chart role=img>", es[0].name, es[0].attrs)
			}
			if ts := find(es, "title", ""); len(ts) != 1 || !strings.Contains(ts[0].text, "last 5 min") {
				t.Errorf("the chart's <title> = %v, want one saying last 5 min", ts)
			}
			rates, denied := find(es, "polyline", "line-rate"), find(es, "polyline", "line-denied")
			placeholder := find(es, "text", "placeholder")
			if !tc.polylines {
				if len(rates)+len(denied) != 0 || len(placeholder) != 1 {
					t.Fatalf("empty history: %d polylines and %d placeholders, want none and one", len(rates)+len(denied), len(placeholder))
				}
				return
			}
			if len(rates) != 1 || len(denied) != 1 || len(placeholder) != 0 {
				t.Fatalf("%d and %d polylines and %d placeholders, want one of each line and no placeholder",
					len(rates), len(denied), len(placeholder))
			}
			c := newRateChart(tc.history)
			if got := rates[0].attrs["points"]; got != c.Rate || len(coords(t, got, chartW, chartH)) != len(tc.history) {
				t.Errorf("checks/s points = %q, want %q (%d points)", got, c.Rate, len(tc.history))
			}
			if got := denied[0].attrs["points"]; got != c.Denied {
				t.Errorf("share-denied points = %q, want %q", got, c.Denied)
			}
			if n := len(find(es, "circle", "")); n != 2 {
				t.Errorf("%d dots, want 2: the newest point of each line", n)
			}
		})
	}
}

func TestStatusJSONHistory(t *testing.T) {
	body := get(t, statusServer(t, fakeStatus(history(1, 2))).URL+"/v1/status")
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET /v1/status: %v\n%s", err, body)
	}
	for _, k := range []string{"node", "ready", "members", "keys", "checks_per_second", "denied_share", "fallbacks", "events", "now"} {
		if _, ok := got[k]; !ok {
			t.Errorf("GET /v1/status lacks %q: %s", k, body)
		}
	}
	h, _ := got["rate_history"].([]any)
	if len(h) != 2 {
		t.Fatalf("GET /v1/status rate_history = %v, want 2 points", got["rate_history"])
	}
	p, _ := h[1].(map[string]any)
	if p["per_second"] != 2.0 || p["denied_share"] != 0.2 || p["at"] != "2026-01-02T15:04:05Z" {
		t.Errorf("GET /v1/status rate_history[1] = %v, want at 15:04:05, 2 per second, 0.2 denied", p)
	}
}
