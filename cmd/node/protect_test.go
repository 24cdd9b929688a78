package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/internal/peerpb"
)

// Protected mode, through the real binary: a node with a listener off
// loopback and neither a gossip key nor TLS exits at once, before it
// binds anything, with one line that names the listener, the flags that
// protect it and -insecure with its environment twin.
func TestProtectedModeRefusesToStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := buildNode(t)
	for _, c := range []struct {
		name string
		args []string
		env  []string
		flag string // the listener the message must name
	}{
		{"gossip on every interface", []string{"-gossip-addr", "0.0.0.0:0"}, nil, "-gossip-addr 0.0.0.0:0"},
		{"gRPC on every interface, from the environment", nil, []string{"DRL_GRPC_ADDR=:0"}, "-grpc-addr :0"},
		{"HTTP on every interface", []string{"-http-addr", "[::]:0"}, nil, "-http-addr [::]:0"},
		{"a tokens file is no protection", []string{"-gossip-addr", "0.0.0.0:0", "-auth-token-file", tokensFile(t, "a-token-0123456789abc")}, nil, "-gossip-addr"},
		{"-insecure=false", []string{"-gossip-addr", "0.0.0.0:0", "-insecure=false"}, nil, "-gossip-addr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-gossip-addr", "127.0.0.1:0"}, c.args...)
			if c.env != nil { // the environment fills only flags left unset
				args = []string{"-gossip-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}
			}
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = append(os.Environ(), c.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("node %v: %v, want exit status 1; stderr:\n%s", args, err, stderr.String())
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if strings.Contains(msg, "\n") {
				t.Fatalf("the refusal is not one line:\n%s", msg)
			}
			for _, want := range []string{"node: refusing to start: " + c.flag, "-gossip-key-file", "-tls-cert", "-insecure", "DRL_INSECURE=true"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the refusal %q does not say %q", msg, want)
				}
			}
		})
	}
}

