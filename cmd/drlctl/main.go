// Command drlctl asks a drl cluster questions and gives it orders from a
// shell, over the nodes' gRPC API:
//
//	drlctl -addr 127.0.0.1:7947 check -user u1 -action login -limit 5 -window 1m
//	drlctl members
//	drlctl owner -user u1 -action login
//	drlctl top -n 10          # most denied keys, summed over every member
//	drlctl reset -user u1 -action login
//
// -addr takes several comma-separated nodes (DRL_ADDR is its twin); any
// node answers. -json prints JSON instead of text.
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
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "drlctl:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: drlctl [-addr nodes] [-json] [-timeout d] [-token t] [-tls-ca f [-tls-cert f -tls-key f]] command [flags]

commands:
  check   -user U -action A -limit N -window D [-hits H] [-algorithm name] [-burst B] [-dry-run] [-shadow]
  members
  owner   -user U -action A
  top     [-n 10]     the keys denied most often lately, summed over every member
  reset   -user U -action A`

type globals struct {
	addrs    []string
	json     bool
	timeout  time.Duration
	out      io.Writer
	dialOpts []grpc.DialOption
	// client and ctx are the cluster and the command's deadline, made in
	// run for every command (the client dials lazily).
	client *client.Client
	ctx    context.Context
}

func run(args []string, out io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("drlctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "", "comma-separated gRPC addresses of nodes (default $DRL_ADDR, else 127.0.0.1:7947)")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of the whole command")
	token := fs.String("token", "", "bearer token for nodes started with -auth-token-file (default $DRL_TOKEN)")
	tlsCA := fs.String("tls-ca", "", "PEM CA to verify the nodes with: speak TLS")
	tlsCert := fs.String("tls-cert", "", "PEM client certificate to present, with -tls-key")
	tlsKey := fs.String("tls-key", "", "PEM key of -tls-cert")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v\n%s", errUsage, err, usage)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage)
	}
	if *addr == "" {
		*addr = getenv("DRL_ADDR")
	}
	if *addr == "" {
		*addr = "127.0.0.1:7947"
	}
	g := globals{json: *asJSON, timeout: *timeout, out: out}
	if *token == "" {
		*token = getenv("DRL_TOKEN")
	}
	if *token != "" {
		g.dialOpts = append(g.dialOpts, client.WithToken(*token))
	}
	if *tlsCA != "" {
		cfg, err := client.TLSFromFiles(*tlsCA, *tlsCert, *tlsKey)
		if err != nil {
			return err
		}
		g.dialOpts = append(g.dialOpts, client.WithTLS(cfg))
	}
	for _, a := range strings.Split(*addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			g.addrs = append(g.addrs, a)
		}
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	commands := map[string]func(globals, []string) error{
		"check": check, "members": members, "owner": owner, "top": top, "reset": reset,
	}
	f, ok := commands[cmd]
	if !ok {
		return fmt.Errorf("%w: unknown command %q\n%s", errUsage, cmd, usage)
	}
	c, err := client.New(g.addrs, g.dialOpts...)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	g.client, g.ctx = c, ctx
	return f(g, rest)
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

// keyFlags parses -user and -action, both required.
func keyFlags(name string, args []string, more func(fs *flag.FlagSet)) (user, action string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&user, "user", "", "user id")
	fs.StringVar(&action, "action", "", "action")
	if more != nil {
		more(fs)
	}
	if err := fs.Parse(args); err != nil {
		return "", "", fmt.Errorf("%w: %s: %v", errUsage, name, err)
	}
	if fs.NArg() > 0 {
		return "", "", fmt.Errorf("%w: %s: unexpected arguments %q", errUsage, name, fs.Args())
	}
	if user == "" || action == "" {
		return "", "", fmt.Errorf("%w: %s needs -user and -action", errUsage, name)
	}
	return user, action, nil
}

func check(g globals, args []string) error {
	var (
		limit, hits, burst int64
		window             time.Duration
		algorithm          string
		dryRun, shadow     bool
	)
	user, action, err := keyFlags("check", args, func(fs *flag.FlagSet) {
		fs.Int64Var(&limit, "limit", 0, "hits per window")
		fs.DurationVar(&window, "window", 0, "window")
		fs.Int64Var(&hits, "hits", 1, "cost of this check; 0 peeks")
		fs.Int64Var(&burst, "burst", 0, "bucket capacity (token_bucket, gcra); 0 means limit")
		fs.StringVar(&algorithm, "algorithm", "", "token_bucket (default), gcra, sliding_window, fixed_window or sliding_log")
		fs.BoolVar(&dryRun, "dry-run", false, "decide without spending")
		fs.BoolVar(&shadow, "shadow", false, "shadow mode: admit when over the limit, and say so")
	})
	if err != nil {
		return err
	}
	alg, err := bucket.ParseAlgorithm(algorithm)
	if err != nil {
		return err
	}
	c, ctx := g.client, g.ctx
	req := bucket.Request{UserID: user, Action: action, Limit: limit, Window: window, Hits: hits, Burst: burst,
		Algorithm: alg, DryRun: dryRun}
	d, err := c.CheckWith(ctx, req, drl.CheckOptions{Shadow: shadow})
	if err != nil {
		return err
	}
	return g.print(map[string]any{"allowed": d.Allowed, "limit": d.Limit, "remaining": d.Remaining,
		"reset_after": d.ResetAfter.String(), "retry_after": d.RetryAfter.String(), "shadowed": d.Shadowed}, func(w io.Writer) {
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
		fmt.Fprintln(w)
	})
}

func members(g globals, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: members takes no arguments", errUsage)
	}
	c, ctx := g.client, g.ctx
	self, ms, err := c.Members(ctx)
	if err != nil {
		return err
	}
	type member struct {
		Name, State, GRPC, HTTP, Gossip string
		InRing                          bool
	}
	list := make([]member, len(ms))
	for i, m := range ms {
		list[i] = member{m.GetName(), m.GetState(), m.GetGrpcAddr(), m.GetHttpAddr(), m.GetGossipAddr(), m.GetInRing()}
	}
	return g.print(map[string]any{"answered_by": self, "members": list}, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tSTATE\tIN RING\tGRPC\tHTTP\tGOSSIP")
		for _, m := range list {
			fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\t%s\n", m.Name, m.State, m.InRing, m.GRPC, m.HTTP, m.Gossip)
		}
		fmt.Fprintf(w, "(as %s sees it)\n", self)
	})
}

func owner(g globals, args []string) error {
	user, action, err := keyFlags("owner", args, nil)
	if err != nil {
		return err
	}
	c, ctx := g.client, g.ctx
	m, partition, err := c.Owner(ctx, user, action)
	if err != nil {
		return err
	}
	return g.print(map[string]any{"owner": m.GetName(), "grpc": m.GetGrpcAddr(), "partition": partition}, func(w io.Writer) {
		fmt.Fprintf(w, "%s\t%s\tpartition %d\n", m.GetName(), m.GetGrpcAddr(), partition)
	})
}

func reset(g globals, args []string) error {
	user, action, err := keyFlags("reset", args, nil)
	if err != nil {
		return err
	}
	c, ctx := g.client, g.ctx
	dropped, confirmed, err := c.Reset(ctx, user, action)
	if err != nil {
		return err
	}
	return g.print(map[string]any{"dropped": dropped, "members": confirmed}, func(w io.Writer) {
		fmt.Fprintf(w, "reset: %d live bucket(s) dropped; confirmed by %s\n", dropped, strings.Join(confirmed, ", "))
	})
}

// top asks every member for its most denied keys (each counts the checks
// that entered through it) and sums them.
func top(g globals, args []string) error {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 10, "how many keys")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *n < 1 {
		return fmt.Errorf("%w: top [-n N]", errUsage)
	}
	c, ctx := g.client, g.ctx
	_, ms, err := c.Members(ctx)
	if err != nil {
		return err
	}
	type entry struct {
		User, Action  string
		Denied, Error uint64
	}
	sums := map[[2]string]*entry{}
	var asked, failed []string
	for _, m := range ms {
		if m.GetState() != "alive" {
			continue
		}
		mc, err := client.New([]string{m.GetGrpcAddr()}, g.dialOpts...)
		if err == nil {
			var keys []drl.DeniedKey
			// Every member's list is asked for more than n: a key can be
			// near the top of the sum without topping any one member.
			_, keys, err = mc.TopDenied(ctx, 4**n)
			mc.Close()
			for _, k := range keys {
				e := sums[[2]string{k.UserID, k.Action}]
				if e == nil {
					e = &entry{User: k.UserID, Action: k.Action}
					sums[[2]string{k.UserID, k.Action}] = e
				}
				e.Denied += k.Denied
				e.Error += k.Error
			}
		}
		if err != nil {
			failed = append(failed, m.GetName())
			continue
		}
		asked = append(asked, m.GetName())
	}
	list := make([]entry, 0, len(sums))
	for _, e := range sums {
		list = append(list, *e)
	}
	slices.SortFunc(list, func(a, b entry) int {
		if a.Denied != b.Denied {
			if a.Denied > b.Denied {
				return -1
			}
			return 1
		}
		return strings.Compare(a.User+"\x00"+a.Action, b.User+"\x00"+b.Action)
	})
	list = list[:min(*n, len(list))]
	return g.print(map[string]any{"keys": list, "members": asked, "unreachable": failed}, func(w io.Writer) {
		fmt.Fprintln(w, "USER\tACTION\tDENIED\t±")
		for _, e := range list {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", e.User, e.Action, e.Denied, e.Error)
		}
		fmt.Fprintf(w, "(summed over %s", strings.Join(asked, ", "))
		if len(failed) > 0 {
			fmt.Fprintf(w, "; unreachable: %s", strings.Join(failed, ", "))
		}
		fmt.Fprintln(w, ")")
	})
}
