// Command node runs one drl node: a member of a rate-limiting cluster that
// serves the gRPC and HTTP/JSON APIs.
//
//	go run ./cmd/node                                  # a single node on loopback
//	go run ./cmd/node -name b -gossip-addr 127.0.0.1:7956 -grpc-addr 127.0.0.1:7957 \
//	    -http-addr 127.0.0.1:8090 -join 127.0.0.1:7946  # a second one, joining it
//
// Every flag has an environment-variable twin: -gossip-addr is
// DRL_GOSSIP_ADDR, and so on. A flag on the command line wins. SIGTERM or
// SIGINT makes the node leave the cluster and stop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster"
)

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(2)
	}
}

// options are the command line, before it becomes a cluster.Config.
type options struct {
	name, gossipAddr, gossipAdvertise, grpcAddr, grpcAdvertise, httpAddr, join string
	minWindow, maxWindow, batchDelay, checkTimeout, rejoin                     time.Duration
	batchSize, maxEntries                                                      int
	leases                                                                     bool
	gossip, logLevel, logFormat, pprofAddr, failPolicy                         string
	envoyRules, envoyAddr                                                      string
	tlsCert, tlsKey, tlsCA, gossipKey, gossipKeyFile, authTokenFile            string
}

func parse(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.StringVar(&o.name, "name", "", "unique member name (default: host name and a random suffix)")
	fs.StringVar(&o.gossipAddr, "gossip-addr", cluster.DefaultGossipAddr, "gossip bind address, host:port (TCP and UDP)")
	fs.StringVar(&o.gossipAdvertise, "gossip-advertise", "", "gossip address other members use (default: the bound one)")
	fs.StringVar(&o.grpcAddr, "grpc-addr", cluster.DefaultGRPCAddr, "gRPC bind address, host:port")
	fs.StringVar(&o.grpcAdvertise, "grpc-advertise", "", "gRPC address other members use (default: the bound one)")
	fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "HTTP/JSON bind address, host:port; empty disables it")
	fs.StringVar(&o.join, "join", "", "comma-separated gossip addresses of members to join")
	fs.DurationVar(&o.minWindow, "min-window", bucket.DefaultMinWindow, "shortest window a check may ask for")
	fs.DurationVar(&o.maxWindow, "max-window", bucket.DefaultMaxWindow, "longest window a check may ask for")
	fs.IntVar(&o.batchSize, "batch-size", 0, "most keys in one forwarded batch; 1 disables batching (default 256)")
	fs.DurationVar(&o.batchDelay, "batch-delay", 0, "longest a forwarded check waits for its batch (default 200µs)")
	fs.DurationVar(&o.checkTimeout, "check-timeout", cluster.DefaultCheckTimeout, "deadline of a check without its own")
	fs.DurationVar(&o.rejoin, "rejoin-interval", cluster.DefaultRejoinInterval, "how often to re-join seeds and lost members")
	fs.IntVar(&o.maxEntries, "max-entries", bucket.DefaultMaxEntries, "most keys held by this node")
	fs.StringVar(&o.gossip, "gossip-profile", "lan", "gossip timings: lan or local")
	fs.BoolVar(&o.leases, "leases", false, "lease tokens of hot keys to forwarders (fewer hops; unused leases lapse spent)")
	fs.StringVar(&o.failPolicy, "fail-policy", "local", "answer when a key's owner is unreachable: local (limit/N here), open or closed")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "serve net/http/pprof on this address (off when empty)")
	fs.StringVar(&o.envoyRules, "envoy-rules", "", "YAML rules file: serve Envoy's rate limit service API (reloaded on SIGHUP)")
	fs.StringVar(&o.envoyAddr, "envoy-addr", "127.0.0.1:8081", "gRPC address of Envoy's rate limit service, with -envoy-rules")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate of this node: turns on TLS and mutual TLS between members (with -tls-key, -tls-ca)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM CA that signs every member's certificate")
	fs.StringVar(&o.gossipKey, "gossip-key", "", "base64 gossip encryption keys, comma-separated, the first encrypting (prefer DRL_GOSSIP_KEY or -gossip-key-file)")
	fs.StringVar(&o.gossipKeyFile, "gossip-key-file", "", "file of base64 gossip keys, one per line, the first encrypting (reloaded on SIGHUP)")
	fs.StringVar(&o.authTokenFile, "auth-token-file", "", "file of bearer tokens, one per line, that the public API requires (reloaded on SIGHUP)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// Environment twins fill in the flags the command line left alone.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "DRL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !set[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return o, errors.Join(errs...)
}

func (o options) config(logger *slog.Logger) (cluster.Config, error) {
	cfg := cluster.Config{
		Name:            o.name,
		GossipAddr:      o.gossipAddr,
		GossipAdvertise: o.gossipAdvertise,
		GRPCAddr:        o.grpcAddr,
		GRPCAdvertise:   o.grpcAdvertise,
		HTTPAddr:        o.httpAddr,
		RejoinInterval:  o.rejoin,
		CheckTimeout:    o.checkTimeout,
		Logger:          logger,
	}
	for _, j := range strings.Split(o.join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	cfg.Store.MinWindow, cfg.Store.MaxWindow, cfg.Store.MaxEntries = o.minWindow, o.maxWindow, o.maxEntries
	cfg.Peer.BatchSize, cfg.Peer.BatchDelay = o.batchSize, o.batchDelay
	policy, err := drl.ParseFailPolicy(o.failPolicy)
	if err != nil || policy == drl.FailDefault {
		return cfg, fmt.Errorf("-fail-policy %q: want local, open or closed", o.failPolicy)
	}
	cfg.FailPolicy = policy
	cfg.Leases = o.leases
	switch o.gossip {
	case "lan":
		cfg.Gossip = cluster.GossipLAN
	case "local":
		cfg.Gossip = cluster.GossipLocal
	default:
		return cfg, fmt.Errorf("-gossip-profile %q: want lan or local", o.gossip)
	}
	return cfg, cfg.Validate()
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

func run(args []string, getenv func(string) string) error {
	o, err := parse(args, getenv)
	if err != nil {
		return err
	}
	logger, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	cfg, err := o.config(logger)
	if err != nil {
		return err
	}
	sec, err := o.security(&cfg)
	if err != nil {
		return err
	}
	n, err := cluster.New(cfg)
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { sec.watch(watchCtx, logger); close(watched) }()
	defer func() { stopWatch(); <-watched }()
	if o.pprofAddr != "" {
		stopPprof, err := servePprof(o.pprofAddr, sec, logger)
		if err != nil {
			n.Close(context.Background())
			return err
		}
		defer stopPprof()
	}
	reload := func() {}
	if o.envoyRules != "" {
		stopEnvoy, reloadEnvoy, err := serveEnvoy(n, o, sec, logger)
		if err != nil {
			n.Close(context.Background())
			return err
		}
		defer stopEnvoy()
		reload = reloadEnvoy
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	s := <-sig
	for s == syscall.SIGHUP {
		sec.reload(n, logger)
		reload()
		s = <-sig
	}
	logger.Info("signal received; leaving", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Close(ctx)
}
