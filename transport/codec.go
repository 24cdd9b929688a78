package transport

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/drlimit/drl/api/drlv1"
)

// vtMessage is a message with the code that protoc-gen-go-vtproto
// generates for it (api/gen.sh): marshaling without reflection.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
}

// codec is gRPC's proto codec, with the generated code for the messages
// that have it (the public API's): the same bytes on the wire, written
// and read without protobuf's reflection, which was a sixth of a node's
// CPU answering CheckBatch calls and a tenth of a batching client's
// (DESIGN.md §5). Other messages (the peer protocol's, health checks) go
// through gRPC's own.
type codec struct{ fallback encoding.CodecV2 }

// Name is the content subtype, unchanged: to a peer this is the proto
// codec.
func (codec) Name() string { return proto.Name }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtMessage)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	// The generated code copies what it keeps (strings, bytes), so data
	// may be freed once this returns.
	if len(data) == 1 {
		return m.UnmarshalVT(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return m.UnmarshalVT(buf.ReadOnlyData())
}

// theCodec is the one codec; its fallback is gRPC's registered proto codec.
var theCodec = codec{fallback: encoding.GetCodecV2(proto.Name)}

// CodecDialOption makes a connection's calls write and read the public
// API's messages with their generated code; package client dials with it.
// ServerOptions include the server's side.
func CodecDialOption() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.ForceCodecV2(theCodec))
}

// The messages of a check; api/gen.sh must keep generating their code.
var (
	_ vtMessage = (*drlv1.CheckRequest)(nil)
	_ vtMessage = (*drlv1.CheckResponse)(nil)
	_ vtMessage = (*drlv1.CheckBatchRequest)(nil)
	_ vtMessage = (*drlv1.CheckBatchResponse)(nil)
	_ vtMessage = (*drlv1.CheckAllRequest)(nil)
	_ vtMessage = (*drlv1.CheckAllResponse)(nil)
)
