package main

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/drlimit/drl/client"
)

// The floor answers the client API as a node would, deciding nothing.
func TestFloorAnswersChecks(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := newServer()
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(lis) })
	defer func() { gs.Stop(); wg.Wait() }()
	c, err := client.New([]string{lis.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok, err := c.RateLimit(ctx, "u", "a", 1, time.Minute)
	if err != nil || !ok {
		t.Fatalf("RateLimit on the floor: %v %v, want allowed", ok, err)
	}
}
