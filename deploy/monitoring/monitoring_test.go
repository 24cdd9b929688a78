// Package monitoring holds drl's Prometheus rules (rules.yaml), their
// promtool unit tests (rules_test.yaml), a Grafana dashboard
// (dashboard.json) and an example Prometheus configuration
// (prometheus.yml). Its tests hold them to the code: promtool must accept
// the rules and pass their unit tests; every metric, label and label value
// the rules and the dashboard name must be one a running node exports; the
// Kubernetes PrometheusRule must carry exactly these rules; and a real
// Prometheus scraping three real nodes must raise the membership alert
// when one of them dies (e2e_test.go).
package monitoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite ../kubernetes/prometheus-rule.yaml from rules.yaml")

const (
	rulesPath          = "rules.yaml"
	rulesTestPath      = "rules_test.yaml"
	dashboardPath      = "dashboard.json"
	configPath         = "prometheus.yml"
	prometheusRulePath = "../kubernetes/prometheus-rule.yaml"
	serviceMonitorPath = "../kubernetes/servicemonitor.yaml"
	manifestsPath      = "../kubernetes/drl.yaml"
	metricsSourcePath  = "../../cluster/metrics.go"
)

// rule is one recording or alerting rule of rules.yaml.
type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// promtool returns promtool's path, or skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed: Debian's prometheus package ships it (apt-get install prometheus)")
	}
	return path
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) { runPromtool(t, "check", "rules", rulesPath) }

func TestPromtoolTestRules(t *testing.T) { runPromtool(t, "test", "rules", rulesTestPath) }

// The example configuration loads and finds the rules it names.
func TestPromtoolCheckConfig(t *testing.T) { runPromtool(t, "check", "config", configPath) }

// Every alert says how bad it is and what to do, and rules_test.yaml has a
// case where it fires and one where it must not; every recording rule is
// evaluated there.
func TestRulesAreDocumentedAndTested(t *testing.T) {
	b, err := os.ReadFile(rulesTestPath)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			Alerts []struct {
				Name      string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
			Exprs []struct {
				Expr string `yaml:"expr"`
			} `yaml:"promql_expr_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("%s: %v", rulesTestPath, err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	var exprs []string
	for _, tc := range tests.Tests {
		for _, a := range tc.Alerts {
			if len(a.ExpAlerts) > 0 {
				fires[a.Name] = true
			} else {
				quiet[a.Name] = true
			}
		}
		for _, e := range tc.Exprs {
			exprs = append(exprs, e.Expr)
		}
	}
	alerts, records := 0, 0
	for _, r := range readRules(t) {
		if r.Record != "" {
			records++
			evaluates := regexp.MustCompile(`\b` + regexp.QuoteMeta(r.Record) + `\b`).MatchString
			if !slices.ContainsFunc(exprs, evaluates) {
				t.Errorf("recording rule %s: no promql_expr_test in %s evaluates it", r.Record, rulesTestPath)
			}
			continue
		}
		alerts++
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("alert %s: no summary", r.Alert)
		}
		if rb := r.Annotations["runbook"]; len(strings.Fields(rb)) < 30 {
			t.Errorf("alert %s: runbook %q is no paragraph on what it means and what to do", r.Alert, rb)
		}
		if !fires[r.Alert] || !quiet[r.Alert] {
			t.Errorf("alert %s: %s needs a case that fires it (%v) and one where it must not (%v)", r.Alert, rulesTestPath, fires[r.Alert], quiet[r.Alert])
		}
	}
	// DESIGN.md §11 lists nine alerts; the ratios it names are recorded.
	if alerts != 9 || records < 4 {
		t.Errorf("%d alerts and %d recording rules, want the 9 alerts of DESIGN.md §11 and at least 4 ratios", alerts, records)
	}
}

// dashboard is dashboard.json, decoded loosely.
func dashboard(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: data after the dashboard", dashboardPath)
	}
	return d
}

// query is a PromQL expression and where it was found.
type query struct{ where, expr string }

// dashboardQueries returns the dashboard's panel queries, its annotation
// queries, and the selectors inside its variables' label_values().
func dashboardQueries(d map[string]any) (panels, others []query) {
	for _, p := range list(d["panels"]) {
		title, _ := field(p, "title").(string)
		for _, tg := range list(field(p, "targets")) {
			if e, ok := field(tg, "expr").(string); ok {
				panels = append(panels, query{"panel " + strings.TrimSpace(title), e})
			}
		}
	}
	for _, a := range list(field(d, "annotations", "list")) {
		if e, ok := field(a, "expr").(string); ok {
			others = append(others, query{"annotation " + field(a, "name").(string), e})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]+\)$`)
	for _, v := range list(field(d, "templating", "list")) {
		if def, ok := field(v, "definition").(string); ok {
			if m := labelValues.FindStringSubmatch(def); m != nil {
				others = append(others, query{"variable " + field(v, "name").(string), m[1]})
			}
		}
	}
	return panels, others
}

