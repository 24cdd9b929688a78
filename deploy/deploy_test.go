// Package deploy holds the Dockerfile's companions: a docker-compose file
// and Kubernetes manifests. Its test checks them against the code, since
// neither Docker nor a Kubernetes cluster is at hand where it runs: every
// DRL_* variable must be a flag of cmd/node, ports must agree with
// addresses, probes must hit real endpoints, and the image's build must
// give a static binary.
package deploy

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

var flagHelp = sync.OnceValue(func() []byte {
	out, _ := exec.Command("go", "run", "../cmd/node", "-h").CombinedOutput()
	return out
})

// nodeFlags lists cmd/node's flags, as DRL_* names.
func nodeFlags(t *testing.T) map[string]bool {
	t.Helper()
	out := flagHelp()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags["DRL_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
	}
	if len(flags) < 20 {
		t.Fatalf("found only %d flags in cmd/node -h:\n%s", len(flags), out)
	}
	return flags
}

func docs(t *testing.T, path string) []map[string]any {
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
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, d)
	}
	return out
}

// get walks a YAML tree by keys and indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetesManifests(t *testing.T) {
	flags := nodeFlags(t)
	byKind := map[string][]map[string]any{}
	for _, d := range docs(t, "kubernetes/drl.yaml") {
		if get(d, "apiVersion") == nil || get(d, "metadata", "name") == nil {
			t.Fatalf("a document without apiVersion or name: %v", d)
		}
		kind := get(d, "kind").(string)
		byKind[kind] = append(byKind[kind], d)
	}
	if len(byKind["StatefulSet"]) != 1 || len(byKind["Service"]) != 2 || len(byKind["PodDisruptionBudget"]) != 1 {
		t.Fatalf("kinds: %v", byKind)
	}
	sts := byKind["StatefulSet"][0]
	var headless map[string]any
	for _, svc := range byKind["Service"] {
		if get(svc, "spec", "clusterIP") == "None" {
			headless = svc
		}
	}
	if headless == nil || get(sts, "spec", "serviceName") != get(headless, "metadata", "name") ||
		get(headless, "spec", "publishNotReadyAddresses") != true {
		t.Fatal("the StatefulSet needs a headless Service that publishes pods before they are ready")
	}
	c := get(sts, "spec", "template", "spec", "containers", 0)
	env := map[string]string{}
	for _, e := range get(c, "env").([]any) {
		name := get(e, "name").(string)
		if strings.HasPrefix(name, "DRL_") && !flags[name] {
			t.Errorf("env %s is no flag of cmd/node", name)
		}
		if v, ok := get(e, "value").(string); ok {
			env[name] = v
		}
	}
	if want := get(headless, "metadata", "name").(string) + ":7946"; env["DRL_JOIN"] != want {
		t.Errorf("DRL_JOIN %q, want the headless Service %q", env["DRL_JOIN"], want)
	}
	ports := map[string]int{}
	for _, p := range get(c, "ports").([]any) {
		ports[get(p, "name").(string)] = get(p, "containerPort").(int)
	}
	for name, addr := range map[string]string{"gossip-tcp": env["DRL_GOSSIP_ADDR"], "grpc": env["DRL_GRPC_ADDR"], "http": env["DRL_HTTP_ADDR"]} {
		if !strings.HasSuffix(addr, ":"+itoa(ports[name])) {
			t.Errorf("port %s %d does not match address %q", name, ports[name], addr)
		}
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if get(c, probe, "httpGet", "path") != path {
			t.Errorf("%s should ask %s", probe, path)
		}
	}
	// The state directory is a volume of the pod's own, mounted where
	// DRL_STATE_DIR points.
	mounted := false
	for _, m := range get(c, "volumeMounts").([]any) {
		mounted = mounted || get(m, "mountPath") == env["DRL_STATE_DIR"] && env["DRL_STATE_DIR"] != ""
	}
	claim := get(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name")
	if !mounted || claim == nil || get(c, "volumeMounts", 0, "name") != claim {
		t.Errorf("DRL_STATE_DIR %q is not a per-pod volume (claim %v)", env["DRL_STATE_DIR"], claim)
	}
	if g, _ := get(sts, "spec", "template", "spec", "terminationGracePeriodSeconds").(int); g <= 10 {
		t.Errorf("terminationGracePeriodSeconds %d leaves no room for the 10 s handoff on SIGTERM", g)
	}
}

func TestCompose(t *testing.T) {
	flags := nodeFlags(t)
	d := docs(t, "compose/docker-compose.yml")[0]
	services := get(d, "services").(map[string]any)
	if len(services) != 3 {
		t.Fatalf("%d services, want 3", len(services))
	}
	addrs := map[string]bool{}
	for name, svc := range services {
		env := get(svc, "environment").(map[string]any)
		for k := range env {
			if strings.HasPrefix(k, "DRL_") && !flags[k] {
				t.Errorf("%s: env %s is no flag of cmd/node", name, k)
			}
		}
		ip := get(svc, "networks", "drl", "ipv4_address").(string)
		addrs[ip+":7946"] = true
		if env["DRL_GOSSIP_ADVERTISE"] != ip+":7946" || env["DRL_GRPC_ADVERTISE"] != ip+":7947" {
			t.Errorf("%s advertises %v and %v, but its address is %s", name, env["DRL_GOSSIP_ADVERTISE"], env["DRL_GRPC_ADVERTISE"], ip)
		}
		if join, _ := env["DRL_JOIN"].(string); !addrs[join] && join != "172.28.0.11:7946" {
			t.Errorf("%s joins %q, no member's address", name, join)
		}
		vol, _ := get(svc, "volumes", 0).(string)
		if dir, _ := env["DRL_STATE_DIR"].(string); dir == "" || !strings.HasSuffix(vol, ":"+dir) || !hasKey(d, "volumes", strings.Split(vol, ":")[0]) {
			t.Errorf("%s keeps its state in %q, not a named volume mounted there (%q)", name, env["DRL_STATE_DIR"], vol)
		}
	}
}

// The Dockerfile's build step, run here, gives a static binary (the image
// is FROM scratch), and its ENV names are flags.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	flags := nodeFlags(t)
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`RUN CGO_ENABLED=0 go build (.*) -o /out/drl-node \./cmd/node`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no build step in the Dockerfile")
	}
	for _, name := range regexp.MustCompile(`(DRL_[A-Z_]+)=`).FindAllSubmatch(b, -1) {
		if !flags[string(name[1])] {
			t.Errorf("Dockerfile ENV %s is no flag of cmd/node", name[1])
		}
	}
	bin := filepath.Join(t.TempDir(), "drl-node")
	args := []string{"build"}
	for _, w := range regexp.MustCompile(`(?:[^\s"]|"[^"]*")+`).FindAllString(string(m[1]), -1) {
		args = append(args, strings.ReplaceAll(w, `"`, "")) // the shell's quoting, undone
	}
	cmd := exec.Command("go", append(args, "-o", bin, "./cmd/node")...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader; FROM scratch cannot run it")
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// hasKey reports whether the map at path in d has key (whose value may be
// empty, as a compose volume's is).
func hasKey(d any, path ...string) bool {
	m, ok := d.(map[string]any)
	for _, p := range path[:len(path)-1] {
		if !ok {
			return false
		}
		m, ok = m[p].(map[string]any)
	}
	if !ok {
		return false
	}
	_, found := m[path[len(path)-1]]
	return found
}
