package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/drlimit/drl/certs"
	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/transport"
)

// security is what the security flags made: the TLS store, tokens and
// the gossip key file, kept for reloads.
type security struct {
	tls         *certs.Store
	tokens      *transport.Tokens
	adminTokens *transport.Tokens
	keysFile    string
}

// security applies -tls-*, -gossip-key(-file), -auth-token-file and
// -admin-token-file to cfg.
func (o options) security(cfg *cluster.Config) (*security, error) {
	sec := &security{keysFile: o.gossipKeyFile}
	if o.tlsCert != "" || o.tlsKey != "" || o.tlsCA != "" {
		store, err := certs.Load(certs.Files{Cert: o.tlsCert, Key: o.tlsKey, CA: o.tlsCA})
		if err != nil {
			return nil, fmt.Errorf("-tls-cert, -tls-key, -tls-ca: %w", err)
		}
		cfg.TLS, sec.tls = store, store
	}
	switch {
	case o.gossipKey != "" && o.gossipKeyFile != "":
		return nil, errors.New("-gossip-key and -gossip-key-file: give one")
	case o.gossipKey != "":
		keys, err := decodeKeys(strings.Split(o.gossipKey, ","))
		if err != nil {
			return nil, fmt.Errorf("-gossip-key: %w", err)
		}
		cfg.GossipKeys = keys
	case o.gossipKeyFile != "":
		keys, err := readKeys(o.gossipKeyFile)
		if err != nil {
			return nil, err
		}
		cfg.GossipKeys = keys
	}
	if o.authTokenFile != "" {
		tokens, err := transport.LoadTokens(o.authTokenFile)
		if err != nil {
			return nil, fmt.Errorf("-auth-token-file: %w", err)
		}
		cfg.Tokens, sec.tokens = tokens, tokens
	}
	if o.adminTokenFile != "" {
		tokens, err := transport.LoadTokens(o.adminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("-admin-token-file: %w", err)
		}
		cfg.AdminTokens, sec.adminTokens = tokens, tokens
	}
	return sec, nil
}

// errUnprotected marks protected mode's refusal: a listener off loopback
// with neither a gossip key nor TLS, and no -insecure.
var errUnprotected = errors.New("refusing to start")

// listenerFlags names the flag of each listener cluster.UnprotectedError
// can name.
var listenerFlags = map[string]string{"GossipAddr": "-gossip-addr", "GRPCAddr": "-grpc-addr", "GRPCListener": "-grpc-addr", "HTTPAddr": "-http-addr"}

// protectedMode turns cluster.Config.Validate's error into what the
// operator reads: for an unprotected node, one line that names the
// listener, the flags that protect it and -insecure.
func protectedMode(err error) error {
	var u *cluster.UnprotectedError
	if !errors.As(err, &u) {
		return err
	}
	return fmt.Errorf("%w: %s %s is not a loopback address, and there is no gossip key or TLS: set -gossip-key-file (or -tls-cert, -tls-key and -tls-ca), or -insecure (%s=true) to let anyone who reaches it join the cluster",
		errUnprotected, listenerFlags[u.Field], u.Addr, envName("insecure"))
}

// decodeKeys reads base64 gossip keys, the first being the one that
// encrypts.
func decodeKeys(list []string) ([][]byte, error) {
	var keys [][]byte
	for _, s := range list {
		if s = strings.TrimSpace(s); s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("a key is not base64: %w", err)
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("a key of %d bytes; want 16, 24 or 32 (openssl rand -base64 32)", n)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	return keys, nil
}

func readKeys(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-gossip-key-file: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	keys, err := decodeKeys(lines)
	if err != nil {
		return nil, fmt.Errorf("-gossip-key-file %s: %w", path, err)
	}
	return keys, nil
}

// reload reads every file again (on SIGHUP); what fails keeps what was in
// force and is logged.
func (sec *security) reload(n *cluster.Node, logger *slog.Logger) {
	if sec.tls != nil {
		if err := sec.tls.Reload(); err != nil {
			logger.Error("certificates not reloaded", "err", err)
		}
	}
	for _, t := range []*transport.Tokens{sec.tokens, sec.adminTokens} {
		if t == nil {
			continue
		}
		if err := t.Reload(); err != nil {
			logger.Error("tokens not reloaded", "err", err)
		}
	}
	if sec.keysFile != "" {
		keys, err := readKeys(sec.keysFile)
		if err == nil {
			err = n.SetGossipKeys(keys)
		}
		if err != nil {
			logger.Error("gossip keys not reloaded", "err", err)
		}
	}
	logger.Info("security files reloaded")
}

// watch reloads the certificates when their files change, until ctx ends.
func (sec *security) watch(ctx context.Context, logger *slog.Logger) {
	if sec.tls != nil {
		sec.tls.Watch(ctx, 10*time.Second, func(err error) { logger.Error("certificates not reloaded", "err", err) })
	}
}
