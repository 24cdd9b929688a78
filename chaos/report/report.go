// Package report writes the chaos suite's results: a Markdown table with
// one row per scenario, and a timeline picture per scenario (admitted
// checks per second against the exact rate, the fault marked).
package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/drlimit/drl/chaos"
)

// Write writes README.md and one SVG per scenario into dir, which it
// creates. header is printed above the table (what ran, where, when).
func Write(dir, header string, results []chaos.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, r := range results {
		if err := Timeline(filepath.Join(dir, svgName(r)), r); err != nil {
			return fmt.Errorf("report: %s: %w", r.Scenario.Name, err)
		}
	}
	f, err := os.Create(filepath.Join(dir, "README.md"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := Markdown(f, header, results); err != nil {
		return err
	}
	return f.Close()
}

func svgName(r chaos.Result) string {
	return strings.NewReplacer("/", "-", "%", "pct", " ", "-").Replace(r.Scenario.Name) + ".svg"
}

// Markdown writes the table and links the pictures.
func Markdown(w io.Writer, header string, results []chaos.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chaos report\n\n%s\n\n", header)
	b.WriteString("Per key: *exact* is what a perfect limiter admits over the run, *bound* what DESIGN.md §14 allows under the fault, *worst* the most any key got. ")
	b.WriteString("Latency is of every check, the deadline being the check timeout plus scheduling grace. ")
	b.WriteString("*Converged* is the time from the fault's end until every member agreed on members and owners.\n\n")
	b.WriteString("| scenario | checks | admitted | exact/key | bound/key | worst/key | over exact | p99 | max | over deadline | errors | converged | result |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		verdict := "pass"
		if !r.Passed() {
			verdict = "FAIL: " + strings.Join(r.Violations, "; ")
		}
		fmt.Fprintf(&b, "| [%s](#%s) | %d | %d | %.1f | %.0f | %.0f | %+.1f | %v | %v | %d | %d | %v | %s |\n",
			r.Scenario.Name, anchor(r.Scenario.Name), r.Checks, r.Admitted, r.Exact, r.Bound, r.WorstKey, r.WorstKey-r.Exact,
			ms(r.P99), ms(r.Max), r.OverDeadline, r.Errors, ms(r.Converged), verdict)
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %s\n\n%s. Fault from %.1f s to %.1f s of the load; %d goroutines left after the cluster closed.\n\n![%s](%s)\n",
			r.Scenario.Name, r.Scenario.Description, r.FaultStart.Seconds(), r.FaultEnd.Seconds(), r.Goroutines, r.Scenario.Name, svgName(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func anchor(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return -1
	}, strings.ToLower(name))
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// Timeline draws admitted checks per second against the rate a perfect
// limiter allows once every key is limited, with the fault shaded.
func Timeline(path string, r chaos.Result) error {
	p := plot.New()
	p.Title.Text = r.Scenario.Name
	p.X.Label.Text = "seconds of load (the first, all bursts, left out)"
	p.Y.Label.Text = "admitted checks per second"

	// The first second, when every key spends its whole burst at once, is
	// left out: on the same scale it would flatten everything after it.
	var admitted plotter.XYs
	top := 0.0
	for i, n := range r.PerSecond {
		if i == 0 {
			continue
		}
		admitted = append(admitted, plotter.XY{X: float64(i) + 0.5, Y: float64(n)})
		top = max(top, float64(n))
	}
	if len(admitted) == 0 {
		admitted = plotter.XYs{{X: 0.5, Y: 0}}
	}
	l := r.Run.Load
	rate := float64(l.Keys) * float64(l.Limit) / l.Window.Seconds()
	top = max(top, rate) * 1.15
	end := float64(len(r.PerSecond))

	fault, err := plotter.NewPolygon(plotter.XYs{
		{X: r.FaultStart.Seconds(), Y: 0}, {X: r.FaultEnd.Seconds(), Y: 0},
		{X: r.FaultEnd.Seconds(), Y: top}, {X: r.FaultStart.Seconds(), Y: top},
	})
	if err != nil {
		return err
	}
	fault.Color = plotColor(0xff, 0xe0, 0xb0)
	fault.LineStyle.Width = 0
	line, err := plotter.NewLine(admitted)
	if err != nil {
		return err
	}
	line.Width = vg.Points(1.5)
	line.Color = plotColor(0x1f, 0x5f, 0xbf)
	limit, err := plotter.NewLine(plotter.XYs{{X: 0, Y: rate}, {X: end, Y: rate}})
	if err != nil {
		return err
	}
	limit.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	limit.Color = plotColor(0xc0, 0x30, 0x30)
	p.Add(fault, line, limit)
	p.Legend.Add("admitted", line)
	p.Legend.Add(fmt.Sprintf("exact rate (%d keys × %d per %v)", l.Keys, l.Limit, l.Window), limit)
	p.Legend.Add("fault", fault)
	p.Legend.Top = true
	p.Y.Min, p.Y.Max, p.X.Min, p.X.Max = 0, top, 1, end
	return p.Save(8*vg.Inch, 3.5*vg.Inch, path)
}