func field(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

// The dashboard is a Grafana dashboard with a Prometheus data source
// variable that every panel uses, and it shows what an operator needs.
func TestDashboard(t *testing.T) {
	d := dashboard(t)
	if field(d, "title") == nil || field(d, "uid") == nil || field(d, "schemaVersion") == nil {
		t.Fatal("the dashboard needs a title, a uid and a schemaVersion")
	}
	ds := ""
	for _, v := range list(field(d, "templating", "list")) {
		if field(v, "type") == "datasource" && field(v, "query") == "prometheus" {
			ds = "${" + field(v, "name").(string) + "}"
		}
	}
	if ds == "" {
		t.Fatal("no data source variable of type prometheus")
	}
	ids := map[float64]bool{}
	for _, p := range list(d["panels"]) {
		title := field(p, "title")
		id, _ := field(p, "id").(float64)
		if ids[id] {
			t.Errorf("panel %q: id %v used twice", title, id)
		}
		ids[id] = true
		x, _ := field(p, "gridPos", "x").(float64)
		w, _ := field(p, "gridPos", "w").(float64)
		if w <= 0 || x+w > 24 {
			t.Errorf("panel %q: gridPos x=%v w=%v leaves the 24 columns", title, x, w)
		}
		if field(p, "type") == "row" {
			continue
		}
		targets := list(field(p, "targets"))
		if len(targets) == 0 {
			t.Errorf("panel %q: no queries", title)
		}
		for _, x := range append([]any{p}, targets...) {
			if field(x, "datasource", "uid") != ds {
				t.Errorf("panel %q: data source %v, want the variable %s", title, field(x, "datasource"), ds)
			}
		}
		for _, tg := range targets {
			if e, _ := field(tg, "expr").(string); strings.TrimSpace(e) == "" {
				t.Errorf("panel %q: a target without expr", title)
			}
		}
	}
	panels, _ := dashboardQueries(d)
	all := ""
	for _, q := range panels {
		all += q.expr + "\n"
	}
	for what, re := range map[string]string{
		"checks/s by outcome": `by \(outcome\) \(rate\(drl_checks_total`,
		"share denied":        `outcome="denied"|job:drl_checks_denied:ratio_rate5m`,
		"forward latency":     `histogram_quantile\(0\.99, sum by \(le\) \(rate\(drl_forward_duration_seconds_bucket`,
		"fallbacks":           `drl_fallbacks_total`,
		"ring changes":        `drl_ring_changes_total`,
		"members per node":    `drl_members\{`,
		"keys held":           `drl_keys\{`,
		"evictions":           `drl_evictions_total`,
	} {
		if !regexp.MustCompile(re).MatchString(all) {
			t.Errorf("no panel shows %s (/%s/)", what, re)
		}
	}
}

// exported is what a running node serves on /metrics: names, and for each
// the values of each label.
type exported map[string]map[string]map[string]bool

func liveMetrics(t *testing.T) exported {
	t.Helper()
	n := startNode(t, nodeBinary(t), "solo", "")
	waitReady(t, 20*time.Second, n)
	samples, err := scrape(n.http)
	if err != nil {
		t.Fatal(err)
	}
	out := exported{}
	for _, s := range samples {
		if out[s.name] == nil {
			out[s.name] = map[string]map[string]bool{}
		}
		for k, v := range s.labels {
			if out[s.name][k] == nil {
				out[s.name][k] = map[string]bool{}
			}
			out[s.name][k][v] = true
		}
	}
	if err := n.stop(15 * time.Second); err != nil {
		t.Error(err)
	}
	return out
}

// sourceMetrics returns the names cluster/metrics.go declares, with a
// histogram's series.
func sourceMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(metricsSourcePath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`NewDesc\(\s*"(\w+)"`).FindAllSubmatch(b, -1) {
		out[string(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`Name:\s*"(\w+)"`).FindAllSubmatch(b, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			out[string(m[1])+suffix] = true
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d metrics in %s", len(out), metricsSourcePath)
	}
	return out
}

var (
	quoted      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	colonName   = regexp.MustCompile(`[a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z0-9_]+)+`)
	drlName     = regexp.MustCompile(`\bdrl_[a-z0-9_]+`)
	selector    = regexp.MustCompile(`\b(drl_[a-z0-9_]+)\s*\{([^}]*)\}`)
	matcher     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	grouping    = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	targetLabel = map[string]bool{"job": true, "instance": true, "namespace": true, "pod": true}
)

// Every metric the rules and the dashboard name is one a node exports (in
// cluster/metrics.go and on a live node's /metrics), with the labels and
// label values they select on; every recorded series they name is
// recorded by rules.yaml.
func TestMetricNamesAndLabels(t *testing.T) {
	t.Parallel()
	live := liveMetrics(t)
	source := sourceMetrics(t)
	recorded := map[string]bool{}
	var queries []query
	for _, r := range readRules(t) {
		if r.Record != "" {
			recorded[r.Record] = true
			queries = append(queries, query{"record " + r.Record, r.Expr})
		} else {
			queries = append(queries, query{"alert " + r.Alert, r.Expr})
		}
	}
	panels, others := dashboardQueries(dashboard(t))
	queries = append(append(queries, panels...), others...)
	labelNames := map[string]bool{"le": true}
	for _, labels := range live {
		for k := range labels {
			labelNames[k] = true
		}
	}
	used := map[string]bool{}
	for _, q := range queries {
		bare := quoted.ReplaceAllString(q.expr, `""`)
		for _, name := range colonName.FindAllString(bare, -1) {
			if !recorded[name] {
				t.Errorf("%s: %s is recorded by no rule in %s", q.where, name, rulesPath)
			}
		}
		names := drlName.FindAllString(colonName.ReplaceAllString(bare, ""), -1)
		if len(names) == 0 && !strings.Contains(bare, ":") {
			t.Errorf("%s: %q names no drl metric", q.where, q.expr)
		}
		for _, name := range names {
			used[name] = true
			if live[name] == nil {
				t.Errorf("%s: metric %s is not on a node's /metrics", q.where, name)
			}
			if !source[name] {
				t.Errorf("%s: metric %s is not declared in %s", q.where, name, metricsSourcePath)
			}
		}
		for _, sel := range selector.FindAllStringSubmatch(q.expr, -1) {
			name := sel[1]
			for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
				label, op, value := m[1], m[2], m[3]
				if targetLabel[label] {
					continue
				}
				values, ok := live[name][label]
				if !ok {
					t.Errorf("%s: %s has no label %q", q.where, name, label)
				} else if op == "=" && !strings.Contains(value, "$") && !values[value] {
					t.Errorf("%s: %s{%s=%q}: the node exports only %v", q.where, name, label, value, slices.Sorted(maps.Keys(values)))
				}
			}
		}
		for _, g := range grouping.FindAllStringSubmatch(bare, -1) {
			for l := range strings.SplitSeq(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !targetLabel[l] && !labelNames[l] {
					t.Errorf("%s: groups by %q, a label no drl metric has", q.where, l)
				}
			}
		}
	}
	for name := range live {
		if strings.HasPrefix(name, "drl_") && !used[name] && !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") {
			t.Logf("%s is in neither the rules nor the dashboard", name)
		}
	}
}

