package peer

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

// FuzzPeerMessages decodes any bytes as the peer API's Forward and Handoff
// requests, as a member's server would, and applies what decodes: no
// panic, and a forward answers one result per check or refuses the whole.
func FuzzPeerMessages(f *testing.F) {
	fwd, _ := proto.Marshal(&peerpb.ForwardRequest{From: "b", Checks: []*peerpb.OwnedCheck{
		{KeyHi: 1, KeyLo: 2, Limit: 5, WindowNs: int64(time.Minute), Hits: 1, Count: 3, Lease: 2},
		{KeyHi: 3, KeyLo: 4, Algorithm: 4, Limit: 1, WindowNs: int64(time.Second), Count: 1, DryRun: true},
	}})
	ho, _ := proto.Marshal(&peerpb.HandoffRequest{From: "b", DoneRing: 9, Buckets: []*peerpb.MovedBucket{
		{KeyHi: 1, KeyLo: 2, A: 5, B: -3, FreshInNs: int64(time.Second)},
		{KeyHi: 1, KeyLo: 4, FreshInNs: 1, Log: []*peerpb.MovedLogEntry{{AtNs: -5, N: 2}, {AtNs: 7, N: -1}}},
	}})
	f.Add(fwd)
	f.Add(ho)
	f.Add([]byte{0x12, 0x05, 0x08, 0x01})
	f.Add([]byte{})
	owner := newStoreOwner(f)
	s := &server{cfg: ServerConfig{Owner: owner, Receiver: owner, MaxRecvBatch: transport.DefaultMaxRecvBatch, Logger: slog.Default()}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr peerpb.ForwardRequest
		if proto.Unmarshal(b, &fr) == nil {
			resp, err := s.Forward(context.Background(), &fr)
			if err == nil && len(resp.GetResults()) != len(fr.GetChecks()) {
				t.Fatalf("%d results for %d checks", len(resp.GetResults()), len(fr.GetChecks()))
			}
		}
		var hr peerpb.HandoffRequest
		if proto.Unmarshal(b, &hr) == nil {
			s.Handoff(context.Background(), &hr)
		}
	})
}
