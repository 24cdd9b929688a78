package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink that the node's goroutines and the test
// share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A node that leaves logs no ring change or count of its cluster while
// it goes, though the others change under it (one crashes), and nothing
// at all once it has stopped.
func TestLeavingNodeStopsLoggingRingChanges(t *testing.T) {
	var logs lockedBuffer
	nodes := startCluster(t, 3, func(c *Config) {
		if c.Name == "node-1" {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- nodes[1].Close(ctx) }()
	eventually(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "leaving the cluster") {
			return context.DeadlineExceeded
		}
		return nil
	})
	nodes[2].Halt()
	nodes[0].Halt()
	<-closed
	_, leaving, _ := strings.Cut(logs.String(), "leaving the cluster")
	for _, said := range []string{`msg="ring changed"`, "majority"} {
		if strings.Contains(leaving, said) {
			t.Errorf("a leaving node logged %s:%s", said, leaving)
		}
	}
	// memberlist's suspicion timers run past its Shutdown: give them the
	// time they take to fire (a probe interval or two of GossipLocal).
	time.Sleep(500 * time.Millisecond)
	if _, after, _ := strings.Cut(logs.String(), "msg=\"node stopped\" node=node-1\n"); after != "" {
		t.Errorf("a node that stopped logged:%s", after)
	}
}