// prometheusRuleHeader precedes rules.yaml's groups in the PrometheusRule.
const prometheusRuleHeader = `# GENERATED from deploy/monitoring/rules.yaml, with its groups unchanged:
#
#   go test ./deploy/monitoring -run TestKubernetesPrometheusRule -update
#
# Edit rules.yaml, not this file; the test fails when they differ. It needs
# the Prometheus Operator's CRDs (monitoring.coreos.com/v1), and a
# Prometheus whose ruleSelector matches these labels (kube-prometheus-stack
# wants ` + "`release: <its release name>`" + ` by default: add it with a
# kustomize patch, or kubectl label prometheusrule drl release=<name>).
#
#   kubectl apply -f deploy/kubernetes/prometheus-rule.yaml
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: drl
  labels: {app.kubernetes.io/name: drl}
spec:
`

// prometheusRule builds the PrometheusRule: rules.yaml from its groups
// key on, indented under spec, comments and all.
func prometheusRule(rules []byte) ([]byte, error) {
	i := bytes.Index(rules, []byte("\ngroups:"))
	if i < 0 {
		return nil, errors.New("rules.yaml has no top-level groups key")
	}
	var out bytes.Buffer
	out.WriteString(prometheusRuleHeader)
	for line := range strings.Lines(string(rules[i+1:])) {
		if strings.TrimSpace(line) != "" {
			out.WriteString("  ")
		}
		out.WriteString(line)
	}
	return out.Bytes(), nil
}

