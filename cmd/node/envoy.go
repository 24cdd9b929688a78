package main

import (
	"fmt"
	"log/slog"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/envoyrls"
)

// serveEnvoy serves Envoy's rate limit service on its own gRPC listener
// (Envoy's side of the mesh, apart from the peers' port) and returns
// functions that stop it and that reload its rules file. A reload that
// fails keeps the rules in force and logs why.
func serveEnvoy(n *cluster.Node, o options, sec *security, logger *slog.Logger) (stop, reload func(), err error) {
	load := func() (*envoyrls.Rules, error) { return envoyrls.LoadRules(o.envoyRules, o.minWindow, o.maxWindow) }
	rules, err := load()
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", o.envoyAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("-envoy-addr %s: %w", o.envoyAddr, err)
	}
	svc := envoyrls.NewService(n, rules)
	var opts []grpc.ServerOption
	if sec.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(sec.tls.ServerConfig())))
	}
	gs := grpc.NewServer(opts...)
	svc.Register(gs)
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(lis) })
	logger.Info("envoy rate limit service listening", "addr", lis.Addr().String(), "rules", o.envoyRules)
	stop = func() {
		gs.GracefulStop()
		wg.Wait()
	}
	reload = func() {
		rules, err := load()
		if err != nil {
			logger.Error("rules not reloaded; the old ones stay", "err", err)
			return
		}
		svc.SetRules(rules)
		logger.Info("rules reloaded", "rules", o.envoyRules)
	}
	return stop, reload, nil
}
