// Command drlctl asks a drl cluster questions and gives it orders from a
// shell, over the nodes' gRPC API:
//
//	drlctl -addr 127.0.0.1:7947 check -user u1 -action login -limit 5 -window 1m
//	drlctl members
//	drlctl owner -user u1 -action login
//	drlctl top -n 10          # most denied keys, summed over every member
//	drlctl reset -user u1 -action login
//	drlctl -addr 127.0.0.1:7947,127.0.0.1:7957 wait   # until both nodes have both in their rings
//
// -addr takes several comma-separated nodes (DRL_ADDR is its twin); any
// node answers. -json prints JSON, as the nodes' HTTP API answers, instead
// of text. The flags may come before or after the command ("drlctl
// members -json"). -h lists the flags; "drlctl check -h" a command's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/client"
	"github.com/drlimit/drl/transport"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Getenv)
	if code := exitCode(err); code != 0 {
		fmt.Fprintln(os.Stderr, "drlctl:", err)
		os.Exit(code)
	}
}

// errUsage marks a bad command line.
var errUsage = errors.New("usage")

// exitCode maps run's error to the exit status: 0 for success and for -h,
// 2 for a bad command line, 1 for any other failure.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

// Default deadlines of a command, when -timeout is 0.
const (
	defaultTimeout = 5 * time.Second
	waitTimeout    = 30 * time.Second
)

// command is one of drlctl's commands: define adds its flags to fs and
// returns what runs it once they are parsed.
type command struct {
	name, args, about string
	define            func(fs *flag.FlagSet) func(g globals) error
	operands          int // positional arguments after the flags
}

var commands = []command{
	{"check", "-user U -action A -limit N -window D [flags]", "spend hits on a key at its owner and print the decision", defineCheck, 0},
	{"members", "", "list the members as one node sees them", defineMembers, 0},
	{"owner", "-user U -action A", "name the member that owns a key", defineOwner, 0},
	{"top", "[-n 10]", "the keys denied most often lately, summed over every member", defineTop, 0},
	{"reset", "-user U -action A", "drop a key's bucket on every member", defineReset, 0},
	{"forget", "NAME", "stop counting a failed member toward the cluster's size, on every live member", defineForget, 1},
	{"wait", "[-members N]", "wait until every -addr node sees N members alive in its ring (default: as many as -addr names)", defineWait, 0},
}

type globals struct {
	addrs    []string
	operands []string // the command's arguments that are not flags
	json     bool
	timeout  time.Duration
	out      io.Writer
	dialOpts []grpc.DialOption
	// client and ctx are the cluster and the command's deadline, made in
	// run for every command (the client dials lazily).
	client *client.Client
	ctx    context.Context
}

