// Command loadgen drives a drl cluster and reports throughput and latency.
//
//	loadgen -mode client -targets 127.0.0.1:7947,127.0.0.1:7957 -duration 10s
//	loadgen -mode embedded -join 127.0.0.1:7946 -expect-members 4 -duration 10s
//
// http POSTs the same checks as JSON to the nodes' HTTP API (-targets are
// HTTP addresses), one per request or -per-call per batch request.
// client checks through package client, as a Go service that does not
// embed drl would: each check goes straight to its key's owner, as the
// ring the client watches says (-owner-routing=false spreads them
// round-robin over the targets instead, and each node forwards the checks
// it does not own). With -per-call above 1 it sends CheckBatch calls of
// its own, round-robin, as a service in another language might. embedded
// starts a node inside this process, joins the cluster and calls
// Node.Check directly, as a Go service that embeds drl would. Given -pids,
// it also reports the CPU time those processes spent per check (from
// /proc/<pid>/stat).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	drlclient "github.com/drlimit/drl/client"
	"github.com/drlimit/drl/cluster"
)

type options struct {
	mode          string
	targets, join string
	tlsCA, token  string
	batching      bool
	ownerRouting  bool
	expect        int
	concurrency   int
	keys          int
	dist          string
	zipfS         float64
	duration      time.Duration
	limit         int64
	window        time.Duration
	hits          int64
	algorithm     string
	batchSize     int
	pids          string
	jsonOut       bool
	quiet         bool
	cpuProfile    string
	perCall       int
	maxInFlight   int
	noDenyCache   bool
	leases        bool
	action        string
	failPolicy    string
	checkTimeout  time.Duration
	h2c           bool
	bindHost      string
}

func main() {
	o, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	rep, err := run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if o.jsonOut {
		json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		rep.print(os.Stdout)
	}
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "client", "client (gRPC calls to -targets), http (HTTP/JSON calls to -targets) or embedded (a node in this process)")
	fs.StringVar(&o.targets, "targets", cluster.DefaultGRPCAddr, "client mode: comma-separated gRPC addresses; http mode: HTTP addresses")
	fs.BoolVar(&o.h2c, "h2c", false, "http mode: HTTP/2 without TLS instead of HTTP/1.1")
	fs.StringVar(&o.join, "join", cluster.DefaultGossipAddr, "embedded mode: comma-separated gossip addresses to join")
	fs.StringVar(&o.bindHost, "bind", "127.0.0.1", "embedded mode: the host the embedded node listens on (gossip and gRPC, port 0)")
	fs.IntVar(&o.expect, "expect-members", 0, "embedded mode: wait until the ring has this many members (0: just joined)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent callers")
	fs.IntVar(&o.keys, "keys", 10_000, "distinct users")
	fs.StringVar(&o.dist, "dist", "uniform", "key distribution: uniform, zipf, or sequential (every key in turn, to fill nodes)")
	fs.Float64Var(&o.zipfS, "zipf-s", 1.1, "zipf exponent (> 1)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
	fs.Int64Var(&o.limit, "limit", 100, "limit per window of every key")
	fs.StringVar(&o.action, "action", "loadgen", "the action of every key (change it to start from fresh buckets)")
	fs.DurationVar(&o.window, "window", time.Minute, "window of every key")
	fs.Int64Var(&o.hits, "hits", 1, "hits per check")
	fs.StringVar(&o.algorithm, "algorithm", "token_bucket", "algorithm")
	fs.IntVar(&o.batchSize, "batch-size", 0, "embedded mode: forwarding batch size; 1 turns batching off")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 0, "embedded mode: frames in flight per owner; client mode with -client-batching: calls in flight per node")
	fs.BoolVar(&o.noDenyCache, "no-deny-cache", false, "embedded mode: turn off answering repeated denials locally")
	fs.BoolVar(&o.leases, "leases", false, "embedded mode: turn on token leases for hot keys")
	fs.StringVar(&o.failPolicy, "fail-policy", "", "what a check answers if its owner is unreachable: local, open or closed (default: the node's)")
	fs.DurationVar(&o.checkTimeout, "check-timeout", 0, "embedded mode: the node's check deadline (default 50ms)")
	fs.StringVar(&o.pids, "pids", "", "comma-separated node PIDs whose CPU time per check to report")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write this process's CPU profile to the file")
	fs.IntVar(&o.perCall, "per-call", 1, "client and http modes: checks per call (more than 1 uses CheckBatch, or /v1/ratelimit:batch)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "client mode: PEM CA of nodes that speak TLS")
	fs.BoolVar(&o.batching, "client-batching", false, "client mode: gather concurrent checks into CheckBatch calls (client.NewBatching)")
	fs.BoolVar(&o.ownerRouting, "owner-routing", true, "client mode, -per-call 1: send each check straight to its key's owner (false: round-robin over -targets)")
	fs.StringVar(&o.token, "token", "", "client mode: bearer token for nodes started with -auth-token-file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.mode != "client" && o.mode != "http" && o.mode != "embedded":
		return o, fmt.Errorf("-mode %q: want client, http or embedded", o.mode)
	case o.dist != "uniform" && o.dist != "zipf" && o.dist != "sequential":
		return o, fmt.Errorf("-dist %q: want uniform, zipf or sequential", o.dist)
	case o.dist == "zipf" && !(o.zipfS > 1):
		return o, fmt.Errorf("-zipf-s %v: must be above 1", o.zipfS)
	case o.concurrency < 1 || o.keys < 1 || o.duration <= 0 || o.perCall < 1:
		return o, errors.New("-concurrency, -keys, -duration and -per-call must be positive")
	}
	if _, err := bucket.ParseAlgorithm(o.algorithm); err != nil {
		return o, err
	}
	if _, err := drl.ParseFailPolicy(o.failPolicy); err != nil {
		return o, err
	}
	return o, nil
}

