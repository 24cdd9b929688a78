package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/certs"
	"github.com/drlimit/drl/certs/certstest"
	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

const testToken = "test-token-0123456789abcdef"

func gossipKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func tokenFile(t *testing.T) *transport.Tokens {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("# the test's token\n"+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := transport.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func secured(t *testing.T, ca *certstest.CA, name string, key []byte, tokens *transport.Tokens) Config {
	store, err := certs.Load(ca.Issue(name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := TestConfig(name)
	cfg.TLS, cfg.GossipKeys, cfg.Tokens = store, [][]byte{key}, tokens
	cfg.HTTPAddr = "127.0.0.1:0"
	return cfg
}

// With mutual TLS, a gossip key and tokens on, members work together, and
// outsiders are refused everywhere: a node with another gossip key never
// joins, callers without a member certificate cannot forward checks or
// hand off buckets, and the public API wants TLS and a token.
func TestOutsidersAreRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip and load: the full suite runs it")
	}
	ca, rogue := certstest.NewCA(t, "cluster"), certstest.NewCA(t, "rogue")
	key, tokens := gossipKey(t), tokenFile(t)
	a := startNode(t, secured(t, ca, "node-0", key, tokens))
	bCfg := secured(t, ca, "node-1", key, tokens)
	bCfg.Join = []string{a.GossipAddr()}
	b := startNode(t, bCfg)
	members := []*Node{a, b}
	waitForRing(t, members, 2)

	// Members forward to each other over mutual TLS.
	user := userOwnedBy(t, a, "node-1")
	for i := range 3 {
		d, err := a.Check(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: 2, Window: time.Hour, Hits: 1})
		if err != nil || d.Allowed != (i < 2) {
			t.Fatalf("check %d across members: %+v, %v", i, d, err)
		}
	}
	if a.Stats().Forwarded == 0 || a.Stats().FallbackClosed+a.Stats().FallbackLocal > 0 {
		t.Fatalf("checks were not forwarded over mTLS: %+v", a.Stats())
	}

	// A node with the rogue CA's certificate and another gossip key; and
	// one that stole the gossip key but has no certificate from the CA: it
	// gossips with the members, but never enters their rings.
	outCfg := secured(t, rogue, "outsider", gossipKey(t), tokens)
	outCfg.Join = []string{a.GossipAddr()}
	outsider := startNode(t, outCfg)
	thiefCfg := secured(t, rogue, "thief", key, tokens)
	thiefCfg.Join = []string{a.GossipAddr()}
	startNode(t, thiefCfg)
	eventually(t, 10*time.Second, func() error {
		for _, m := range func() []drl.Member { _, ms := a.Members(); return ms }() {
			if m.Name == "thief" && m.State == "alive" {
				return nil
			}
		}
		return errors.New("the thief has not gossiped its way in yet")
	})
	time.Sleep(2 * time.Second)
	for _, n := range members {
		if got := n.Stats().Members; got != 2 {
			t.Fatalf("%s has %d members in its ring after outsiders tried to join", n.Name(), got)
		}
		_, ms := n.Members()
		for _, m := range ms {
			if m.Name == "thief" && m.InRing {
				t.Fatalf("%s put the thief in its ring", n.Name())
			}
		}
	}
	if got := outsider.Stats().Members; got != 0 && got != 1 {
		t.Fatalf("the outsider sees %d members", got)
	}

	dial := func(creds credentials.TransportCredentials) peerpb.PeerClient {
		conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return peerpb.NewPeerClient(conn)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca.File)
	pool.AppendCertsFromPEM(caPEM)
	rogueStore, err := certs.Load(rogue.Issue("rogue-client"))
	if err != nil {
		t.Fatal(err)
	}
	rogueTLS := rogueStore.ClientConfig()
	rogueTLS.VerifyConnection = nil // the outsider trusts anything
	forward := &peerpb.ForwardRequest{From: "outsider", Checks: []*peerpb.OwnedCheck{{KeyHi: 1, KeyLo: 8, Limit: 1, WindowNs: int64(time.Minute), Hits: 1, Count: 1}}}
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":          insecure.NewCredentials(),
		"TLS without a cert": credentials.NewTLS(&tls.Config{RootCAs: pool}),
		"rogue cert":         credentials.NewTLS(rogueTLS),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := dial(creds).Forward(ctx, forward)
		_, herr := dial(creds).Handoff(ctx, &peerpb.HandoffRequest{From: "outsider", Buckets: []*peerpb.MovedBucket{{KeyHi: 1, KeyLo: 8, A: 1}}})
		serr := forwardStream(ctx, dial(creds))
		cancel()
		if err == nil || herr == nil || serr == nil {
			t.Fatalf("%s: Forward %v, Handoff %v, ForwardStream %v; want all refused", name, err, herr, serr)
		}
		if name == "TLS without a cert" && (status.Code(err) != codes.PermissionDenied || status.Code(herr) != codes.PermissionDenied ||
			status.Code(serr) != codes.PermissionDenied) {
			t.Fatalf("%s: Forward %v, Handoff %v, ForwardStream %v; want PermissionDenied", name, err, herr, serr)
		}
	}

	// The public API: TLS, and a token.
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := drlv1.NewRateLimiterClient(conn)
	req := &drlv1.CheckRequest{UserId: "u", Action: "a", Limit: 5, Window: nil}
	req.Window = transport.RequestToProto(bucket.Request{Window: time.Minute}).Window
	if _, err := api.Check(context.Background(), req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("check without a token: %v", err)
	}
	withToken := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testToken)
	if resp, err := api.Check(withToken, req); err != nil || !resp.GetAllowed() {
		t.Fatalf("check with the token: %v %v", resp, err)
	}
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer https.CloseIdleConnections()
	for token, want := range map[string]int{"": 401, "wrong-token-0123456789": 401, testToken: 200} {
		r, _ := http.NewRequest("GET", "https://"+a.HTTPAddr()+"/v1/members", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := https.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET /v1/members with token %q: %d, want %d", token, resp.StatusCode, want)
		}
	}
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if resp, err := plain.Get("http://" + a.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered on a TLS listener")
		}
	}
}

