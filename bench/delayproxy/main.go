// Command delayproxy forwards TCP connections and holds every chunk of
// bytes for half of -rtt in each direction: a round trip that much longer
// between the caller and the target, on any kernel and without root (where
// netem is missing). bench/latency.sh puts one in front of every node's
// gRPC port to see whether batches still form when owners are a round trip
// away.
//
//	delayproxy -rtt 1ms 127.0.0.1:18001=127.0.0.1:17947 ...
//
// Each argument is listen=target. On SIGINT or SIGTERM it prints the
// delay it achieved (the mean and the 99th percentile of how long chunks
// were held, which timers round up on a busy machine) and exits.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	rtt := flag.Duration("rtt", time.Millisecond, "the round trip to add: each chunk is held half of it, each way")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "delayproxy: give at least one listen=target")
		os.Exit(2)
	}
	p := &proxy{delay: *rtt / 2}
	var listeners []net.Listener
	for _, arg := range flag.Args() {
		listen, target, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "delayproxy: %q is not listen=target\n", arg)
			os.Exit(2)
		}
		lis, err := net.Listen("tcp", listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "delayproxy:", err)
			os.Exit(1)
		}
		listeners = append(listeners, lis)
		p.wg.Go(func() { p.accept(lis, target) })
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	for _, lis := range listeners {
		lis.Close()
	}
	p.closeAll()
	p.wg.Wait()
	fmt.Println(p.report())
}

// proxy owns every connection it accepted and every goroutine that copies
// one; closeAll ends them all.
type proxy struct {
	delay time.Duration
	wg    sync.WaitGroup

	mu     sync.Mutex
	closed bool // by closeAll: a connection accepted after it is closed at once
	conns  []net.Conn
	held   []time.Duration // how long each chunk was held, for the report
}

func (p *proxy) accept(lis net.Listener, target string) {
	for {
		in, err := lis.Accept()
		if err != nil {
			return // closed
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(out, in) })
		p.wg.Go(func() { p.pipe(in, out) })
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk written no sooner than delay after it
// was read, in order. A reader goroutine keeps reading meanwhile, so the
// delay adds latency, not a cap on throughput.
func (p *proxy) pipe(dst, src net.Conn) {
	chunks := make(chan chunk, 4096)
	var reader sync.WaitGroup
	reader.Go(func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{bytes.Clone(buf[:n]), time.Now().Add(p.delay)}
			}
			if err != nil {
				return
			}
		}
	})
	var held []time.Duration
	for c := range chunks {
		if wait := time.Until(c.due); wait > 0 {
			time.Sleep(wait)
		}
		held = append(held, time.Since(c.due)+p.delay)
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	// Whichever side ended, end both, and let the reader finish.
	src.Close()
	dst.Close()
	for range chunks {
	}
	reader.Wait()
	p.mu.Lock()
	p.held = append(p.held, held...)
	p.mu.Unlock()
}

func (p *proxy) report() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.held) == 0 {
		return "delayproxy: no chunks"
	}
	var sum time.Duration
	for _, h := range p.held {
		sum += h
	}
	slices.Sort(p.held)
	return fmt.Sprintf("delayproxy: %d chunks held %v on average, p99 %v (asked: %v)",
		len(p.held), (sum / time.Duration(len(p.held))).Round(time.Microsecond),
		p.held[len(p.held)*99/100].Round(time.Microsecond), p.delay)
}
