package readme_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/middleware"
)

// The README's "Embedded in a Go service": a node of one, on free loopback
// ports, checked twice.
func Example_embedded() {
	ctx := context.Background()
	n, err := cluster.New(cluster.Config{
		Name:       "web-1",
		GossipAddr: "127.0.0.1:0", // port 0: any free port; on a network, this host's address
		GRPCAddr:   "127.0.0.1:0",
		// Join: []string{"10.0.0.2:7946"}, // other members' gossip addresses
	})
	if err != nil {
		log.Fatal(err) // no node, nothing to close
	}
	defer n.Close(ctx) // hands this node's keys to the others and leaves

	ok, err := n.RateLimit(ctx, "user-42", "login", 5, time.Minute)
	if err != nil {
		log.Fatal(err) // no decision: bad input, or no owner reachable
	}
	fmt.Println("login allowed:", ok)

	d, err := n.Check(ctx, bucket.Request{UserID: "user-42", Action: "upload",
		Limit: 100, Window: time.Hour, Hits: 10, Algorithm: bucket.GCRA})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("upload allowed:", d.Allowed, "remaining:", d.Remaining) // also d.ResetAfter, d.RetryAfter
	// Output:
	// login allowed: true
	// upload allowed: true remaining: 90
}

// The README's HTTP middleware: two uploads per 10 s per API key, the
// third refused with 429.
func Example_middleware() {
	node, err := cluster.New(cluster.Config{GossipAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close(context.Background())

	limit, err := middleware.NewHTTP(middleware.HTTPConfig{
		Limiter: node,                                // a *cluster.Node, or a *client.Client
		Key:     middleware.KeyByHeader("X-API-Key"), // or KeyByIP, KeyByRoute, your own
		Routes: []middleware.Route{{Pattern: "POST /upload", Rule: middleware.Rule{Limits: []middleware.Limit{
			{Name: "upload-burst", Limit: 2, Window: 10 * time.Second},
			{Name: "upload-hourly", Limit: 20, Window: time.Hour},
		}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "stored") })
	srv := httptest.NewServer(limit(mux)) // in a service: http.ListenAndServe(addr, limit(mux))
	defer srv.Close()

	for range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/upload", nil)
		req.Header.Set("X-API-Key", "key-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status) // the third: 429, with Retry-After and the RateLimit fields
	}
	// Output:
	// 200 OK
	// 200 OK
	// 429 Too Many Requests
}
