// Command node runs one drl node: a member of a rate-limiting cluster that
// serves the gRPC and HTTP/JSON APIs.
//
//	go run ./cmd/node                                  # a single node on loopback
//	go run ./cmd/node -name b -gossip-addr 127.0.0.1:7956 -grpc-addr 127.0.0.1:7957 \
//	    -http-addr 127.0.0.1:8090 -join 127.0.0.1:7946  # a second one, joining it
//
// Every flag has an environment-variable twin: -gossip-addr is
// DRL_GOSSIP_ADDR, and so on; -h lists them all. A flag on the command
// line wins. SIGTERM or SIGINT, at any time from the first milliseconds
// on, makes the node log "stopping", leave the cluster and stop; SIGHUP
// reloads its certificates, tokens, gossip keys and Envoy rules.
//
// To run a node in the background, build it first (go build -o): "go run
// ./cmd/node &" backgrounds the go command, and killing that leaves the
// node running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/cmd/node/internal/earlysignal"
	"github.com/drlimit/drl/internal/gcfloor"
)

func main() {
	// The first thing main does: take the signals, which earlysignal has
	// been catching since package initialization (before main, which
	// starts some milliseconds after the process), so that a SIGTERM at
	// any time is logged and ends the node cleanly.
	sigs := earlysignal.C
	// GOGC is the process's, so main paces it for the process's life, not
	// run (which tests call many times in one process). An operator's GOGC
	// wins.
	if os.Getenv("GOGC") == "" {
		gcfloor.Start(heapFloor)
	}
	err := run(os.Args[1:], os.Getenv, sigs, os.Stdout, os.Stderr)
	if msg := errorMessage(err); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
	os.Exit(exitCode(err))
}

// heapFloor is how far the heap may always grow between collections: GOGC
// 400 with a few thousand keys, 100 from about 150,000 (DESIGN.md §5).
const heapFloor = 16 << 20

// errUsage marks errors in the command line or the environment.
var errUsage = errors.New("usage")

// exitCode maps run's error to the process's exit status: 0 for success
// and for -h, 2 for a bad command line, 1 for any other failure.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

// errorMessage is what main prints for run's error; "" for none.
func errorMessage(err error) string {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ""
	case errors.Is(err, errUsage):
		lines := strings.Split(err.Error(), "\n") // several, from errors.Join
		for i, l := range lines {
			lines[i] = "node: " + strings.TrimPrefix(l, errUsage.Error()+": ")
		}
		return strings.Join(lines, "\n") + "\n(node -h lists the flags and their DRL_* twins)"
	}
	return "node: " + err.Error()
}

// options are the command line, before it becomes a cluster.Config.
type options struct {
	name, gossipAddr, gossipAdvertise, grpcAddr, grpcAdvertise, httpAddr, join string
	minWindow, maxWindow, batchDelay, checkTimeout, rejoin, forgetFailed       time.Duration
	batchSize, maxEntries                                                      int
	leases                                                                     bool
	gossip, logLevel, logFormat, pprofAddr, failPolicy                         string
	envoyRules, envoyAddr                                                      string
	tlsCert, tlsKey, tlsCA, gossipKey, gossipKeyFile, authTokenFile            string
	adminTokenFile                                                             string
	insecure                                                                   bool
	stateDir                                                                   string
	snapshotEvery                                                              time.Duration
}

// flags defines the command line's flags on a new set, bound to o.
func flags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	// parse returns errors and run prints the usage; the flag package
	// prints nothing itself.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
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
	fs.DurationVar(&o.batchDelay, "batch-delay", 0, "ignored: forwarded checks batch by load, waiting on no timer (kept so that old command lines start)")
	fs.DurationVar(&o.checkTimeout, "check-timeout", cluster.DefaultCheckTimeout, "deadline of a check without its own")
	fs.DurationVar(&o.rejoin, "rejoin-interval", cluster.DefaultRejoinInterval, "how often to re-join seeds and lost members")
	fs.DurationVar(&o.forgetFailed, "forget-failed-after", cluster.DefaultForgetFailed, "how long a failed (not left) member still counts toward the majority; drlctl forget drops one sooner")
	fs.IntVar(&o.maxEntries, "max-entries", bucket.DefaultMaxEntries, "most keys held by this node")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for a snapshot of this node's buckets, so counts survive a restart of the whole cluster (off when empty)")
	fs.DurationVar(&o.snapshotEvery, "snapshot-every", cluster.DefaultSnapshotEvery, "with -state-dir, how often to save a snapshot while running (bounds what a crash of every node loses); 0 saves only on shutdown")
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
	fs.StringVar(&o.authTokenFile, "auth-token-file", "", "file of bearer tokens, one per line, that checks on the public API require (reloaded on SIGHUP); alone, it leaves admin calls to nobody")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "file of bearer tokens, one per line, that admin calls (reset, forget, top, /v1/status) require; they may also check (reloaded on SIGHUP)")
	fs.BoolVar(&o.insecure, "insecure", false, "start even with a listener off loopback and neither a gossip key nor TLS: anyone who reaches the ports can join the cluster")
	return fs
}

