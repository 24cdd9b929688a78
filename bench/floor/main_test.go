package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

// The HTTP floor answers the README's body with a constant, and refuses
// what is not JSON.
func TestHTTPFloorAnswersChecks(t *testing.T) {
	srv := httptest.NewServer(newHTTPHandler())
	defer srv.Close()
	for body, want := range map[string]int{`{"user_id":"u1","action":"login","limit":5,"window":"60s"}`: 200, `{`: 400} {
		resp, err := http.Post(srv.URL+"/v1/ratelimit", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || want == 200 && !strings.Contains(string(b), `"allowed":true`) {
			t.Fatalf("POST %s = %s %s, want %d", body, resp.Status, b, want)
		}
	}
}