// The PrometheusRule carries rules.yaml's groups: byte for byte as
// generated, and equal once parsed.
func TestKubernetesPrometheusRule(t *testing.T) {
	rules, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := prometheusRule(rules)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(prometheusRulePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(prometheusRulePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what rules.yaml generates; run go test ./deploy/monitoring -run TestKubernetesPrometheusRule -update", prometheusRulePath)
	}
	var file struct{ Groups any }
	var pr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string
		Spec       struct{ Groups any }
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(got, &pr); err != nil {
		t.Fatalf("%s: %v", prometheusRulePath, err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("%s: %s %s, want monitoring.coreos.com/v1 PrometheusRule", prometheusRulePath, pr.APIVersion, pr.Kind)
	}
	if !reflect.DeepEqual(pr.Spec.Groups, file.Groups) || file.Groups == nil {
		t.Errorf("%s: spec.groups differ from the groups of %s", prometheusRulePath, rulesPath)
	}
}

func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, d)
	}
}

// matches reports whether labels has every key and value of selector.
func matches(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	l, _ := labels.(map[string]any)
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// The ServiceMonitor selects the Service in front of the StatefulSet's
// pods, and only it, on a port that serves /metrics.
func TestKubernetesServiceMonitor(t *testing.T) {
	docs := yamlDocs(t, serviceMonitorPath)
	if len(docs) != 1 || field(docs[0], "kind") != "ServiceMonitor" || field(docs[0], "apiVersion") != "monitoring.coreos.com/v1" {
		t.Fatalf("%s: want one monitoring.coreos.com/v1 ServiceMonitor", serviceMonitorPath)
	}
	sm := docs[0]
	var services []map[string]any
	var podLabels any
	for _, d := range yamlDocs(t, manifestsPath) {
		switch field(d, "kind") {
		case "Service":
			services = append(services, d)
		case "StatefulSet":
			podLabels = field(d, "spec", "template", "metadata", "labels")
		}
	}
	var selected []map[string]any
	for _, svc := range services {
		if matches(field(sm, "spec", "selector", "matchLabels"), field(svc, "metadata", "labels")) {
			selected = append(selected, svc)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("the ServiceMonitor selects %d Services, want exactly the client Service", len(selected))
	}
	svc := selected[0]
	if !matches(field(svc, "spec", "selector"), podLabels) {
		t.Errorf("Service %v does not select the StatefulSet's pods", field(svc, "metadata", "name"))
	}
	endpoints := list(field(sm, "spec", "endpoints"))
	if len(endpoints) != 1 {
		t.Fatalf("%d endpoints, want 1", len(endpoints))
	}
	ep := endpoints[0]
	found := false
	for _, p := range list(field(svc, "spec", "ports")) {
		// deploy_test.go checks that the http port is DRL_HTTP_ADDR's,
		// and e2e_test.go that /metrics is served there.
		if field(p, "name") == field(ep, "port") && field(p, "targetPort") == "http" {
			found = true
		}
	}
	if !found || field(ep, "path") != "/metrics" {
		t.Errorf("endpoint %v: want the Service's http port and /metrics", ep)
	}
}
