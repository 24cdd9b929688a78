package monitoring

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// prometheusServer is a Prometheus process started by a test.
type prometheusServer struct {
	*process
	base string // http://127.0.0.1:port
}

// startPrometheus runs Prometheus on a free loopback port, scraping
// targets every second as job drl and evaluating rules.yaml every second,
// with its storage in the test's temporary directory.
func startPrometheus(t *testing.T, bin string, targets []string) *prometheusServer {
	t.Helper()
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: drl
    static_configs:
      - targets: [%s]
`, rules, strings.Join(targets, ", "))
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// A port found free may be taken before Prometheus binds it; try a
	// few.
	for try := range 3 {
		addr := freePort(t)
		p := &prometheusServer{base: "http://" + addr}
		p.process = start(t, fmt.Sprintf("prometheus-%d", try), bin, "--config.file="+configPath,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", try)), "--web.listen-address="+addr,
			"--log.level=warn")
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if code, _, err := get(p.base + "/-/ready"); err == nil && code == http.StatusOK {
				return p
			}
			select {
			case <-p.done:
				deadline = time.Time{} // exited: try another port
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Logf("prometheus on %s did not become ready:\n%s", addr, p.tail(2000))
		p.stop(5 * time.Second)
	}
	t.Fatal("prometheus did not start")
	return nil
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// api calls Prometheus's HTTP API and decodes its data into out.
func (p *prometheusServer) api(path string, out any) error {
	code, body, err := get(p.base + path)
	if err != nil {
		return err
	}
	var resp struct {
		Status string
		Error  string
		Data   json.RawMessage
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	if resp.Status != "success" {
		return fmt.Errorf("GET %s: %s", path, resp.Error)
	}
	return json.Unmarshal(resp.Data, out)
}

// series is one element of an instant vector.
type series struct {
	Metric map[string]string
	Value  float64
}

// query evaluates expr now.
func (p *prometheusServer) query(expr string) ([]series, error) {
	var data struct {
		ResultType string
		Result     []struct {
			Metric map[string]string
			Value  [2]any
		}
	}
	if err := p.api("/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, not a vector", expr, data.ResultType)
	}
	out := make([]series, len(data.Result))
	for i, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v", expr, r.Value[1])
		}
		out[i] = series{r.Metric, v}
	}
	return out, nil
}

// alert is one element of /api/v1/alerts.
type alert struct {
	Labels      map[string]string
	Annotations map[string]string
	State       string
}

func (p *prometheusServer) alerts() ([]alert, error) {
	var data struct{ Alerts []alert }
	err := p.api("/api/v1/alerts", &data)
	return data.Alerts, err
}

// poll calls f every 100ms until it returns true or within passes,
// returning how long it took.
func poll(t *testing.T, within time.Duration, what string, f func() (bool, error)) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for i := 0; time.Since(start) < within && i < 10_000; i++ {
		ok, err := f()
		if ok {
			return time.Since(start)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last error: %v)", what, within, last)
	return 0
}

// members reads drl_members from a node's /metrics.
func members(n *node) (int, error) {
	samples, err := scrape(n.http)
	if err != nil {
		return 0, err
	}
	for _, s := range samples {
		if s.name == "drl_members" {
			return strconv.Atoi(s.value)
		}
	}
	return 0, fmt.Errorf("%s: no drl_members", n.http)
}

// TestPrometheusEndToEnd runs the rules and the dashboard's queries in a
// real Prometheus scraping three real nodes: the rules load and evaluate
// without error, nothing fires on a healthy cluster, DrlMembersMismatch
// fires for both survivors within the rule's `for` (plus scrape and
// evaluation slack) once they have seen a SIGKILLed member leave, the
// share-denied ratio shows exactly what a hammered key was denied, and
// every dashboard query runs. About 45 s, most of it the alert's `for`.
func TestPrometheusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30 s for the member-count alert: the full suite runs it")
	}
	t.Parallel()
	begin := time.Now()
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed: Debian's prometheus package provides /usr/bin/prometheus (apt-get install prometheus)")
	}
	var forDuration time.Duration
	for _, r := range readRules(t) {
		if r.Alert == "DrlMembersMismatch" {
			if forDuration, err = time.ParseDuration(r.For); err != nil {
				t.Fatalf("DrlMembersMismatch for: %v", err)
			}
		}
	}
	if forDuration == 0 || forDuration > 40*time.Second {
		t.Fatalf("DrlMembersMismatch waits %v; this test can wait 40s at most", forDuration)
	}

	// 1. Three nodes and a Prometheus scraping them.
	bin := nodeBinary(t)
	a := startNode(t, bin, "a", "")
	b := startNode(t, bin, "b", a.gossip)
	c := startNode(t, bin, "c", a.gossip)
	nodes := []*node{a, b, c}
	waitReady(t, 30*time.Second, nodes...)
	p := startPrometheus(t, prom, []string{a.http, b.http, c.http})

	// Every rule has run, without error, since all three nodes were
	// scraped seeing three members each; and nothing fires or is pending.
	// (An evaluation between the first node's scrape and the last one's
	// sees fewer nodes than members, and leaves an alert pending until the
	// next evaluation: only evaluations after the cluster is whole count.)
	var whole time.Time
	poll(t, 30*time.Second, "three nodes scraped, each seeing three members", func() (bool, error) {
		v, err := p.query(`job:drl_nodes:count{job="drl"} == 3 and on (job) min by (job) (drl_members) == 3`)
		if err != nil || len(v) != 1 {
			return false, err
		}
		whole = time.Now()
		return true, nil
	})
	poll(t, 30*time.Second, "every rule evaluated since", func() (bool, error) {
		var data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
					LastEvaluation          time.Time
				}
			}
		}
		if err := p.api("/api/v1/rules", &data); err != nil {
			return false, err
		}
		n := 0
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				if r.Health == "err" {
					t.Fatalf("rule %s: %s", r.Name, r.LastError)
				}
				if r.Health != "ok" || !r.LastEvaluation.After(whole) {
					return false, fmt.Errorf("rule %s not evaluated since the cluster was whole", r.Name)
				}
				n++
			}
		}
		if n != len(readRules(t)) {
			return false, fmt.Errorf("%d rules loaded", n)
		}
		return true, nil
	})
	if as, err := p.alerts(); err != nil || len(as) != 0 {
		t.Fatalf("alerts on a healthy cluster: %+v (%v)", as, err)
	}

	// 2. Kill c. Once a and b have dropped it from their rings, the alert
	// fires for each, no sooner than `for` and not much later.
	c.signal(syscall.SIGKILL)
	killed := time.Now()
	dropped := map[string]time.Time{}
	poll(t, 30*time.Second, "a and b see c leave", func() (bool, error) {
		for _, n := range []*node{a, b} {
			if m, err := members(n); err == nil && m == 2 && dropped[n.http].IsZero() {
				dropped[n.http] = time.Now()
			}
		}
		return len(dropped) == 2, nil
	})
	t.Logf("a and b saw c leave after %v and %v", dropped[a.http].Sub(killed).Round(time.Millisecond), dropped[b.http].Sub(killed).Round(time.Millisecond))

	// 3. Meanwhile, hammer one key through b past its limit: 5 per hour,
	// 50 checks.
	var allowed, denied int
	for i := range 50 {
		body := `{"user_id":"e2e-hammer","action":"monitoring","limit":5,"window":"3600s","algorithm":"token_bucket"}`
		resp, err := client.Post("http://"+b.http+"/v1/ratelimit", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
		var d struct{ Allowed bool }
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("check %d: %d %v", i, resp.StatusCode, err)
		}
		if d.Allowed {
			allowed++
		} else {
			denied++
		}
	}
	// 5 when the owner answers; a fail policy's answer may differ a
	// little (limit/N), which the ratio below must show all the same.
	if denied < 40 {
		t.Errorf("50 checks at 5 per hour: %d admitted, %d denied; want about 45 denied", allowed, denied)
	}
	wantShare := float64(denied) / 50
	var share float64
	took := poll(t, 20*time.Second, "job:drl_checks_denied:ratio_rate5m shows the denials", func() (bool, error) {
		v, err := p.query(`job:drl_checks_denied:ratio_rate5m{job="drl"}`)
		if err != nil || len(v) != 1 {
			return false, err
		}
		share = v[0].Value
		return math.Abs(share-wantShare) < 0.01, nil
	})
	t.Logf("share denied %.3f (%d of 50 checks denied), recorded %v after the last check", share, denied, took.Round(time.Millisecond))

	// Back to 2: wait for the alert.
	fired := map[string]time.Time{}
	var firing []alert
	poll(t, time.Until(latest(dropped).Add(forDuration+10*time.Second)), "DrlMembersMismatch fires for a and b", func() (bool, error) {
		as, err := p.alerts()
		if err != nil {
			return false, err
		}
		for _, al := range as {
			if al.Labels["alertname"] == "DrlMembersMismatch" && al.State == "firing" {
				if _, seen := fired[al.Labels["instance"]]; !seen {
					fired[al.Labels["instance"]] = time.Now()
					firing = append(firing, al)
				}
			}
		}
		return len(fired) >= 2, nil
	})
	for _, al := range firing {
		inst := al.Labels["instance"]
		if inst != a.http && inst != b.http {
			t.Errorf("DrlMembersMismatch fired for %s, which is neither survivor", inst)
			continue
		}
		after := fired[inst].Sub(dropped[inst])
		t.Logf("DrlMembersMismatch fired for %s %v after it saw c leave (for: %v)", inst, after.Round(time.Millisecond), forDuration)
		// The test saw the drop up to 100ms after Prometheus may have.
		if after < forDuration-time.Second {
			t.Errorf("DrlMembersMismatch fired for %s %v after the drop, sooner than its for: %v", inst, after, forDuration)
		}
		if al.Labels["severity"] != "critical" || al.Labels["job"] != "drl" ||
			!strings.Contains(al.Annotations["summary"], "has 2 members in its ring, but drl has 3 nodes") ||
			al.Annotations["runbook"] == "" {
			t.Errorf("alert %+v: want severity critical, job drl, a summary counting 2 members of 3 nodes, and a runbook", al)
		}
	}
	if v, err := p.query(`up{job="drl"} == 0`); err != nil || len(v) != 1 || v[0].Metric["instance"] != c.http {
		t.Errorf("up == 0: %v (%v), want c's target, %s", v, err, c.http)
	}

	// Every dashboard query runs, and finds series.
	panels, others := dashboardQueries(dashboard(t))
	vars := strings.NewReplacer(`$__rate_interval`, "1m", `$job`, "drl", `$instance`, ".*")
	for _, q := range append(panels, others...) {
		v, err := p.query(vars.Replace(q.expr))
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
		} else if len(v) == 0 && !strings.HasPrefix(q.where, "annotation") {
			t.Errorf("%s: %s finds no series", q.where, q.expr)
		}
	}

	// 4. Stop everything, by PID.
	for _, s := range []*process{p.process, a.process, b.process} {
		if err := s.stop(15 * time.Second); err != nil {
			t.Error(err)
		}
	}
	t.Logf("stopped %v after the kill, %v after the test began", time.Since(killed).Round(time.Second), time.Since(begin).Round(time.Second))
}

func latest(ts map[string]time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}
