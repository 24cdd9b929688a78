// Package deploy holds the Dockerfile's companions: a docker-compose file
// and Kubernetes manifests. Its test checks them against the code, since
// neither Docker nor a Kubernetes cluster is at hand where it runs: every
// DRL_* variable must be a flag of cmd/node, ports must agree with
// addresses, probes must hit real endpoints, every node must start
// protected (a gossip key from a mounted secret, check and admin tokens,
// never -insecure), and the image's build must give a static binary.
package deploy

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	if len(byKind["StatefulSet"]) != 1 || len(byKind["Service"]) != 2 || len(byKind["PodDisruptionBudget"]) != 1 ||
		len(byKind["NetworkPolicy"]) != 1 {
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

	// Protected: the image's environment with the pod's on top starts a
	// node with a key and tokens, all read from the mounted Secret, which
	// is not optional (a missing one stops the pod, visibly).
	full := withImageEnv(t, env)
	if why := unprotected(full); why != "" {
		t.Errorf("the StatefulSet would start an unprotected node: %s", why)
	}
	secretMounts := map[string]string{} // mount path → Secret name
	volumes := map[string]any{}
	for _, v := range listOf(get(sts, "spec", "template", "spec", "volumes")) {
		volumes[get(v, "name").(string)] = v
	}
	for _, m := range listOf(get(c, "volumeMounts")) {
		v := volumes[get(m, "name").(string)]
		if name, ok := get(v, "secret", "secretName").(string); ok {
			if get(v, "secret", "optional") == true {
				t.Errorf("the Secret %s is optional: a pod without it would start unprotected or fail late", name)
			}
			secretMounts[get(m, "mountPath").(string)] = name
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range securityFiles {
		path := full[v]
		if path == "" {
			continue
		}
		dir, file := filepath.Split(path)
		secret := secretMounts[strings.TrimSuffix(dir, "/")]
		if secret == "" {
			t.Errorf("%s=%s is not in a mounted Secret", v, path)
			continue
		}
		// The README's command creates the Secret with that file in it.
		create := regexp.MustCompile(`kubectl create secret generic ` + secret + `((?: +--from-literal=[a-z.-]+="[^"]*")+)`).FindSubmatch(readme)
		if create == nil || !strings.Contains(string(create[1]), "--from-literal="+file+"=") {
			t.Errorf("README.md gives no kubectl create secret generic %s with %s, which %s reads", secret, file, v)
		}
	}

	// Only members reach the gossip port.
	np := byKind["NetworkPolicy"][0]
	if get(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name") != "drl" {
		t.Error("the NetworkPolicy does not select the drl pods")
	}
	gossipGuarded := false
	for _, rule := range listOf(get(np, "spec", "ingress")) {
		ports := listOf(get(rule, "ports"))
		if len(ports) == 0 {
			t.Error("a NetworkPolicy rule admits every port")
		}
		for _, p := range ports {
			if !isGossipPort(get(p, "port")) {
				continue
			}
			from := listOf(get(rule, "from"))
			onlyMembers := len(from) > 0
			for _, f := range from {
				onlyMembers = onlyMembers && get(f, "namespaceSelector") == nil && get(f, "ipBlock") == nil &&
					get(f, "podSelector", "matchLabels", "app.kubernetes.io/name") == "drl"
			}
			if !onlyMembers {
				t.Errorf("the NetworkPolicy admits non-members to the gossip port: %v", rule)
			}
			gossipGuarded = true
		}
	}
	if !gossipGuarded {
		t.Error("the NetworkPolicy does not name the gossip port")
	}
}

// isGossipPort reports whether a NetworkPolicy port, a number or a
// container port's name, is the gossip port.
func isGossipPort(port any) bool {
	switch p := port.(type) {
	case int:
		return p == 7946
	case string:
		return strings.HasPrefix(p, "gossip")
	}
	return false
}

// securityFiles are the variables that name a secret file.
var securityFiles = []string{"DRL_GOSSIP_KEY_FILE", "DRL_AUTH_TOKEN_FILE", "DRL_ADMIN_TOKEN_FILE", "DRL_TLS_CERT", "DRL_TLS_KEY", "DRL_TLS_CA"}

// unprotected says why a node started with env (DRL_* variables, the
// image's included) would be open to strangers, or "" when it is not. The
// rule is cmd/node's protected mode (a gossip key or TLS, and no
// -insecure), plus what a shipped deployment adds: tokens of both roles.
func unprotected(env map[string]string) string {
	if on, _ := strconv.ParseBool(env["DRL_INSECURE"]); on {
		return "DRL_INSECURE is set"
	}
	if env["DRL_GOSSIP_KEY_FILE"] == "" && env["DRL_GOSSIP_KEY"] == "" && env["DRL_TLS_CERT"] == "" {
		return "neither a gossip key nor TLS (DRL_GOSSIP_KEY_FILE, DRL_TLS_CERT)"
	}
	if env["DRL_TLS_CERT"] != "" && (env["DRL_TLS_KEY"] == "" || env["DRL_TLS_CA"] == "") {
		return "DRL_TLS_CERT without DRL_TLS_KEY and DRL_TLS_CA"
	}
	if env["DRL_AUTH_TOKEN_FILE"] == "" || env["DRL_ADMIN_TOKEN_FILE"] == "" {
		return "no check tokens or no admin tokens (DRL_AUTH_TOKEN_FILE, DRL_ADMIN_TOKEN_FILE): anyone may check, or nobody may reset"
	}
	return ""
}

// The rule catches each way a file could leave a node open.
func TestUnprotectedCatchesOpenNodes(t *testing.T) {
	good := map[string]string{"DRL_GOSSIP_KEY_FILE": "/k", "DRL_AUTH_TOKEN_FILE": "/t", "DRL_ADMIN_TOKEN_FILE": "/a"}
	if why := unprotected(good); why != "" {
		t.Fatalf("a keyed node with tokens: %s", why)
	}
	for name, edit := range map[string]func(map[string]string){
		"no key":        func(e map[string]string) { delete(e, "DRL_GOSSIP_KEY_FILE") },
		"insecure":      func(e map[string]string) { e["DRL_INSECURE"] = "true" },
		"no tokens":     func(e map[string]string) { delete(e, "DRL_AUTH_TOKEN_FILE") },
		"no admin file": func(e map[string]string) { delete(e, "DRL_ADMIN_TOKEN_FILE") },
	} {
		env := maps.Clone(good)
		edit(env)
		if unprotected(env) == "" {
			t.Errorf("%s: not caught", name)
		}
	}
}

// withImageEnv is the Dockerfile's ENV with env on top: what a container
// of the image sees. Comments are not ENV.
func withImageEnv(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(string(b), "")
	full := map[string]string{}
	for _, m := range regexp.MustCompile(`(DRL_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(code, -1) {
		full[m[1]] = m[2]
	}
	maps.Copy(full, env)
	return full
}

func listOf(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestCompose(t *testing.T) {
	flags := nodeFlags(t)
	d := docs(t, "compose/docker-compose.yml")[0]
	services := get(d, "services").(map[string]any)
	secrets, _ := services["secrets"].(map[string]any)
	delete(services, "secrets")
	if len(services) != 3 || secrets == nil {
		t.Fatalf("%d node services and secrets service %v; want 3 and one", len(services), secrets != nil)
	}
	// The one-shot service writes the files into its volume; each node
	// waits for it to succeed and mounts that volume where its variables
	// point.
	secretsVol, _ := get(secrets, "volumes", 0).(string)
	secretsName, secretsDir, _ := strings.Cut(secretsVol, ":")
	if !hasKey(d, "volumes", secretsName) || get(secrets, "restart") != "no" {
		t.Fatalf("the secrets service writes to %q, not a named volume, or restarts", secretsVol)
	}
	script := strings.Join(func() []string {
		var s []string
		for _, w := range listOf(get(secrets, "command")) {
			s = append(s, w.(string))
		}
		return s
	}(), " ")
	addrs := map[string]bool{}
	joins, own := map[string][]string{}, map[string]string{} // by service
	for name, svc := range services {
		env := get(svc, "environment").(map[string]any)
		strEnv := map[string]string{}
		for k, v := range env {
			strEnv[k], _ = v.(string)
		}
		full := withImageEnv(t, strEnv)
		if why := unprotected(full); why != "" {
			t.Errorf("%s would start an unprotected node: %s", name, why)
		}
		if get(svc, "depends_on", "secrets", "condition") != "service_completed_successfully" {
			t.Errorf("%s does not wait for the secrets service to succeed", name)
		}
		mounted := false
		for _, v := range listOf(get(svc, "volumes")) {
			mounted = mounted || v == secretsName+":"+secretsDir+":ro"
		}
		for _, v := range securityFiles {
			if path := full[v]; path != "" {
				dir, file := filepath.Split(path)
				if !mounted || strings.TrimSuffix(dir, "/") != secretsDir || !strings.Contains(script, "> "+file) {
					t.Errorf("%s: %s=%s is not a file the secrets service writes, mounted read-only there", name, v, path)
				}
			}
		}
		for _, p := range listOf(get(svc, "ports")) {
			if !strings.HasPrefix(p.(string), "127.0.0.1:") {
				t.Errorf("%s publishes %v on every interface of the host", name, p)
			}
		}
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
		join, _ := env["DRL_JOIN"].(string)
		joins[name] = strings.Split(join, ",")
		own[name] = ip + ":7946"
		vol, _ := get(svc, "volumes", 0).(string)
		if dir, _ := env["DRL_STATE_DIR"].(string); dir == "" || !strings.HasSuffix(vol, ":"+dir) || !hasKey(d, "volumes", strings.Split(vol, ":")[0]) {
			t.Errorf("%s keeps its state in %q, not a named volume mounted there (%q)", name, env["DRL_STATE_DIR"], vol)
		}
	}
	// Every node lists every other member as a seed: one that could only
	// join itself would, restarted alone, form a cluster of its own.
	for name, seeds := range joins {
		for other, addr := range own {
			if other != name && !slices.Contains(seeds, addr) {
				t.Errorf("%s does not list %s (%s) among its seeds %v", name, other, addr, seeds)
			}
		}
		for _, seed := range seeds {
			if !addrs[seed] {
				t.Errorf("%s joins %q, no member's address", name, seed)
			}
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
