package certs_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/drlimit/drl/certs"
	"github.com/drlimit/drl/certs/certstest"
)

// handshake runs one mutual TLS handshake between a server and a client
// store and returns the certificate the client saw.
func handshake(t *testing.T, server, client *certs.Store) (string, error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, server.ServerConfig())
		tc.Handshake()
		tc.Write([]byte("x"))
	}()
	cfg := client.ClientConfig()
	cfg.ServerName = "127.0.0.1"
	c, err := tls.Dial("tcp", lis.Addr().String(), cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// Members of one CA talk; a rotated certificate is used for new
// connections after Reload; a server of another CA is refused.
func TestMutualTLSAndReload(t *testing.T) {
	ca := certstest.NewCA(t, "cluster")
	serverFiles := ca.Issue("a")
	server, err := certs.Load(serverFiles)
	if err != nil {
		t.Fatal(err)
	}
	client, err := certs.Load(ca.Issue("b"))
	if err != nil {
		t.Fatal(err)
	}
	if cn, err := handshake(t, server, client); err != nil || cn != "a" {
		t.Fatalf("handshake: %q %v", cn, err)
	}

	// Rotate the server's certificate in place.
	next := ca.Issue("a-rotated")
	for _, p := range [][2]string{{next.Cert, serverFiles.Cert}, {next.Key, serverFiles.Key}} {
		b, _ := os.ReadFile(p[0])
		os.WriteFile(p[1], b, 0o600)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn, err := handshake(t, server, client); err != nil || cn != "a-rotated" {
		t.Fatalf("after reload: %q %v", cn, err)
	}

	rogue, err := certs.Load(certstest.NewCA(t, "rogue").Issue("r"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, rogue, client); err == nil {
		t.Fatal("a server of another CA was accepted")
	}
}

// Watch picks up changed files; a bad file keeps the old material.
func TestWatchAndBadFiles(t *testing.T) {
	ca := certstest.NewCA(t, "cluster")
	files := ca.Issue("a")
	s, err := certs.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := certs.Load(ca.Issue("b"))
	errs := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 10*time.Millisecond, func(err error) { errs <- err }); close(done) }()
	defer func() { cancel(); <-done }()

	os.WriteFile(files.Cert, []byte("not a certificate"), 0o600)
	future := time.Now().Add(time.Second)
	os.Chtimes(files.Cert, future, future)
	select {
	case err := <-errs:
		if !errors.Is(err, certs.ErrFiles) {
			t.Fatalf("bad file: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not notice the change")
	}
	if cn, err := handshake(t, s, client); err != nil || cn != "a" {
		t.Fatalf("after a bad reload the old certificate should stay: %q %v", cn, err)
	}
	if _, err := certs.Load(certs.Files{Cert: files.Cert}); !errors.Is(err, certs.ErrFiles) {
		t.Fatalf("missing key and CA: %v", err)
	}
}
