package main

import (
	"io"
	"testing"

	"github.com/drlimit/drl/cluster"
)

func TestEnvironmentTwins(t *testing.T) {
	env := map[string]string{"DRL_JOIN": "127.0.0.1:1,127.0.0.1:2", "DRL_HTTP_ADDR": "127.0.0.1:9", "DRL_NAME": "from-env"}
	o, err := parse([]string{"-name", "from-flag", "-batch-delay", "1ms"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "from-flag" || cfg.HTTPAddr != "127.0.0.1:9" || len(cfg.Join) != 2 {
		t.Fatalf("config = %+v: the flag must win, the environment fill the rest", cfg)
	}
	if cfg.Gossip != cluster.GossipLAN {
		t.Fatalf("default gossip profile %v, want LAN", cfg.Gossip)
	}
}

func TestBadFlags(t *testing.T) {
	none := func(string) string { return "" }
	for _, args := range [][]string{{"-gossip-profile", "wan"}, {"-fail-policy", "maybe"}, {"-join", "no-port"}, {"-min-window", "-1s"}, {"extra"}} {
		o, err := parse(args, none)
		if err == nil {
			_, err = o.config(nil)
		}
		if err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if _, err := parse(nil, func(k string) string {
		if k == "DRL_BATCH_SIZE" {
			return "many"
		}
		return ""
	}); err == nil {
		t.Error("DRL_BATCH_SIZE=many accepted")
	}
	if _, err := newLogger(io.Discard, "loud", "text"); err == nil {
		t.Error("-log-level loud accepted")
	}
}
