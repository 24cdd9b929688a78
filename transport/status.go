package transport

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/drlimit/drl"
)

// Status is what a node's status page shows.
type Status struct {
	Node    string         `json:"node"`
	Ready   bool           `json:"ready"`
	Members []MemberStatus `json:"members"`
	// Keys is how many buckets this node holds.
	Keys int `json:"keys"`
	// ChecksPerSecond and DeniedShare are over the last few seconds, for
	// checks entering through this node.
	ChecksPerSecond float64           `json:"checks_per_second"`
	DeniedShare     float64           `json:"denied_share"`
	Fallbacks       map[string]uint64 `json:"fallbacks"` // by policy, since start
	Events          []Event           `json:"events"`    // newest first
	Now             time.Time         `json:"now"`
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

//go:embed status.html
var statusFS embed.FS

var statusPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"percent": func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"rate":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"ago":     func(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() + " ago" },
	"mulf":    func(a, b float64) float64 { return a * b },
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