// envName is the environment twin of a flag: -gossip-addr is
// DRL_GOSSIP_ADDR.
func envName(flagName string) string {
	return "DRL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads the command line, then the DRL_* environment for the flags
// the command line left alone. -h or -help answers flag.ErrHelp; other
// errors wrap errUsage.
func parse(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flags(&o)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return o, err
	} else if err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	// Environment twins fill in the flags the command line left alone.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		if v := getenv(env); v != "" && !set[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s=%q: %v", errUsage, env, v, err))
			}
		}
	})
	return o, errors.Join(errs...)
}

const usageHead = `usage: node [flags]

Runs one drl node: a member of a rate-limiting cluster that serves the gRPC
and HTTP/JSON APIs. SIGTERM or SIGINT makes it hand its keys to the other
members, leave and stop; SIGHUP reloads the certificates, tokens, gossip
keys and Envoy rules.

Every flag has an environment twin, named after the flag below: the twin
of -join is DRL_JOIN. A flag on the command line wins over its twin.

flags:
`

// writeUsage prints the help: each flag with its environment twin, what it
// does and its default.
func writeUsage(w io.Writer) {
	var o options
	fs := flags(&o)
	var b strings.Builder
	b.WriteString(usageHead)
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  -%s", f.Name)
		if kind != "" {
			fmt.Fprintf(&b, " %s", kind)
		}
		fmt.Fprintf(&b, "  (env %s)\n    \t%s", envName(f.Name), usage)
		switch f.DefValue {
		case "", "0", "0s", "false":
		default:
			if kind == "string" {
				fmt.Fprintf(&b, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(&b, " (default %s)", f.DefValue)
			}
		}
		b.WriteString("\n")
	})
	io.WriteString(w, b.String())
}

func (o options) config(logger *slog.Logger) (cluster.Config, error) {
	cfg := cluster.Config{
		Name:              o.name,
		GossipAddr:        o.gossipAddr,
		GossipAdvertise:   o.gossipAdvertise,
		GRPCAddr:          o.grpcAddr,
		GRPCAdvertise:     o.grpcAdvertise,
		HTTPAddr:          o.httpAddr,
		RejoinInterval:    o.rejoin,
		CheckTimeout:      o.checkTimeout,
		ForgetFailedAfter: o.forgetFailed,
		StateDir:          o.stateDir,
		SnapshotEvery:     o.snapshotEvery,
		Logger:            logger,
	}
	if o.snapshotEvery == 0 {
		cfg.SnapshotEvery = -1 // only on shutdown
	}
	for _, j := range strings.Split(o.join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	cfg.Store.MinWindow, cfg.Store.MaxWindow, cfg.Store.MaxEntries = o.minWindow, o.maxWindow, o.maxEntries
	cfg.Peer.MaxBatch = o.batchSize
	if o.batchDelay != 0 && logger != nil {
		logger.Warn("-batch-delay is ignored: forwarded checks batch by load, waiting on no timer")
	}
	policy, err := drl.ParseFailPolicy(o.failPolicy)
	if err != nil || policy == drl.FailDefault {
		return cfg, fmt.Errorf("-fail-policy %q: want local, open or closed", o.failPolicy)
	}
	cfg.FailPolicy = policy
	cfg.Leases = o.leases
	cfg.Insecure = o.insecure
	switch o.gossip {
	case "lan":
		cfg.Gossip = cluster.GossipLAN
	case "local":
		cfg.Gossip = cluster.GossipLocal
	default:
		return cfg, fmt.Errorf("-gossip-profile %q: want lan or local", o.gossip)
	}
	// Protected mode is judged in run, once the security flags have set
	// the gossip keys and TLS.
	check := cfg
	check.Insecure = true
	return cfg, check.Validate()
}

// newLogger makes the node's logger, writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: readableAttr}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// readableAttr writes a duration as its String ("1.5s"; the JSON handler
// would write nanoseconds) and an error's message on one line (an
// errors.Join or a wrapped gRPC status may span several).
func readableAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Any().(type) {
	case time.Duration:
		a.Value = slog.StringValue(v.String())
	case error:
		var lines []string
		for _, l := range strings.Split(v.Error(), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		a.Value = slog.StringValue(strings.Join(lines, "; "))
	}
	return a
}

// run runs the node until a signal on sigs stops it (SIGHUP reloads). It
// writes -h's help to stdout and the logs to stderr.
func run(args []string, getenv func(string) string, sigs <-chan os.Signal, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		writeUsage(stdout)
		return err
	}
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg, err := o.config(logger)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	sec, err := o.security(&cfg)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return protectedMode(err)
	}
	// A SIGTERM or SIGINT during start-up stops the node here, before it
	// binds anything; one during cluster.New waits in sigs for the loop
	// below. A SIGHUP now is dropped: the files were just read.
	for pending := true; pending; {
		select {
		case s := <-sigs:
			if s != syscall.SIGHUP {
				logger.Info("stopping", "signal", s.String(), "started", false)
				return nil
			}
		default:
			pending = false
		}
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
	s := <-sigs
	for s == syscall.SIGHUP {
		sec.reload(n, logger)
		reload()
		s = <-sigs
	}
	logger.Info("stopping", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Close(ctx)
}