// Gossip keys rotate without a split: add the new key, make it primary,
// drop the old; a node that knows only the new key joins at the end.
func TestGossipKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip and load: the full suite runs it")
	}
	oldKey, newKey := gossipKey(t), gossipKey(t)
	nodes := startCluster(t, 2, func(c *Config) { c.GossipKeys = [][]byte{oldKey} })
	for _, step := range [][][]byte{{oldKey, newKey}, {newKey, oldKey}, {newKey}} {
		for _, n := range nodes {
			if err := n.SetGossipKeys(step); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		waitForRing(t, nodes, 2)
	}
	cfg := TestConfig("node-" + strconv.Itoa(2))
	cfg.GossipKeys, cfg.Join = [][]byte{newKey}, []string{nodes[0].GossipAddr()}
	waitForRing(t, append(nodes, startNode(t, cfg)), 3)
	if err := startNode(t, TestConfig("plain")).SetGossipKeys([][]byte{newKey}); err == nil {
		t.Fatal("SetGossipKeys on a node without encryption")
	}
}

// Hostile sizes are refused before they cost anything: more checks in a
// batch than MaxRecvBatch, and a message over MaxRecvBytes.
func TestHostileInputIsBounded(t *testing.T) {
	n := startNode(t, TestConfig("node-0"))
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := drlv1.NewRateLimiterClient(conn)
	window := transport.RequestToProto(bucket.Request{Window: time.Minute}).Window
	batch := &drlv1.CheckBatchRequest{}
	for range transport.DefaultMaxRecvBatch + 1 {
		batch.Checks = append(batch.Checks, &drlv1.CheckRequest{UserId: "u", Action: "a", Limit: 1, Window: window})
	}
	if _, err := api.CheckBatch(context.Background(), batch); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a batch of %d: %v", len(batch.Checks), err)
	}
	huge := &drlv1.CheckRequest{UserId: string(make([]byte, transport.DefaultMaxRecvBytes)), Action: "a", Limit: 1, Window: window}
	if _, err := api.Check(context.Background(), huge); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a message of 4 MiB: %v", err)
	}
	if d, err := api.Check(context.Background(), &drlv1.CheckRequest{UserId: "u", Action: "a", Limit: 1, Window: window}); err != nil || !d.GetAllowed() {
		t.Fatalf("the node after hostile input: %v %v", d, err)
	}
}

// forwardStream sends one empty frame on a ForwardStream and returns the
// error its answer brings, if any.
func forwardStream(ctx context.Context, pc peerpb.PeerClient) error {
	s, err := pc.ForwardStream(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(&peerpb.ForwardFrame{Batch: 1}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = s.Recv()
	return err
}
