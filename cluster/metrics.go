package cluster

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drlimit/drl/bucket"
)

// metrics is one node's Prometheus instrumentation. Only the per-check
// counters are touched on a local check's path, and the latency histogram
// on a forwarded one's; every other figure is read from the node's own
// counters when scraped. No label carries a user or an action.
type metrics struct {
	// checks counts checks by algorithm and outcome (allowed, denied,
	// error).
	checks [][3]atomic.Uint64 // by bucket.Algorithm

	latency prometheus.Histogram
	handler http.Handler // nil when the registry is the application's
}

var outcomes = [3]string{"allowed", "denied", "error"}

func newMetrics(n *Node, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		checks: make([][3]atomic.Uint64, len(bucket.Algorithms())),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "drl_forward_duration_seconds",
			Help: "Time for a check forwarded to its owner to come back (a check this node owns takes well under a microsecond, " +
				"and is not timed: the clock reads would double its cost).",
			Buckets: []float64{5e-6, 20e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3},
		}),
	}
	if reg == nil {
		r := prometheus.NewRegistry()
		m.handler = promhttp.HandlerFor(r, promhttp.HandlerOpts{})
		reg = r
	}
	for _, c := range []prometheus.Collector{m.latency, collector{n: n, m: m}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// count counts one answered check.
func (m *metrics) count(alg bucket.Algorithm, d bucket.Decision, err error) {
	if m == nil || int(alg) >= len(m.checks) {
		return
	}
	outcome := 0
	switch {
	case err != nil:
		outcome = 2
	case !d.Allowed:
		outcome = 1
	}
	m.checks[alg][outcome].Add(1)
}

// totals returns every check counted and the denied ones.
func (m *metrics) totals() (checks, denied uint64) {
	for a := range m.checks {
		for o := range m.checks[a] {
			v := m.checks[a][o].Load()
			checks += v
			if o == 1 {
				denied += v
			}
		}
	}
	return checks, denied
}

// forwardTook times one forwarded check.
func (m *metrics) forwardTook(d time.Duration) {
	if m != nil {
		m.latency.Observe(d.Seconds())
	}
}

// MetricsHandler serves the node's metrics in the Prometheus format, or
// returns nil when Config.Registerer was set (the application serves its
// own registry then). cmd/node mounts it on /metrics.
func (n *Node) MetricsHandler() http.Handler {
	if n.metrics == nil {
		return nil
	}
	return n.metrics.handler
}

// collector reads the node's counters at scrape time.
type collector struct {
	n *Node
	m *metrics
}

var (
	descChecks     = prometheus.NewDesc("drl_checks_total", "Checks answered by this node, by algorithm and outcome.", []string{"algorithm", "outcome"}, nil)
	descLocal      = prometheus.NewDesc("drl_checks_owned_total", "Checks entering this node that it decided as the key's owner.", nil, nil)
	descForwarded  = prometheus.NewDesc("drl_checks_forwarded_total", "Checks this node sent to another owner.", nil, nil)
	descProxied    = prometheus.NewDesc("drl_checks_proxied_total", "Checks passed on once to the owner this node knows, during ownership changes.", nil, nil)
	descDenyHits   = prometheus.NewDesc("drl_deny_cache_hits_total", "Checks answered from an owner's earlier denial, without a hop.", nil, nil)
	descLeaseHits  = prometheus.NewDesc("drl_lease_hits_total", "Checks answered from a token lease, without a hop.", nil, nil)
	descLeases     = prometheus.NewDesc("drl_leases_granted_total", "Leased checks this node granted as an owner.", nil, nil)
	descFallbacks  = prometheus.NewDesc("drl_fallbacks_total", "Checks a fail policy answered because the owner could not be reached in time.", []string{"policy"}, nil)
	descHandoffs   = prometheus.NewDesc("drl_handoff_buckets_total", "Buckets moved on ring changes.", []string{"direction"}, nil)
	descWaits      = prometheus.NewDesc("drl_handoff_waits_total", "Checks that waited for the handoffs of a ring change.", nil, nil)
	descMembers    = prometheus.NewDesc("drl_members", "Members in this node's ring.", nil, nil)
	descRingChange = prometheus.NewDesc("drl_ring_changes_total", "Ring rebuilds on this node.", nil, nil)
	descKeys       = prometheus.NewDesc("drl_keys", "Buckets held by this node.", nil, nil)
	descEvictions  = prometheus.NewDesc("drl_evictions_total", "Live buckets dropped to respect MaxEntries.", nil, nil)
	descExpired    = prometheus.NewDesc("drl_expirations_total", "Buckets dropped because they were full again.", nil, nil)
	descReady      = prometheus.NewDesc("drl_ready", "1 when the node is in every live member's ring and the handoffs of its join are done.", nil, nil)
	descQuorum     = prometheus.NewDesc("drl_quorum", "1 when this node sees a majority of the cluster and so decides checks itself; 0 when every check gets the fail policy.", nil, nil)
	descFailed     = prometheus.NewDesc("drl_members_failed", "Members that failed (not left) lately, still counted toward the cluster's size.", nil, nil)
	descRPCs       = prometheus.NewDesc("drl_forward_rpcs_total", "Frames of forwarded checks this node sent to owners (one per batch, on each owner's stream).", nil, nil)
	descEntries    = prometheus.NewDesc("drl_forward_batch_keys_total", "Distinct keys carried by forwarded frames; divided by drl_forward_rpcs_total, the mean batch size.", nil, nil)
	descRPCErrors  = prometheus.NewDesc("drl_forward_rpc_errors_total", "Forwarded frames that failed, by reason (timeout or other).", []string{"reason"}, nil)
	descShadow     = prometheus.NewDesc("drl_shadow_denials_total", "Checks over their limit that shadow mode admitted.", nil, nil)
	descMultiRaces = prometheus.NewDesc("drl_multi_limit_races_total", "Limits that denied in a multi-limit check's second round, leaving the others spent.", nil, nil)

	// Only with snapshots on (Config.StateDir or Config.Snapshots).
	descSnapSaves    = prometheus.NewDesc("drl_snapshot_saves_total", "Snapshots of this node's buckets saved, by result (ok or failed).", []string{"result"}, nil)
	descSnapBuckets  = prometheus.NewDesc("drl_snapshot_buckets", "Buckets in the last snapshot saved.", nil, nil)
	descSnapBytes    = prometheus.NewDesc("drl_snapshot_bytes", "Size of the last snapshot saved.", nil, nil)
	descSnapTook     = prometheus.NewDesc("drl_snapshot_duration_seconds", "Time the last snapshot took to write and sync.", nil, nil)
	descSnapLast     = prometheus.NewDesc("drl_snapshot_last_success_timestamp_seconds", "When the last snapshot was saved, in Unix seconds.", nil, nil)
	descSnapRestored = prometheus.NewDesc("drl_snapshot_restored_buckets", "Buckets this node put back from its snapshot at start.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChecks, descLocal, descForwarded, descProxied, descDenyHits, descLeaseHits,
		descLeases, descFallbacks, descHandoffs, descWaits, descMembers, descRingChange, descKeys, descEvictions, descExpired, descReady,
		descQuorum, descFailed,
		descRPCs, descEntries, descRPCErrors, descShadow, descMultiRaces,
		descSnapSaves, descSnapBuckets, descSnapBytes, descSnapTook, descSnapLast, descSnapRestored} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	for a := range c.m.checks {
		for o, name := range outcomes {
			counter(descChecks, c.m.checks[a][o].Load(), bucket.Algorithm(a).String(), name)
		}
	}
	st := c.n.Stats()
	counter(descLocal, st.Local)
	counter(descForwarded, st.Forwarded)
	counter(descProxied, st.Proxied)
	counter(descDenyHits, st.DenyCacheHits)
	counter(descLeaseHits, st.LeaseHits)
	counter(descLeases, st.LeasesGranted)
	counter(descFallbacks, st.FallbackLocal, "local")
	counter(descFallbacks, st.FallbackOpen, "open")
	counter(descFallbacks, st.FallbackClosed, "closed")
	counter(descHandoffs, st.HandoffsSent, "sent")
	counter(descHandoffs, st.HandoffsReceived, "received")
	counter(descHandoffs, st.HandoffsLost, "lost")
	counter(descWaits, st.WaitedHandoff)
	gauge(descMembers, float64(st.Members))
	counter(descRingChange, st.RingChanges)
	gauge(descKeys, float64(st.Store.Keys))
	counter(descEvictions, st.Store.Evicted)
	counter(descExpired, st.Store.Expired)
	ready := 0.0
	if c.n.Ready() {
		ready = 1
	}
	gauge(descReady, ready)
	q := c.n.Quorum()
	majority := 0.0
	if q.Majority {
		majority = 1
	}
	gauge(descQuorum, majority)
	gauge(descFailed, float64(len(q.Failed)))
	counter(descRPCs, st.ForwardRPCs)
	counter(descEntries, st.ForwardEntries)
	counter(descRPCErrors, st.ForwardTimeouts, "timeout")
	counter(descRPCErrors, st.ForwardErrors-st.ForwardTimeouts, "other")
	counter(descShadow, st.ShadowDenied)
	counter(descMultiRaces, st.MultiLimitRaces)
	if c.n.snap.store != nil {
		ss := &c.n.snap.stats
		counter(descSnapSaves, ss.saves.Load(), "ok")
		counter(descSnapSaves, ss.failures.Load(), "failed")
		gauge(descSnapBuckets, float64(ss.buckets.Load()))
		gauge(descSnapBytes, float64(ss.bytes.Load()))
		gauge(descSnapTook, time.Duration(ss.took.Load()).Seconds())
		gauge(descSnapLast, float64(ss.at.Load())/1e9)
		gauge(descSnapRestored, float64(ss.restored.Load()))
	}
}
