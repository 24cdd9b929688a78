package report

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/drlimit/drl/chaos"
)

// The picture's size; at vgimg's 96 dpi, 768 × 336 pixels.
const (
	width  = 8 * vg.Inch
	height = 3.5 * vg.Inch
)

// margin separates the plot from the legend on its right and the legend
// from the image's edge. It is wider than half the widest tick label, so
// the last label on the time axis, centred on the plot's right edge,
// stays inside the image.
var margin = vg.Points(14)

// Timeline draws admitted checks per second against the rate a perfect
// limiter allows once every key is limited, with the fault shaded, as a
// PNG at path.
func Timeline(path string, r chaos.Result) error {
	p, legend, err := timeline(r)
	if err != nil {
		return err
	}
	img := vgimg.New(width, height)
	c := draw.New(img)
	// gonum draws a legend inside the plot and flush with the image's right
	// edge, where it covers the data and its icons touch the edge. Give it
	// a column of its own right of the plot instead, level with the data.
	lw := legend.Rectangle(c).Size().X
	area := draw.Crop(c, 0, -(lw + 2*margin), 0, 0)
	p.Draw(area)
	data := p.DataCanvas(area)
	legend.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
		Min: vg.Point{X: data.Max.X + margin, Y: data.Min.Y},
		Max: vg.Point{X: c.Max.X - margin, Y: data.Max.Y},
	}})

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// timeline builds the plot and its legend, which Timeline places.
func timeline(r chaos.Result) (*plot.Plot, plot.Legend, error) {
	l := r.Run.Load
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s", r.Scenario.Name, loadShape(l))
	p.X.Label.Text = "seconds of load (the first, all bursts, left out)"
	p.Y.Label.Text = "admitted checks per second"
	p.Y.Tick.Marker = plainTicks{}

	// The first second, when every key spends its whole burst at once, is
	// left out: on the same scale it would flatten everything after it.
	// PerSecond ends with the last second that admitted anything; the
	// load ran on for the cool-down after members converged, admitting
	// nothing, and the picture shows that too.
	ran := (r.FaultEnd + r.Converged + r.Run.Cooldown).Seconds()
	seconds := max(len(r.PerSecond), int(math.Ceil(ran)), 2)
	var admitted plotter.XYs
	top := 0.0
	for i := 1; i < seconds; i++ {
		n := 0
		if i < len(r.PerSecond) {
			n = r.PerSecond[i]
		}
		admitted = append(admitted, plotter.XY{X: float64(i) + 0.5, Y: float64(n)})
		top = max(top, float64(n))
	}
	rate := float64(l.Keys) * float64(l.Limit) / l.Window.Seconds()
	top = max(top, rate, 1) * 1.15
	end := float64(seconds)

	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.Padding = vg.Points(3)
	fault, err := plotter.NewPolygon(plotter.XYs{
		{X: r.FaultStart.Seconds(), Y: 0}, {X: r.FaultEnd.Seconds(), Y: 0},
		{X: r.FaultEnd.Seconds(), Y: top}, {X: r.FaultStart.Seconds(), Y: top},
	})
	if err != nil {
		return nil, legend, err
	}
	fault.Color = plotColor(0xff, 0xe0, 0xb0)
	fault.LineStyle.Width = 0
	line, err := plotter.NewLine(admitted)
	if err != nil {
		return nil, legend, err
	}
	line.Width = vg.Points(1.5)
	line.Color = plotColor(0x1f, 0x5f, 0xbf)
	limit, err := plotter.NewLine(plotter.XYs{{X: 0, Y: rate}, {X: end, Y: rate}})
	if err != nil {
		return nil, legend, err
	}
	limit.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	limit.Color = plotColor(0xc0, 0x30, 0x30)
	p.Add(fault, line, limit)
	legend.Add("admitted", line)
	legend.Add("exact rate", limit)
	legend.Add("fault", fault)
	p.Y.Min, p.Y.Max, p.X.Min, p.X.Max = 0, top, 1, end
	return p, legend, nil
}

// loadShape says what the load's keys are limited to, e.g. "30 keys × 20
// per 10s".
func loadShape(l chaos.Load) string {
	keys := "keys"
	if l.Keys == 1 {
		keys = "key"
	}
	return fmt.Sprintf("%d %s × %d per %s", l.Keys, keys, l.Limit, shortDuration(l.Window))
}

// shortDuration writes d without zero trailing units: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// plainTicks are gonum's default ticks labelled with no more digits than
// their values need: 250, not 250.00.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'f', -1, 64)
		}
	}
	return ticks
}
