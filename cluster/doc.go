// Package cluster runs a drl node: gossip membership (hashicorp/memberlist,
// through internal/membership), key ownership on a consistent-hash ring,
// and forwarding of checks to their owners over gRPC. Of memberlist it
// shows only Config.GossipTransport, where a test (package chaos) puts a
// transport that injects faults. It is the embeddable API:
//
//	n, err := cluster.New(cluster.Config{
//		Name:       "web-1",
//		GossipAddr: "127.0.0.1:7946",
//		GRPCAddr:   "127.0.0.1:7947",
//		Join:       []string{"127.0.0.1:7956"}, // any member, or none for a cluster of one
//	})
//	if err != nil {
//		return err // bad config, or a port in use; nothing to close
//	}
//	defer n.Close(context.Background())
//	ok, err := n.RateLimit(ctx, "user-42", "login", 5, time.Minute)
//
// The README's Example_embedded (examples/readme) runs the same lines.
//
// Every key (user, action) has exactly one owner among the live members;
// the owner keeps its bucket in memory and decides every check on it, so
// checks on one key are serialized in one place. A node that does not own
// a key forwards the check, batched with others bound for the same owner.
package cluster
