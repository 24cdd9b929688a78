package monitoring

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildDir holds the node binary that the package's tests share; TestMain
// removes it.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildNode compiles cmd/node once for all the package's tests.
var buildNode = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "drl-monitoring-")
	if err != nil {
		return "", err
	}
	buildDir = dir
	bin := filepath.Join(dir, "node")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/node")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/node: %v\n%s", err, out)
	}
	return bin, nil
})

func nodeBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildNode()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// process is a command started by a test, logging to a file. It is killed
// when the test ends, if it still runs.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has exited
}

// start runs bin with args, its output going to a file in the test's
// temporary directory.
func start(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("log of %s (pid %d):\n%s", name, cmd.Process.Pid, p.tail(4000))
		}
	})
	return p
}

// signal sends sig unless the process has exited.
func (p *process) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// stop sends SIGTERM and waits up to within for the process to exit,
// killing it if it does not.
func (p *process) stop(within time.Duration) error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(within):
		p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s (pid %d) did not exit within %v of SIGTERM", p.name, p.cmd.Process.Pid, within)
	}
}

func (p *process) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// node is one cmd/node process on loopback.
type node struct {
	*process
	gossip, http string // addresses, host:port
}

// startNode starts a node on free loopback ports, joining join unless it
// is empty, and waits for the log line that names its addresses.
func startNode(t *testing.T, bin, name, join string) *node {
	t.Helper()
	args := []string{"-name", name, "-gossip-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0", "-log-format", "json", "-rejoin-interval", "500ms"}
	if join != "" {
		args = append(args, "-join", join)
	}
	n := &node{process: start(t, "node "+name, bin, args...)}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		f, err := os.Open(n.log)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var line struct{ Msg, Gossip, HTTP string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "node started" {
				n.gossip, n.http = line.Gossip, line.HTTP
			}
		}
		f.Close()
		if n.http != "" {
			return n
		}
		select {
		case <-n.done:
			t.Fatalf("node %s exited: %s", name, n.tail(2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("node %s did not log its addresses within 20s", name)
	return nil
}

var client = &http.Client{Timeout: 3 * time.Second}

// get fetches url and returns its status and body.
func get(url string) (int, []byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, err
}

// waitReady polls every node's /readyz until all answer 200.
func waitReady(t *testing.T, within time.Duration, nodes ...*node) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ready := 0
		for _, n := range nodes {
			if code, _, err := get("http://" + n.http + "/readyz"); err == nil && code == http.StatusOK {
				ready++
			}
		}
		if ready == len(nodes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes ready after %v", ready, len(nodes), within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  string
}

// scrape reads a node's /metrics.
func scrape(addr string) ([]sample, error) {
	code, body, err := get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", code)
	}
	return parseText(body)
}

// parseText parses the Prometheus text format, as far as drl's metrics
// need: label values without escaped quotes.
func parseText(b []byte) ([]sample, error) {
	var out []sample
	for line := range strings.Lines(string(bytes.TrimSpace(b))) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i < 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		} else if line[i] == '{' {
			s.name = line[:i]
			j := strings.IndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("metrics line %q: unclosed labels", line)
			}
			for pair := range strings.SplitSeq(line[i+1:j], ",") {
				if pair = strings.TrimSpace(pair); pair == "" {
					continue
				}
				k, v, ok := strings.Cut(pair, "=")
				if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
					return nil, fmt.Errorf("metrics line %q: label %q", line, pair)
				}
				s.labels[k] = v[1 : len(v)-1]
			}
			rest = line[j+1:]
		} else {
			s.name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		s.value = fields[0]
		out = append(out, s)
	}
	return out, nil
}
