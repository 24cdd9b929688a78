package transport

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// The codec's bytes are protobuf's: what one writes the other reads back
// equal, for messages with generated code and for those without (which
// take gRPC's own codec), whole or split across buffers.
func TestCodecReadsAndWritesWhatProtobufDoes(t *testing.T) {
	hits := int64(3)
	big := &drlv1.CheckBatchRequest{}
	for i := range 200 { // above gRPC's pooling threshold: a pooled buffer
		big.Checks = append(big.Checks, &drlv1.CheckRequest{UserId: "user-" + string(rune('a'+i%26)), Action: "a", Limit: int64(i)})
	}
	for _, m := range []proto.Message{
		&drlv1.CheckRequest{UserId: "u", Action: "login", Limit: 5, Window: durationpb.New(90e9), Hits: &hits,
			Algorithm: "gcra", Burst: 2, FailPolicy: "closed", DryRun: true, Shadow: true},
		&drlv1.CheckRequest{}, // all defaults: zero bytes
		big,
		&drlv1.CheckBatchResponse{Results: []*drlv1.CheckResult{
			{Result: &drlv1.CheckResult_Decision{Decision: DecisionToProto(bucket.Decision{Allowed: true, Limit: 10, Remaining: 4, ResetAfter: 2e9, RetryAfter: 1})}},
			{Result: &drlv1.CheckResult_Error{Error: &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT, Message: "bad", Field: "limit"}}},
		}},
		&drlv1.RingState{Version: 7, RingId: 1 << 60, Partitions: 271, Members: []*drlv1.RingMember{{Name: "n0", GrpcAddr: "127.0.0.1:7947"}}},
		wrapperspb.String("no generated code: gRPC's codec"),
	} {
		out, err := theCodec.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%T): %v", m, err)
		}
		back := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(out.Materialize(), back); err != nil || !proto.Equal(back, m) {
			t.Errorf("%T: protobuf read the codec's bytes as %v, %v; want %v", m, back, err, m)
		}
		out.Free()

		wire, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range []mem.BufferSlice{
			{mem.SliceBuffer(wire)},
			{mem.SliceBuffer(wire[:len(wire)/2]), mem.SliceBuffer(wire[len(wire)/2:])},
		} {
			got := m.ProtoReflect().New().Interface()
			if err := theCodec.Unmarshal(data, got); err != nil || !proto.Equal(got, m) {
				t.Errorf("%T in %d buffers: the codec read protobuf's bytes as %v, %v; want %v", m, len(data), got, err, m)
			}
		}
	}
}

func TestCodecRejectsWhatProtobufRejects(t *testing.T) {
	for _, wire := range [][]byte{
		{0x0a, 0x05, 'u'},        // field 1, 5 bytes promised, 1 given
		{0x0a},                   // a tag and no length
		{0x22, 0x02, 0x08, 0x80}, // window: a varint cut short
	} {
		err := theCodec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, new(drlv1.CheckRequest))
		if err == nil {
			t.Errorf("% x: read without error", wire)
		}
		if proto.Unmarshal(wire, new(drlv1.CheckRequest)) == nil {
			t.Errorf("% x: protobuf reads it; the case tests nothing", wire)
		}
	}
}