// globalFlags defines the flags every command takes, before or after
// its name.
func globalFlags(getenv func(string) string) (*flag.FlagSet, *globalValues) {
	fs := flag.NewFlagSet("drlctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defaultAddr := getenv("DRL_ADDR")
	if defaultAddr == "" {
		defaultAddr = "127.0.0.1:7947"
	}
	v := &globalValues{}
	fs.StringVar(&v.addr, "addr", defaultAddr, "comma-separated gRPC addresses of nodes, any of which answers; its twin is $DRL_ADDR")
	fs.BoolVar(&v.json, "json", false, "print JSON, with the field names of the nodes' HTTP API")
	fs.DurationVar(&v.timeout, "timeout", 0, "deadline of the whole command; 0 means 5s, or 30s for wait")
	fs.StringVar(&v.token, "token", "", "bearer token for nodes started with -auth-token-file (checks) or -admin-token-file (reset, forget, top, and checks); its twin is $DRL_TOKEN")
	fs.StringVar(&v.tlsCA, "tls-ca", "", "PEM CA to verify the nodes with: speak TLS")
	fs.StringVar(&v.tlsCert, "tls-cert", "", "PEM client certificate to present, with -tls-key")
	fs.StringVar(&v.tlsKey, "tls-key", "", "PEM key of -tls-cert")
	return fs, v
}

type globalValues struct {
	addr, token, tlsCA, tlsCert, tlsKey string
	json                                bool
	timeout                             time.Duration
}

// usage is drlctl -h.
func usage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("usage: drlctl [flags] command [command flags] (flags may also follow the command)\n\n" +
		"Asks a drl cluster questions and gives it orders, over the nodes' gRPC API.\n\nflags:\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	b.WriteString("\ncommands (drlctl command -h lists a command's flags):\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, c.args, c.about)
	}
	tw.Flush()
	return b.String()
}

// commandUsage is drlctl command -h.
func commandUsage(c command, fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: drlctl [flags] %s %s\n\n%s.\n", c.name, c.args, strings.ToUpper(c.about[:1])+c.about[1:])
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nflags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	b.WriteString("\n(drlctl -h lists the flags every command takes, before or after its name.)\n")
	return b.String()
}

func run(args []string, out io.Writer, getenv func(string) string) error {
	fs, v := globalFlags(getenv)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		io.WriteString(out, usage(fs))
		return err
	} else if err != nil {
		return fmt.Errorf("%w: %v (drlctl -h lists the flags)", errUsage, err)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no command (drlctl -h lists them)", errUsage)
	}
	name := fs.Arg(0)
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return fmt.Errorf("%w: unknown command %q (drlctl -h lists them)", errUsage, name)
	}
	c := commands[i]
	cfs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	cfs.Usage = func() {}
	runCommand := c.define(cfs)
	help := commandUsage(c, cfs)
	// The flags that go before the command go after it too: "drlctl
	// members -json" is what people type.
	fs.VisitAll(func(f *flag.Flag) { cfs.Var(f.Value, f.Name, f.Usage) })
	operands, err := parseInterspersed(cfs, fs.Args()[1:])
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(out, help)
		return err
	} else if err != nil {
		return fmt.Errorf("%w: %s: %v (drlctl %s -h lists its flags)", errUsage, name, err, name)
	}
	if len(operands) > c.operands {
		return fmt.Errorf("%w: %s: unexpected arguments %q", errUsage, name, operands[c.operands:])
	}

	// Each command makes a call or two: watching the ring to route checks
	// by owner would cost more than it saves.
	g := globals{json: v.json, timeout: v.timeout, out: out, dialOpts: []grpc.DialOption{client.WithoutOwnerRouting()}}
	if g.timeout <= 0 {
		g.timeout = defaultTimeout
		if name == "wait" {
			g.timeout = waitTimeout
		}
	}
	if v.token == "" {
		v.token = getenv("DRL_TOKEN")
	}
	if v.token != "" {
		g.dialOpts = append(g.dialOpts, client.WithToken(v.token))
	}
	if v.tlsCA != "" {
		cfg, err := client.TLSFromFiles(v.tlsCA, v.tlsCert, v.tlsKey)
		if err != nil {
			return err
		}
		g.dialOpts = append(g.dialOpts, client.WithTLS(cfg))
	}
	for _, a := range strings.Split(v.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			g.addrs = append(g.addrs, a)
		}
	}
	if len(g.addrs) == 0 {
		return fmt.Errorf("%w: -addr names no node", errUsage)
	}
	cl, err := client.New(g.addrs, g.dialOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	g.client, g.ctx = cl, ctx
	g.operands = operands
	return explain(runCommand(g), g.addrs)
}

// parseInterspersed parses args with fs, flags and operands in any order
// ("forget b -json" as well as "forget -json b"), and returns the
// operands; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(operands, rest...), nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// explain adds a hint to an error whose cause a person could not guess:
// a gRPC client that reached an HTTP/1 server reads its answer as an
// HTTP/2 frame and fails with "http2: frame too large".
func explain(err error, addrs []string) error {
	if err == nil {
		return nil
	}
	if msg := err.Error(); strings.Contains(msg, "frame too large") || strings.Contains(msg, "server preface") ||
		strings.Contains(msg, "unexpected content-type") || strings.Contains(msg, "unexpected HTTP status code") {
		return fmt.Errorf("%s does not answer gRPC: is it a node's HTTP port? -addr takes the gRPC port (-grpc-addr, by default 127.0.0.1:7947)",
			strings.Join(addrs, ","))
	}
	return err
}