// With -insecure's twin, a node on every interface starts, warns in its
// log before it serves, and shows the warning on its status page and in
// /v1/status.
func TestInsecureStartsAndWarns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := buildNode(t)
	p := startProcEnv(t, bin, "open", "", []string{"DRL_INSECURE=true"},
		"-gossip-addr", "0.0.0.0:0", "-grpc-addr", "0.0.0.0:0", "-http-addr", "0.0.0.0:0")
	if p.count("insecure: ") != 1 {
		t.Errorf("logged %d insecure warnings before it started, want 1", p.count("insecure: "))
	}
	_, port, err := net.SplitHostPort(p.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port
	for _, path := range []string{"/v1/status", "/status"} {
		body := httpGet(t, base+path)
		if !strings.Contains(body, "insecure: GossipAddr 0.0.0.0:0 is off loopback") {
			t.Errorf("%s does not show the warning:\n%.600s", path, body)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func tokensFile(t *testing.T, tokens ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// withToken is ctx carrying a bearer token, as a gRPC call's metadata.
func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// The shipped configuration without TLS: members with a gossip key, check
// tokens and admin tokens. A stranger process without the key cannot join
// them; a caller without the key cannot call any method of the peer
// service; a check token cannot reset or forget; the members themselves
// forward and reset across each other, so the proof they send works.
func TestStrangerIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := buildNode(t)
	const checkToken, adminToken = "check-token-0123456789abc", "admin-token-0123456789abc"
	key := randomKey(t)
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	member := []string{"-gossip-key-file", keyFile, "-auth-token-file", tokensFile(t, checkToken), "-admin-token-file", tokensFile(t, adminToken)}
	a := startProc(t, bin, "a", "", member...)
	b := startProc(t, bin, "b", a.gossipAddr, member...)
	stranger := startProc(t, bin, "stranger", a.gossipAddr) // on loopback: no key needed to start

	// members returns the members p knows, with those in its ring
	// marked "+".
	members := func(p *proc, token string) []string {
		ctx, cancel := context.WithTimeout(withToken(context.Background(), token), time.Second)
		defer cancel()
		resp, err := p.client.Members(ctx, &drlv1.MembersRequest{})
		if err != nil {
			return []string{err.Error()}
		}
		var names []string
		for _, m := range resp.GetMembers() {
			if m.GetInRing() {
				names = append(names, "+"+m.GetName())
			} else {
				names = append(names, m.GetName())
			}
		}
		return names
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Join(members(a, checkToken), ",") != "+a,+b" || strings.Join(members(b, checkToken), ",") != "+a,+b" {
		if time.Now().After(deadline) {
			t.Fatalf("a and b did not form a ring: a sees %v, b %v", members(a, checkToken), members(b, checkToken))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The stranger tries every rejoin interval (500 ms) and fails each
	// time; after three failures it is still outside, and knows nobody.
	for deadline = time.Now().Add(20 * time.Second); stranger.count("join failed") < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stranger logged %d failed joins in 20 s, want 3", stranger.count("join failed"))
		}
	}
	if got := strings.Join(members(a, checkToken), ","); got != "+a,+b" {
		t.Fatalf("a's members after the stranger tried to join: %s", got)
	}
	// Never joined, the stranger is in no ring, its own included.
	if got := strings.Join(members(stranger, ""), ","); got != "stranger" {
		t.Fatalf("the stranger's members: %s, want itself alone, outside any ring", got)
	}

	// The members forward to each other: every user gets its 5, whichever
	// member owns it (a fallback would answer limit/2).
	ctx := context.Background()
	admitted := 0
	for range 6 {
		for _, u := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
			resp, err := a.client.Check(withToken(ctx, checkToken), &drlv1.CheckRequest{UserId: u, Action: "api", Limit: 5, Window: durationpb.New(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetAllowed() {
				admitted++
			}
		}
	}
	if admitted != 30 {
		t.Fatalf("admitted %d, want 6 users × 5: forwarding between members failed", admitted)
	}

	// The peer service, called by a process without the key, refuses
	// every method; a wrong key's proof is refused too.
	wrongKey := randomKey(t)
	for _, c := range []struct {
		name string
		opts []grpc.DialOption
		want codes.Code
	}{
		{"no proof", nil, codes.Unauthenticated},
		{"another key's proof", []grpc.DialOption{peer.WithKeyProof(func() [][]byte { return [][]byte{wrongKey} })}, codes.PermissionDenied},
	} {
		for method, code := range callPeer(t, a.grpcAddr, c.opts...) {
			if code != c.want {
				t.Errorf("%s: Peer.%s = %v, want %v", c.name, method, code, c.want)
			}
		}
	}

	// Reset: refused without a token and with a check token, naming the
	// role; done on both members with an admin token.
	req := &drlv1.ResetRequest{UserId: "u1", Action: "api"}
	if _, err := a.client.Reset(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Reset without a token: %v, want Unauthenticated", err)
	}
	_, err := a.client.Reset(withToken(ctx, checkToken), req)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "role admin") {
		t.Errorf("Reset with a check token: %v, want PermissionDenied naming role admin", err)
	}
	if _, err := a.client.Forget(withToken(ctx, checkToken), &drlv1.ForgetRequest{Name: "b"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Forget with a check token: %v, want PermissionDenied", err)
	}
	hreq, _ := http.NewRequest("POST", "http://"+a.httpAddr+"/v1/reset", strings.NewReader(`{"user_id":"u1","action":"api"}`))
	hreq.Header.Set("Authorization", "Bearer "+checkToken)
	if resp, err := http.DefaultClient.Do(hreq); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /v1/reset with a check token: %v, %v; want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	done, err := a.client.Reset(withToken(ctx, adminToken), req)
	if err != nil || len(done.GetMembers()) != 2 {
		t.Fatalf("Reset with an admin token: %v, %v; want both members to confirm", done, err)
	}
}

// callPeer calls every method of the Peer service on addr, as a process
// without the gossip key would, and returns each one's status code. It
// fails if the service has a method it does not call.
func callPeer(t *testing.T, addr string, opts ...grpc.DialOption) map[string]codes.Code {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := peerpb.NewPeerClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := map[string]codes.Code{}
	_, err = c.Forward(ctx, &peerpb.ForwardRequest{From: "stranger"})
	got["Forward"] = status.Code(err)
	_, err = c.Handoff(ctx, &peerpb.HandoffRequest{From: "stranger"})
	got["Handoff"] = status.Code(err)
	_, err = c.ResetKey(ctx, &peerpb.ResetKeyRequest{KeyHi: 1, KeyLo: 2})
	got["ResetKey"] = status.Code(err)
	st, err := c.ForwardStream(ctx)
	if err == nil {
		st.Send(&peerpb.ForwardFrame{Batch: 1})
		_, err = st.Recv()
	}
	got["ForwardStream"] = status.Code(err)
	if sd := peerpb.Peer_ServiceDesc; len(sd.Methods)+len(sd.Streams) != len(got) {
		t.Fatalf("the Peer service has %d methods and %d streams; callPeer calls %d", len(sd.Methods), len(sd.Streams), len(got))
	}
	return got
}
