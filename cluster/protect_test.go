package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7946": true, "127.1.2.3:0": true, "[::1]:7946": true, "localhost:8080": true, "LOCALHOST:1": true,
		"0.0.0.0:7946": false, ":7946": false, "[::]:7946": false, "10.0.0.2:7946": false,
		"myhost:7946": false, "no-port": false, "": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Protected mode: off loopback, a node needs a gossip key or TLS, or
// Insecure; on loopback it needs nothing.
func TestProtectedMode(t *testing.T) {
	key := make([]byte, 32)
	for _, c := range []struct {
		name  string
		cfg   Config
		field string // the listener named, "" when the config is valid
	}{
		{"the defaults, on loopback", Config{}, ""},
		{"gossip on every interface", Config{GossipAddr: "0.0.0.0:7946"}, "GossipAddr"},
		{"gRPC on every interface", Config{GRPCAddr: ":7947"}, "GRPCAddr"},
		{"HTTP on a private address", Config{HTTPAddr: "10.1.2.3:8080"}, "HTTPAddr"},
		{"HTTP by host name", Config{HTTPAddr: "myhost:8080"}, "HTTPAddr"},
		{"with a gossip key", Config{GossipAddr: "0.0.0.0:7946", GRPCAddr: "0.0.0.0:7947", GossipKeys: [][]byte{key}}, ""},
		{"Insecure", Config{GossipAddr: "0.0.0.0:7946", Insecure: true}, ""},
	} {
		err := c.cfg.Validate()
		var u *UnprotectedError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", c.name, err)
		case c.field != "" && (!errors.Is(err, ErrUnprotected) || !errors.As(err, &u) || u.Field != c.field):
			t.Errorf("%s: Validate = %v, want an UnprotectedError naming %s", c.name, err, c.field)
		case c.field != "" && !strings.Contains(err.Error(), "Insecure"):
			t.Errorf("%s: %v does not say how to accept the risk", c.name, err)
		}
	}
	if w := (Config{GossipAddr: "0.0.0.0:7946", Insecure: true}).withDefaults().insecureWarning(); !strings.Contains(w, "GossipAddr 0.0.0.0:7946") {
		t.Errorf("insecure warning %q does not name the listener", w)
	}
	if w := (Config{Insecure: true}).withDefaults().insecureWarning(); w != "" {
		t.Errorf("an Insecure node on loopback warns %q", w)
	}
}
