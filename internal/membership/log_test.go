package membership

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer that memberlist's goroutines and the test
// may use at once.
type syncBuffer struct {
	mu sync.Mutex
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

// A failed join is one log line whose err is one line too: memberlist's
// multierror read "1 error occurred:\n\t* failed to join ...\n\n". Once
// stopped, gossip logs nothing more, though memberlist's timers may.
func TestJoinFailureLogsOneLine(t *testing.T) {
	var logs syncBuffer
	g, err := Start(Config{ID: "lonely", BindHost: "127.0.0.1", Profile: Local, Join: []string{"127.0.0.1:1"},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), OnChange: func() {}}, Meta{Name: "lonely"})
	if err != nil {
		t.Fatal(err)
	}
	g.Run(context.Background()) // RejoinInterval 0: one try
	var failed []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if rec["msg"] == "join failed; retrying" {
			failed = append(failed, rec)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("logged %d join failures, want 1:\n%s", len(failed), logs.String())
	}
	msg, _ := failed[0]["err"].(string)
	if strings.ContainsAny(msg, "\n\t") || strings.Contains(msg, "error occurred") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("join failure's err = %q, want one line naming the seed", msg)
	}
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	before := logs.String()
	g.memberlistConfig().Logger.Print("[WARN] memberlist: Suspect x has failed, no acks received")
	if after := logs.String(); after != before {
		t.Errorf("stopped gossip logged %q", strings.TrimPrefix(after, before))
	}
}
