// Command cluster-middleware is an HTTP service that uses a drl cluster
// run apart from it (cmd/node), through the client: the service holds no
// limiter state, and any node answers.
//
//	go run ./cmd/node -name a                         # in one shell (or three nodes: see the README)
//	go run ./examples/cluster-middleware -nodes 127.0.0.1:7947   # in another
//	curl -i 127.0.0.1:9100/search                     # in a third: 10 per second per IP
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

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/client"
	"github.com/drlimit/drl/middleware"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "HTTP address of the service")
	nodes := flag.String("nodes", "127.0.0.1:7947", "comma-separated gRPC addresses of drl nodes")
	flag.Parse()

	c, err := client.New(strings.Split(*nodes, ","))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	limit, err := middleware.NewHTTP(middleware.HTTPConfig{
		Limiter: c,
		Key:     middleware.KeyByIP,
		Default: &middleware.Rule{
			Limits:     []middleware.Limit{{Name: "per-ip", Limit: 10, Window: time.Second}},
			FailPolicy: drl.FailOpen, // the nodes allow if a key's owner is unreachable
		},
		Headers: middleware.HeadersBoth,
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second,
		Handler: limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "results")
		}))}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	log.Printf("serving on http://%s, limited by the cluster at %s", *addr, *nodes)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}