// checker makes checks for users (indices into the key set): one, or
// several in one call. It returns how many were admitted and how many got
// no decision, and counts admissions per key into perKey.
type checker interface {
	check(ctx context.Context, worker int, users []int, perKey []atomic.Int64) (admitted, failed int)
	forwardedShare() float64 // -1 when unknown
	checksPerRPC() float64   // forwarded checks per Forward call; 0 when unknown
	forwardedChecks() int64  // checks forwarded to another node so far; -1 when unknown
	denyCacheHits() uint64
	fallbacks() uint64
	leaseHits() uint64
	close()
}

func run(ctx context.Context, o options, progress io.Writer) (*report, error) {
	var c checker
	var err error
	switch o.mode {
	case "client":
		c, err = newClient(o)
	case "http":
		c, err = newHTTPClient(o)
	default:
		c, err = newEmbedded(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	defer c.close()

	pids, err := parsePIDs(o.pids)
	if err != nil {
		return nil, err
	}
	before, err := readUsage(pids)
	if err != nil {
		return nil, err
	}
	fwdBefore := c.forwardedChecks()

	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var checks, admitted, failed atomic.Int64
	demand := make([]atomic.Int64, o.keys) // checks per key
	perKey := make([]atomic.Int64, o.keys) // admissions per key
	lat := make([][]time.Duration, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.concurrency {
		wg.Go(func() {
			pick := picker(o, uint64(w))
			samples := make([]time.Duration, 0, 1<<16)
			users := make([]int, o.perCall)
			for runCtx.Err() == nil {
				for i := range users {
					users[i] = pick()
				}
				t0 := time.Now()
				for _, u := range users {
					demand[u].Add(1)
				}
				ok, bad := c.check(ctx, w, users, perKey)
				samples = append(samples, time.Since(t0))
				checks.Add(int64(len(users)))
				admitted.Add(int64(ok))
				failed.Add(int64(bad))
			}
			lat[w] = samples
		})
	}
	if !o.quiet {
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			last := int64(0)
			for {
				select {
				case <-runCtx.Done():
					fmt.Fprintln(progress)
					return
				case <-t.C:
					n := checks.Load()
					fmt.Fprintf(progress, "\r%5.1fs  %8d checks/s  %d errors", time.Since(start).Seconds(), n-last, failed.Load())
					last = n
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, err := readUsage(pids)
	if err != nil {
		return nil, err
	}
	fwdAfter := c.forwardedChecks()

	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	r := &report{
		Mode: o.mode, Concurrency: o.concurrency, Keys: o.keys, Dist: o.dist, Seconds: elapsed.Seconds(),
		Checks: checks.Load(), Errors: failed.Load(),
		ChecksPerSec: float64(checks.Load()) / elapsed.Seconds(),
		P50us:        us(q(0.50)), P90us: us(q(0.90)), P99us: us(q(0.99)), MaxUs: us(q(1)),
		AdmittedShare:   float64(admitted.Load()) / float64(max(checks.Load(), 1)),
		ForwardedShare:  c.forwardedShare(),
		ChecksPerRPC:    c.checksPerRPC(),
		DenyCacheHits:   c.denyCacheHits(),
		Fallbacks:       c.fallbacks(),
		LeaseHits:       c.leaseHits(),
		ErrorSamples:    errorSamples.seen,
		NodeCPUPerCheck: -1,
		SyscallsPerFwd:  -1,
	}
	if fwd := fwdAfter - fwdBefore; fwdBefore >= 0 && len(pids) > 0 && fwd > 0 {
		r.SenderSyscallsPerFwd = float64(after.sender-before.sender) / float64(fwd)
		r.OwnerSyscallsPerFwd = float64(after.owners-before.owners) / float64(fwd)
		r.SyscallsPerFwd = r.SenderSyscallsPerFwd + r.OwnerSyscallsPerFwd
	}
	// What an exact limiter admits when no window ends during the run and
	// nothing refills: min(demand, limit/hits) per key.
	var exact int64
	for i := range demand {
		exact += min(demand[i].Load(), o.limit/o.hits)
		if perKey[i].Load() > o.limit/o.hits {
			r.KeysOverLimit++
		}
	}
	r.ExactAdmitted = exact
	r.Admitted = admitted.Load()
	if len(pids) > 0 && r.Checks > 0 {
		r.NodeCPUPerCheck = us(after.cpu-before.cpu) / float64(r.Checks)
	}
	return r, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// errorSamples keeps the first few distinct error messages for the report.
var errorSamples struct {
	sync.Mutex
	seen []string
}

func noteError(err error) {
	errorSamples.Lock()
	defer errorSamples.Unlock()
	msg := err.Error()
	if len(errorSamples.seen) < 5 && !slices.Contains(errorSamples.seen, msg) {
		errorSamples.seen = append(errorSamples.seen, msg)
	}
}

// sequence hands out key indices in turn across all workers.
var sequence atomic.Int64

// picker returns a function that draws user indices for one worker.
func picker(o options, seed uint64) func() int {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	switch o.dist {
	case "sequential":
		return func() int { return int((sequence.Add(1) - 1) % int64(o.keys)) }
	case "zipf":
		z := rand.NewZipf(rng, o.zipfS, 1, uint64(o.keys-1))
		return func() int { return int(z.Uint64()) }
	}
	return func() int { return rng.IntN(o.keys) }
}

type report struct {
	Mode         string  `json:"mode"`
	Concurrency  int     `json:"concurrency"`
	Keys         int     `json:"keys"`
	Dist         string  `json:"dist"`
	Seconds      float64 `json:"seconds"`
	Checks       int64   `json:"checks"`
	Errors       int64   `json:"errors"`
	ChecksPerSec float64 `json:"checks_per_sec"`
	P50us        float64 `json:"p50_us"`
	P90us        float64 `json:"p90_us"`
	P99us        float64 `json:"p99_us"`
	MaxUs        float64 `json:"max_us"`
	// AdmittedShare is admitted over checks; ForwardedShare is checks sent
	// to another owner over checks (-1 when unknown).
	AdmittedShare  float64  `json:"admitted_share"`
	ForwardedShare float64  `json:"forwarded_share"`
	ChecksPerRPC   float64  `json:"checks_per_forward_rpc,omitempty"`
	ErrorSamples   []string `json:"error_samples,omitempty"`
	Admitted       int64    `json:"admitted"`
	// ExactAdmitted is min(demand, limit) summed over keys: what an exact
	// limiter admits when the run is shorter than the window and nothing
	// refills (fixed_window, sliding_log; token buckets add their refill).
	ExactAdmitted int64 `json:"exact_admitted"`
	KeysOverLimit int64 `json:"keys_over_limit"`
	// DenyCacheHits and Fallbacks count checks answered without their owner
	// (embedded mode): from an earlier denial, or by the fail policy.
	DenyCacheHits uint64 `json:"deny_cache_hits,omitempty"`
	LeaseHits     uint64 `json:"lease_hits,omitempty"`
	Fallbacks     uint64 `json:"fallbacks,omitempty"`
	// NodeCPUPerCheck is the -pids processes' CPU time per check; -1 without
	// -pids.
	NodeCPUPerCheck float64 `json:"node_cpu_us_per_check"`
	// SyscallsPerFwd is the read and write syscalls (syscr + syscw) of
	// this process and the -pids processes over the run, divided by the
	// checks forwarded between nodes; -1 when unknown (client mode, or no
	// -pids).
	SyscallsPerFwd float64 `json:"syscalls_per_forwarded_check"`
	// SenderSyscallsPerFwd and OwnerSyscallsPerFwd split SyscallsPerFwd
	// between this process and the -pids processes.
	SenderSyscallsPerFwd float64 `json:"sender_syscalls_per_forwarded_check,omitempty"`
	OwnerSyscallsPerFwd  float64 `json:"owner_syscalls_per_forwarded_check,omitempty"`
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "mode %s, %d callers, %d %s keys, %.1fs\n", r.Mode, r.Concurrency, r.Keys, r.Dist, r.Seconds)
	fmt.Fprintf(w, "checks      %d (%.0f/s), %d errors\n", r.Checks, r.ChecksPerSec, r.Errors)
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	fmt.Fprintf(w, "latency     p50 %.0fµs  p90 %.0fµs  p99 %.0fµs  max %.0fµs\n", r.P50us, r.P90us, r.P99us, r.MaxUs)
	fmt.Fprintf(w, "admitted    %.1f%% (%d; an exact limiter: %d; keys over their limit: %d)\n",
		100*r.AdmittedShare, r.Admitted, r.ExactAdmitted, r.KeysOverLimit)
	if r.Fallbacks > 0 {
		fmt.Fprintf(w, "fallbacks   %d checks answered by the fail policy (owner too slow or unreachable)\n", r.Fallbacks)
	}
	if r.LeaseHits > 0 {
		fmt.Fprintf(w, "leases      %d checks answered from token leases\n", r.LeaseHits)
	}
	if r.DenyCacheHits > 0 {
		fmt.Fprintf(w, "deny cache  %d checks answered without a hop\n", r.DenyCacheHits)
	}
	if r.ForwardedShare >= 0 {
		fmt.Fprintf(w, "forwarded   %.1f%%", 100*r.ForwardedShare)
		if r.ChecksPerRPC > 0 {
			fmt.Fprintf(w, ", %.1f checks per Forward call", r.ChecksPerRPC)
		}
		fmt.Fprintln(w)
	}
	if r.NodeCPUPerCheck >= 0 {
		fmt.Fprintf(w, "node CPU    %.1fµs per check\n", r.NodeCPUPerCheck)
	}
	if r.SyscallsPerFwd >= 0 {
		fmt.Fprintf(w, "syscalls    %.2f reads and writes per forwarded check: sender %.2f, owners %.2f\n",
			r.SyscallsPerFwd, r.SenderSyscallsPerFwd, r.OwnerSyscallsPerFwd)
	}
}

// client drives the cluster over gRPC.
type client struct {
	conns     []*grpc.ClientConn
	clients   []drlv1.RateLimiterClient
	drl       *drlclient.Client // for -per-call 1, with req and policy
	req       bucket.Request
	policy    drl.FailPolicy
	users     []string
	o         options
	owners    []string // owner of each user, as the first target sees it
	targets   []string // member name of each target
	forwarded atomic.Int64
	total     atomic.Int64
}

func newClient(o options) (*client, error) {
	c := &client{o: o, users: userNames(o.keys)}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if o.tlsCA != "" {
		cfg, err := drlclient.TLSFromFiles(o.tlsCA, "", "")
		if err != nil {
			return nil, err
		}
		opts = []grpc.DialOption{drlclient.WithTLS(cfg)}
	}
	if o.token != "" {
		opts = append(opts, drlclient.WithToken(o.token))
	}
	var addrs []string
	for _, addr := range strings.Split(o.targets, ",") {
		addrs = append(addrs, strings.TrimSpace(addr))
	}
	if o.perCall == 1 {
		alg, err := bucket.ParseAlgorithm(o.algorithm)
		if err != nil {
			c.close()
			return nil, err
		}
		if c.policy, err = drl.ParseFailPolicy(o.failPolicy); err != nil {
			c.close()
			return nil, err
		}
		c.req = bucket.Request{Action: o.action, Limit: o.limit, Window: o.window, Hits: o.hits, Algorithm: alg}
		if !o.ownerRouting {
			opts = append(opts, drlclient.WithoutOwnerRouting())
		}
		if o.batching {
			c.drl, err = drlclient.NewBatching(addrs, drlclient.Batching{MaxInFlight: o.maxInFlight}, opts...)
		} else {
			c.drl, err = drlclient.New(addrs, opts...)
		}
		if err != nil {
			c.close()
			return nil, err
		}
		// Fail now, not per check, if the targets refuse us (no token).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.drl.Members(ctx); err != nil {
			c.close()
			return nil, fmt.Errorf("asking a target who it is: %w", err)
		}
		// Which node each check reaches is the client's business: the
		// forwarded share stays unknown.
		return c, nil
	}
	for _, addr := range addrs {
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("client for %s: %w", addr, err)
		}
		c.conns = append(c.conns, conn)
		c.clients = append(c.clients, drlv1.NewRateLimiterClient(conn))
	}
	// Learn each target's name and each key's owner, to count forwarding.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cl := range c.clients {
		m, err := cl.Members(ctx, &drlv1.MembersRequest{})
		if err != nil {
			c.close()
			return nil, fmt.Errorf("asking a target who it is: %w", err)
		}
		c.targets = append(c.targets, m.GetSelf())
	}
	if o.keys > maxOwnerLookups {
		return c, nil // too many keys to ask about; the forwarded share stays unknown
	}
	c.owners = make([]string, o.keys)
	for i, u := range c.users {
		resp, err := c.clients[0].Owner(ctx, &drlv1.OwnerRequest{UserId: u, Action: o.action})
		if err != nil {
			c.close()
			return nil, fmt.Errorf("owner of %s: %w", u, err)
		}
		c.owners[i] = resp.GetOwner().GetName()
	}
	return c, nil
}

// maxOwnerLookups bounds the Owner calls client mode makes at start to
// learn which checks the cluster will forward.
const maxOwnerLookups = 100_000

func (c *client) check(ctx context.Context, worker int, users []int, perKey []atomic.Int64) (admitted, failed int) {
	if c.drl != nil {
		return c.checkOne(ctx, users[0], perKey)
	}
	t := (worker + int(c.total.Add(int64(len(users))))) % len(c.clients)
	hits := c.o.hits
	reqs := make([]*drlv1.CheckRequest, len(users))
	for i, u := range users {
		if c.owners != nil && c.owners[u] != c.targets[t] {
			c.forwarded.Add(1)
		}
		reqs[i] = &drlv1.CheckRequest{UserId: c.users[u], Action: c.o.action,
			Limit: c.o.limit, Window: durationpb.New(c.o.window), Hits: &hits, Algorithm: c.o.algorithm,
			FailPolicy: c.o.failPolicy}
	}
	resp, err := c.clients[t].CheckBatch(ctx, &drlv1.CheckBatchRequest{Checks: reqs})
	if err != nil {
		noteError(err)
		return 0, len(reqs)
	}
	for i, r := range resp.GetResults() {
		if e := r.GetError(); e != nil {
			noteError(errors.New(e.GetMessage()))
			failed++
		} else if r.GetDecision().GetAllowed() {
			perKey[users[i]].Add(1)
			admitted++
		}
	}
	return admitted, failed
}

// checkOne makes one check through package client.
func (c *client) checkOne(ctx context.Context, u int, perKey []atomic.Int64) (admitted, failed int) {
	c.total.Add(1)
	req := c.req
	req.UserID = c.users[u]
	d, err := c.drl.CheckWith(ctx, req, drl.CheckOptions{FailPolicy: c.policy})
	switch {
	case err != nil:
		noteError(err)
		return 0, 1
	case d.Allowed:
		perKey[u].Add(1)
		return 1, 0
	}
	return 0, 0
}

func (c *client) forwardedShare() float64 {
	if c.owners == nil {
		return -1
	}
	return float64(c.forwarded.Load()) / float64(max(c.total.Load(), 1))
}

func (c *client) checksPerRPC() float64 { return 0 }

func (c *client) forwardedChecks() int64 { return -1 }

func (c *client) denyCacheHits() uint64 { return 0 }

func (c *client) fallbacks() uint64 { return 0 }

func (c *client) leaseHits() uint64 { return 0 }

func (c *client) close() {
	for _, conn := range c.conns {
		conn.Close()
	}
	if c.drl != nil {
		c.drl.Close()
	}
}

// embedded runs a node in this process.
type embedded struct {
	node   *cluster.Node
	users  []string
	req    bucket.Request
	policy drl.FailPolicy
}

func newEmbedded(ctx context.Context, o options) (*embedded, error) {
	cfg := cluster.Config{
		Name:       "loadgen-" + strconv.Itoa(os.Getpid()),
		GossipAddr: net.JoinHostPort(o.bindHost, "0"), GRPCAddr: net.JoinHostPort(o.bindHost, "0"),
		Join:   strings.Split(o.join, ","),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	cfg.Peer.MaxBatch, cfg.Peer.MaxInFlight = o.batchSize, o.maxInFlight
	cfg.NoDenyCache = o.noDenyCache
	cfg.Leases = o.leases
	cfg.CheckTimeout = o.checkTimeout
	n, err := cluster.New(cfg)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for !n.Ready() || (o.expect > 0 && n.Stats().Members < o.expect) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.Close(context.Background())
			return nil, fmt.Errorf("the embedded node did not join (%d members in its ring)", n.Stats().Members)
		}
		time.Sleep(50 * time.Millisecond)
	}
	alg, _ := bucket.ParseAlgorithm(o.algorithm)
	policy, _ := drl.ParseFailPolicy(o.failPolicy)
	return &embedded{node: n, users: userNames(o.keys),
		policy: policy,
		req:    bucket.Request{Action: o.action, Limit: o.limit, Window: o.window, Hits: o.hits, Algorithm: alg}}, nil
}

func (e *embedded) check(ctx context.Context, _ int, users []int, perKey []atomic.Int64) (admitted, failed int) {
	for _, u := range users {
		req := e.req
		req.UserID = e.users[u]
		d, err := e.node.CheckWith(ctx, req, drl.CheckOptions{FailPolicy: e.policy})
		switch {
		case err != nil:
			noteError(err)
			failed++
		case d.Allowed:
			perKey[u].Add(1)
			admitted++
		}
	}
	return admitted, failed
}

func (e *embedded) forwardedShare() float64 {
	st := e.node.Stats()
	// Every check was forwarded, decided here as the owner, answered from
	// the deny cache, or answered by a fail policy.
	total := st.Forwarded + st.Local + st.DenyCacheHits + st.LeaseHits + st.FallbackLocal + st.FallbackOpen + st.FallbackClosed
	return float64(st.Forwarded) / float64(max(total, 1))
}

func (e *embedded) denyCacheHits() uint64 { return e.node.Stats().DenyCacheHits }

func (e *embedded) leaseHits() uint64 { return e.node.Stats().LeaseHits }

func (e *embedded) fallbacks() uint64 {
	st := e.node.Stats()
	return st.FallbackLocal + st.FallbackOpen + st.FallbackClosed
}

func (e *embedded) forwardedChecks() int64 { return int64(e.node.Stats().Forwarded) }

func (e *embedded) checksPerRPC() float64 {
	st := e.node.Stats()
	return float64(st.Forwarded) / float64(max(st.ForwardRPCs, 1))
}

func (e *embedded) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.node.Close(ctx)
}

func userNames(n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	return users
}
