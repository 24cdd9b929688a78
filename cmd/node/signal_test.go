package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that a node's logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var loopback = []string{"-name", "sig", "-gossip-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}

// A SIGTERM that arrives before the node has started stops it before it
// binds anything, with a log line that names the signal.
func TestSignalBeforeStart(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	var logs syncBuffer
	if err := run(loopback, func(string) string { return "" }, sigs, &bytes.Buffer{}, &logs); err != nil {
		t.Fatalf("run with a SIGTERM pending = %v, want nil", err)
	}
	if !strings.Contains(logs.String(), "msg=stopping signal=terminated started=false") || strings.Contains(logs.String(), "node started") {
		t.Fatalf("logs of a node stopped before its start:\n%s", logs.String())
	}
}

// A started node reloads on SIGHUP and leaves cleanly on SIGTERM, logging
// both.
func TestSignalAfterStart(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(loopback, func(string) string { return "" }, sigs, &bytes.Buffer{}, &logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "node started") {
		if time.Now().After(deadline) {
			sigs <- syscall.SIGTERM
			<-done
			t.Fatalf("no start within 10 s:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after SIGTERM = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no stop within 15 s of SIGTERM:\n%s", logs.String())
	}
	for _, want := range []string{"security files reloaded", "msg=stopping signal=terminated", "node stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

// The binary: -h is a success that prints to stdout, and a SIGTERM sent
// while the process is still initializing its packages (before main)
// ends it cleanly with a log line, not silently.
func TestBinarySignalsAndHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/node")
	}
	bin := buildNode(t)

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-h")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.HasPrefix(stdout.String(), "usage: node") || stderr.Len() > 0 {
		t.Fatalf("node -h: %v; stdout %q; stderr %q", err, stdout.String(), stderr.String())
	}

	// GODEBUG=inittrace=1 prints a line as each package's initialization
	// ends: the SIGTERM goes out as soon as earlysignal's has, while gRPC,
	// protobuf, memberlist and cluster are still to come.
	cmd = exec.Command(bin, loopback...)
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, the process ends within 20 s, which ends the loop.
	killer := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer killer.Stop()
	var lines []string
	sent := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if !sent && strings.HasPrefix(sc.Text(), "init github.com/drlimit/drl/cmd/node/internal/earlysignal ") {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
		if len(lines) > 5000 {
			break
		}
	}
	err = cmd.Wait()
	log := strings.Join(lines, "\n")
	if !sent {
		t.Fatalf("earlysignal never initialized:\n%s", log)
	}
	if err != nil {
		t.Fatalf("node after an early SIGTERM: %v, want exit status 0:\n%s", err, log)
	}
	if !strings.Contains(log, "msg=stopping signal=terminated") {
		t.Fatalf("no log line for an early SIGTERM:\n%s", log)
	}
	at := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, "init "+prefix+" ") {
				return i
			}
		}
		t.Fatalf("no initialization of %s:\n%s", prefix, log)
		return -1
	}
	early := at("github.com/drlimit/drl/cmd/node/internal/earlysignal")
	for _, heavy := range []string{"google.golang.org/grpc", "google.golang.org/protobuf/types/descriptorpb",
		"github.com/hashicorp/memberlist", "github.com/prometheus/client_golang/prometheus", "github.com/drlimit/drl/cluster"} {
		if at(heavy) < early {
			t.Errorf("%s initializes before earlysignal: a SIGTERM during it would end the node silently", heavy)
		}
	}
}
