// Command embedded is an HTTP service that embeds a drl node: the limiter
// runs in the service's own process, and several copies of the service
// form one cluster by gossip. Each copy is limited as a whole, not per
// copy: the key's owner decides.
//
//	go run ./examples/embedded -addr 127.0.0.1:9000
//	go run ./examples/embedded -addr 127.0.0.1:9001 -gossip 127.0.0.1:7956 -grpc 127.0.0.1:7957 -join 127.0.0.1:7946
//	curl -i -H 'X-User: ann' 127.0.0.1:9000/api/hello   # 5 per minute per user
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/middleware"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "HTTP address of the service")
	gossip := flag.String("gossip", cluster.DefaultGossipAddr, "gossip address of the embedded node")
	grpcAddr := flag.String("grpc", cluster.DefaultGRPCAddr, "gRPC address of the embedded node (its peers forward here)")
	join := flag.String("join", "", "gossip address of another copy to join")
	flag.Parse()

	cfg := cluster.Config{GossipAddr: *gossip, GRPCAddr: *grpcAddr}
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
	}
	node, err := cluster.New(cfg)
	if err != nil {
		log.Fatal(err)
	}

	limit, err := middleware.NewHTTP(middleware.HTTPConfig{
		Limiter: node,
		Key:     middleware.KeyByHeader("X-User"),
		Routes: []middleware.Route{
			{Pattern: "GET /api/", Rule: middleware.Rule{Limits: []middleware.Limit{
				{Name: "api", Limit: 5, Window: time.Minute},
			}}},
			{Pattern: "POST /api/upload", Rule: middleware.Rule{Limits: []middleware.Limit{
				{Name: "upload-burst", Limit: 2, Window: 10 * time.Second},
				{Name: "upload-hourly", Limit: 20, Window: time.Hour},
			}}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.Header.Get("X-User"))
	})
	srv := &http.Server{Addr: *addr, Handler: limit(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	log.Printf("serving on http://%s, limiter node %s", *addr, node.Name())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	node.Close(ctx) // hands this copy's keys to the others before leaving
}
