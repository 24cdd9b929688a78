package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/certs/certstest"
	"github.com/drlimit/drl/client"
)

// Three real processes: two members with mutual TLS, a gossip key and
// tokens, and an outsider with another CA's certificate and another key,
// which never gets into their ring. The public API answers only over TLS
// with a token.
func TestSecureClusterRefusesOutsider(t *testing.T) {
	bin := buildNode(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := func() string {
		k := make([]byte, 32)
		rand.Read(k)
		return base64.StdEncoding.EncodeToString(k)
	}
	const token = "e2e-token-0123456789abcdef"
	keyFile, tokenFile := write("gossip.key", key()+"\n"), write("tokens", token+"\n")
	ca, rogue := certstest.NewCA(t, "cluster"), certstest.NewCA(t, "rogue")
	flags := func(ca *certstest.CA, name, keys string) []string {
		f := ca.Issue(name)
		return []string{"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA, "-gossip-key-file", keys, "-auth-token-file", tokenFile}
	}
	a := startProc(t, bin, "a", "", flags(ca, "a", keyFile)...)
	startProc(t, bin, "b", a.gossipAddr, flags(ca, "b", keyFile)...)
	startProc(t, bin, "outsider", a.gossipAddr, flags(rogue, "outsider", write("rogue.key", key()+"\n"))...)

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca.File)
	pool.AppendCertsFromPEM(pem)
	c, err := client.New([]string{a.grpcAddr}, client.WithTLS(&tls.Config{RootCAs: pool}), client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inRing := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		view, err := c.Members(ctx)
		members := view.Members
		if err != nil {
			t.Logf("members: %v", err)
			return -1
		}
		n := 0
		for _, m := range members {
			if m.InRing {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for inRing() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("a and b did not form a ring of 2 over TLS (a sees %d)", inRing())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the outsider has been trying to join all along
	if got := inRing(); got != 2 {
		t.Fatalf("%d members in a's ring with an outsider knocking; want 2", got)
	}

	ctx := context.Background()
	admitted := 0
	for range 30 {
		// Users spread over both members: checks cross between them.
		for _, u := range []string{"u1", "u2", "u3", "u4"} {
			if ok, err := c.RateLimit(ctx, u, "api", 5, time.Hour); err != nil {
				t.Fatal(err)
			} else if ok {
				admitted++
			}
		}
	}
	if admitted != 20 {
		t.Fatalf("admitted %d, want 4 users × 5", admitted)
	}

	noToken, err := client.New([]string{a.grpcAddr}, client.WithTLS(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	defer noToken.Close()
	_, err = noToken.Check(ctx, bucket.Request{UserID: "u", Action: "a", Limit: 1, Window: time.Minute, Hits: 1})
	if !errors.Is(err, drl.ErrUnauthenticated) {
		t.Fatalf("a check without a token: %v", err)
	}
	plain, err := client.New([]string{a.grpcAddr}, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := plain.Check(pctx, bucket.Request{UserID: "u", Action: "a", Limit: 1, Window: time.Minute, Hits: 1}); err == nil {
		t.Fatal("a plaintext check was answered")
	}
}
