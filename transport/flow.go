package transport

import "google.golang.org/grpc"

// flowWindow is the HTTP/2 flow-control window, per stream and per
// connection, of every gRPC connection between nodes and clients. Setting
// it at all turns off gRPC's dynamic window, whose bandwidth-delay
// estimator sends a PING whenever data arrives with no PING outstanding:
// on a busy connection with small messages that was one PING and one ack,
// a write and a read on each side, per round trip, more syscalls than the
// frames themselves (DESIGN.md §4). 1 MiB is 16 times gRPC's starting
// window, so the fixed window is no tighter than the dynamic one would be
// at a round trip of up to ~1 ms at 1 GB/s.
const flowWindow = 1 << 20

// FlowDialOptions fix the flow-control window of a client connection, as
// ServerOptions do for the server's side: no bandwidth-delay PINGs on a
// connection that carries many small messages. internal/peer and package
// client dial with them.
func FlowDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(flowWindow), grpc.WithInitialConnWindowSize(flowWindow)}
}
