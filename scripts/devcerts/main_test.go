package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/drlimit/drl/certs"
	"github.com/drlimit/drl/transport"
)

// The files load as cmd/node loads them; certificates issued by a second
// run chain to the same CA, for 127.0.0.1 and -hosts, as server and
// client; the gossip key and the token stay.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir, "", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	keys, _ := os.ReadFile(filepath.Join(dir, "gossip.keys"))
	if err := run(dir, "node-b.example,10.0.0.9", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "gossip.keys")); !bytes.Equal(keys, again) || len(keys) != 45 {
		t.Fatalf("gossip.keys %q then %q: want one 32-byte key, kept", keys, again)
	}
	for _, f := range []string{"tokens", "admin-tokens"} {
		if _, err := transport.LoadTokens(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if checks, admins := readFile(t, dir, "tokens"), readFile(t, dir, "admin-tokens"); bytes.Equal(checks, admins) {
		t.Fatal("the check token and the admin token are the same")
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for name, host := range map[string]string{"a": "127.0.0.1", "b": "node-b.example"} {
		files := certs.Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem"), CA: filepath.Join(dir, "ca.pem")}
		if _, err := certs.Load(files); err != nil {
			t.Fatalf("certs.Load(%s): %v", name, err)
		}
		pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s for %s, usage %v: %v", name, host, usage, err)
			}
		}
	}
	if err := run(dir, "", []string{"ca"}); err == nil {
		t.Error("a node named ca was issued")
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