// print writes v as JSON, or text as it is.
func (g globals) print(v any, text func(w io.Writer)) error {
	if g.json {
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

// keyFlags defines -user and -action, both required; check reports a
// missing one.
func keyFlags(fs *flag.FlagSet) (check func() error, user, action *string) {
	user = fs.String("user", "", "user id (required)")
	action = fs.String("action", "", "action (required)")
	return func() error {
		if *user == "" || *action == "" {
			return fmt.Errorf("%w: %s needs -user and -action", errUsage, fs.Name())
		}
		return nil
	}, user, action
}

// algorithmUsage lists the algorithms, naming the default (the zero
// Algorithm).
func algorithmUsage() string {
	var names []string
	for _, a := range bucket.Algorithms() {
		names = append(names, a.String())
	}
	return fmt.Sprintf("%s; empty means %s", strings.Join(names, ", "), bucket.Algorithm(0))
}

// decisionJSON is a decision as POST /v1/ratelimit answers it.
type decisionJSON struct {
	Allowed        bool   `json:"allowed"`
	Limit          int64  `json:"limit"`
	Remaining      int64  `json:"remaining"`
	ResetAfter     string `json:"reset_after"`
	RetryAfter     string `json:"retry_after"`
	Shadowed       bool   `json:"shadowed,omitempty"`
	DecidedBy      string `json:"decided_by,omitempty"`
	FallbackReason string `json:"fallback_reason,omitempty"`
}

// nonNil is s, or an empty list for nil: the HTTP API answers [] where
// encoding/json would write null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// windowFlag reads -window as the HTTP API reads "window": seconds or a
// duration.
type windowFlag time.Duration

func (w *windowFlag) String() string { return time.Duration(*w).String() }

func (w *windowFlag) Set(s string) error {
	d, err := transport.ParseWindow(s)
	*w = windowFlag(d)
	return err
}

func defineCheck(fs *flag.FlagSet) func(g globals) error {
	needKey, user, action := keyFlags(fs)
	limit := fs.Int64("limit", 0, "hits per window (required)")
	window := new(windowFlag)
	fs.Var(window, "window", "the window: seconds (60) or a duration (1m) (required)")
	hits := fs.Int64("hits", 1, "cost of this check; 0 peeks")
	burst := fs.Int64("burst", 0, "bucket capacity (token_bucket, gcra); 0 means limit")
	algorithm := fs.String("algorithm", "", algorithmUsage())
	dryRun := fs.Bool("dry-run", false, "decide without spending")
	shadow := fs.Bool("shadow", false, "shadow mode: admit when over the limit, and say so")
	return func(g globals) error {
		if err := needKey(); err != nil {
			return err
		}
		alg, err := bucket.ParseAlgorithm(*algorithm)
		if err != nil {
			return err
		}
		req := bucket.Request{UserID: *user, Action: *action, Limit: *limit, Window: time.Duration(*window), Hits: *hits, Burst: *burst,
			Algorithm: alg, DryRun: *dryRun}
		d, err := g.client.CheckWith(g.ctx, req, drl.CheckOptions{Shadow: *shadow})
		if err != nil {
			return err
		}
		return g.print(decisionJSON{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining,
			ResetAfter: transport.FormatDuration(d.ResetAfter), RetryAfter: transport.FormatDuration(d.RetryAfter), Shadowed: d.Shadowed,
			DecidedBy: d.DecidedBy.String(), FallbackReason: d.FallbackReason.String()}, func(w io.Writer) {
			verdict := "allowed"
			switch {
			case d.Shadowed:
				verdict = "allowed (shadow mode; over the limit)"
			case !d.Allowed:
				verdict = "denied"
			}
			fmt.Fprintf(w, "%s\tremaining %d of %d\treset in %v", verdict, d.Remaining, d.Limit, d.ResetAfter)
			if !d.Allowed {
				fmt.Fprintf(w, "\tretry in %v", d.RetryAfter)
			}
			if d.DecidedBy != bucket.DecidedByUnknown {
				fmt.Fprintf(w, "\tdecided by %v", d.DecidedBy)
			}
			if d.FallbackReason != bucket.FallbackNone {
				fmt.Fprintf(w, " (%v)", d.FallbackReason)
			}
			fmt.Fprintln(w)
		})
	}
}

func defineMembers(*flag.FlagSet) func(g globals) error {
	return func(g globals) error {
		ms, err := g.client.Members(g.ctx)
		if err != nil {
			return err
		}
		self, list, q := ms.Self, ms.Members, ms.Quorum
		// The same fields as GET /v1/members.
		out := struct {
			Self    string       `json:"self"`
			Members []drl.Member `json:"members"`
			Quorum  drl.Quorum   `json:"quorum"`
		}{self, nonNil(list), q}
		out.Quorum.Failed = nonNil(q.Failed)
		return g.print(out, func(w io.Writer) {
			fmt.Fprintln(w, "NAME\tSTATE\tIN RING\tGRPC\tHTTP\tGOSSIP")
			for _, m := range list {
				fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\t%s\n", m.Name, m.State, m.InRing, m.GRPCAddr, m.HTTPAddr, m.GossipAddr)
			}
			majority := "a majority"
			if !q.Majority {
				majority = "NO majority: it answers every check by its fail policy"
			}
			fmt.Fprintf(w, "(as %s sees it: %d of %d members up, %s", self, q.Alive, q.Size, majority)
			if len(q.Failed) > 0 {
				fmt.Fprintf(w, "; failed lately: %s", strings.Join(q.Failed, ", "))
			}
			fmt.Fprintln(w, ")")
		})
	}
}

func defineOwner(fs *flag.FlagSet) func(g globals) error {
	needKey, user, action := keyFlags(fs)
	return func(g globals) error {
		if err := needKey(); err != nil {
			return err
		}
		o, err := g.client.Owner(g.ctx, *user, *action)
		if err != nil {
			return err
		}
		m, partition := o.Member, o.Partition
		// The same fields as GET /v1/owner.
		out := struct {
			Owner     drl.Member `json:"owner"`
			Partition int        `json:"partition"`
		}{m, partition}
		return g.print(out, func(w io.Writer) {
			fmt.Fprintf(w, "%s\t%s\tpartition %d\n", m.Name, m.GRPCAddr, partition)
		})
	}
}

func defineReset(fs *flag.FlagSet) func(g globals) error {
	needKey, user, action := keyFlags(fs)
	return func(g globals) error {
		if err := needKey(); err != nil {
			return err
		}
		r, err := g.client.Reset(g.ctx, *user, *action)
		if err != nil {
			return err
		}
		dropped, confirmed := r.Dropped, r.ConfirmedBy
		// The same fields as POST /v1/reset.
		out := struct {
			Dropped int      `json:"dropped"`
			Members []string `json:"members"`
		}{dropped, nonNil(confirmed)}
		return g.print(out, func(w io.Writer) {
			fmt.Fprintf(w, "reset: %d live bucket(s) dropped; confirmed by %s\n", dropped, strings.Join(confirmed, ", "))
		})
	}
}

// defineForget asks every live member to stop counting a failed member:
// each node keeps its own count of the cluster.
func defineForget(fs *flag.FlagSet) func(g globals) error {
	return func(g globals) error {
		if len(g.operands) != 1 || g.operands[0] == "" {
			return fmt.Errorf("%w: forget: name one failed member", errUsage)
		}
		name := g.operands[0]
		view, err := g.client.Members(g.ctx)
		if err != nil {
			return err
		}
		ms := view.Members
		var forgot, counted, failed []string
		for _, m := range ms {
			if m.State != "alive" {
				continue
			}
			mc, err := client.New([]string{m.GRPCAddr}, g.dialOpts...)
			if err == nil {
				err = mc.Forget(g.ctx, name)
				mc.Close()
			}
			switch {
			case err == nil:
				forgot = append(forgot, m.Name)
			case errors.Is(err, drl.ErrNotFound):
				counted = append(counted, m.Name)
			default:
				failed = append(failed, m.Name)
			}
		}
		out := struct {
			Forgotten   []string `json:"forgotten_by"`
			NotCounting []string `json:"not_counting"`
			Unreachable []string `json:"unreachable"`
		}{nonNil(forgot), nonNil(counted), nonNil(failed)}
		if err := g.print(out, func(w io.Writer) {
			if len(forgot) > 0 { // else the error says so
				fmt.Fprintf(w, "%s forgotten by: %s\n", name, strings.Join(forgot, ", "))
			}
			if len(counted) > 0 {
				fmt.Fprintf(w, "not counted as failed by: %s\n", strings.Join(counted, ", "))
			}
			if len(failed) > 0 {
				fmt.Fprintf(w, "unreachable: %s\n", strings.Join(failed, ", "))
			}
		}); err != nil {
			return err
		}
		if len(forgot) == 0 {
			return fmt.Errorf("forget: no member counts %q as failed", name)
		}
		return nil
	}
}

// defineTop asks every member for its most denied keys (each counts the
// checks that entered through it) and sums them.
func defineTop(fs *flag.FlagSet) func(g globals) error {
	n := fs.Int("n", 10, "how many keys")
	return func(g globals) error {
		if *n < 1 {
			return fmt.Errorf("%w: top: -n %d: want 1 or more", errUsage, *n)
		}
		view, err := g.client.Members(g.ctx)
		if err != nil {
			return err
		}
		ms := view.Members
		sums := map[[2]string]*drl.DeniedKey{}
		var asked, failed []string
		for _, m := range ms {
			if m.State != "alive" {
				continue
			}
			mc, err := client.New([]string{m.GRPCAddr}, g.dialOpts...)
			if err == nil {
				var top drl.TopDenied
				// Every member's list is asked for more than n: a key can be
				// near the top of the sum without topping any one member.
				top, err = mc.TopDenied(g.ctx, 4**n)
				mc.Close()
				for _, k := range top.Keys {
					e := sums[[2]string{k.UserID, k.Action}]
					if e == nil {
						e = &drl.DeniedKey{UserID: k.UserID, Action: k.Action}
						sums[[2]string{k.UserID, k.Action}] = e
					}
					e.Denied += k.Denied
					e.Error += k.Error
				}
			}
			if err != nil {
				failed = append(failed, m.Name)
				continue
			}
			asked = append(asked, m.Name)
		}
		list := make([]drl.DeniedKey, 0, len(sums))
		for _, e := range sums {
			list = append(list, *e)
		}
		slices.SortFunc(list, func(a, b drl.DeniedKey) int {
			if a.Denied != b.Denied {
				if a.Denied > b.Denied {
					return -1
				}
				return 1
			}
			return strings.Compare(a.UserID+"\x00"+a.Action, b.UserID+"\x00"+b.Action)
		})
		list = list[:min(*n, len(list))]
		// GET /v1/topdenied's keys, summed over the members.
		out := struct {
			Keys        []drl.DeniedKey `json:"keys"`
			Members     []string        `json:"members"`
			Unreachable []string        `json:"unreachable"`
		}{list, nonNil(asked), nonNil(failed)}
		return g.print(out, func(w io.Writer) {
			fmt.Fprintln(w, "USER\tACTION\tDENIED\t±")
			for _, e := range list {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", e.UserID, e.Action, e.Denied, e.Error)
			}
			fmt.Fprintf(w, "(summed over %s", strings.Join(asked, ", "))
			if len(failed) > 0 {
				fmt.Fprintf(w, "; unreachable: %s", strings.Join(failed, ", "))
			}
			fmt.Fprintln(w, ")")
		})
	}
}
