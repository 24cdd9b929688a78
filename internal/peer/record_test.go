package peer

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

var recordChecks = []OwnedCheck{
	{Key: bucket.Key{Hi: 1, Lo: 2}, Request: bucket.Request{Limit: 5, Window: time.Minute, Hits: 1}, Count: 3, Lease: 2},
	{Key: bucket.Key{Hi: ^uint64(0), Lo: 4}, Request: bucket.Request{Limit: 1, Window: time.Second, Burst: 7, Hits: -1,
		Algorithm: 4, DryRun: true}, Count: 1, Mode: ModeProxied},
}

func TestCheckRecordsRoundTrip(t *testing.T) {
	var buf []byte
	for _, c := range recordChecks {
		buf = appendCheck(buf, c)
	}
	got, err := decodeChecks(buf, nil, transport.DefaultMaxRecvBatch)
	if err != nil {
		t.Fatalf("decodeChecks: %v", err)
	}
	for i := range recordChecks {
		if got[i] != recordChecks[i] {
			t.Errorf("check %d = %+v, want %+v", i, got[i], recordChecks[i])
		}
	}
}

func TestResultRecordsRoundTrip(t *testing.T) {
	// What decided each answer travels with it: the entry node's answer
	// says what the owner said.
	last := bucket.Decision{Allowed: true, Limit: 5, Remaining: 2, ResetAfter: time.Second, RetryAfter: 0, DecidedBy: bucket.DecidedByOwner}
	denied := bucket.Decision{Limit: 5, ResetAfter: time.Minute, RetryAfter: -3, DecidedBy: bucket.DecidedByLease}
	for _, tc := range []struct {
		r     OwnedResult
		count int
		want  wireResult
	}{
		{OwnedResult{Repeated: engine.Repeated{Admitted: 2, LastAdmitted: last, Denied: denied}, Leased: 9}, 3,
			wireResult{code: drlv1.Code_CODE_OK, admitted: 2, leased: 9, last: last, denied: denied}},
		{OwnedResult{Repeated: engine.Repeated{Admitted: 1, LastAdmitted: last, Denied: denied}}, 1,
			wireResult{code: drlv1.Code_CODE_OK, admitted: 1, last: last}},
		{OwnedResult{Repeated: engine.Repeated{Denied: denied}}, 4,
			wireResult{code: drlv1.Code_CODE_OK, denied: denied}},
		{OwnedResult{Err: transport.ErrNotOwner}, 1, wireResult{code: drlv1.Code_CODE_NOT_OWNER}},
	} {
		buf := appendResult([]byte("x"), tc.r, tc.count)[1:]
		if err := checkResults(buf, 1); err != nil {
			t.Fatal(err)
		}
		if got := decodeResult(buf, 0, tc.count); got != tc.want {
			t.Errorf("decodeResult(appendResult(%+v)) = %+v, want %+v", tc.r, got, tc.want)
		}
	}
}

// The unary Forward's answers say what decided them too; a value this
// member does not know reads as unknown, which the node takes for the
// owner.
func TestPeerDecisionsSayWhoDecided(t *testing.T) {
	d := bucket.Decision{Allowed: true, Limit: 5, Remaining: 4, ResetAfter: time.Second, DecidedBy: bucket.DecidedByOwner}
	if got := decisionFromPeer(decisionToPeer(d)); got != d {
		t.Fatalf("decisionFromPeer(decisionToPeer(%+v)) = %+v", d, got)
	}
	m := decisionToPeer(d)
	m.DecidedBy = 99
	if got := decisionFromPeer(m); got.DecidedBy != bucket.DecidedByUnknown {
		t.Fatalf("decided_by 99 read as %v, want unknown", got.DecidedBy)
	}
}

// FuzzDecodeChecks decodes any bytes as a frame's check records: an error
// or checks within the limits, never a panic; and what decodes encodes back
// to the same records.
func FuzzDecodeChecks(f *testing.F) {
	var buf []byte
	for _, c := range recordChecks {
		buf = appendCheck(buf, c)
	}
	f.Add(buf)
	f.Add(buf[:checkRecordSize+1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxN = 8
		got, err := decodeChecks(b, nil, maxN)
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("decodeChecks failed (%v) but returned %d checks", err, len(got))
			}
			return
		}
		var again []byte
		for _, c := range got {
			if c.Count < 1 || c.Count > maxN || c.Lease < 0 || c.Lease > maxN || c.Mode > ModeProxied {
				t.Fatalf("decodeChecks gave %+v", c)
			}
			again = appendCheck(again, c)
		}
		if len(again) != len(b) {
			t.Fatalf("%d bytes decoded to %d checks, %d bytes again", len(b), len(got), len(again))
		}
		round, err := decodeChecks(again, nil, maxN)
		if err != nil || len(round) != len(got) {
			t.Fatalf("re-encoded checks: %v", err)
		}
		for i := range got {
			if round[i] != got[i] {
				t.Fatalf("check %d: %+v, then %+v", i, got[i], round[i])
			}
		}
	})
}

// FuzzDecodeResults reads any bytes as the results of n checks, each
// answering count, as a client would: an error or n results, never a panic.
func FuzzDecodeResults(f *testing.F) {
	r := OwnedResult{Repeated: engine.Repeated{Admitted: 1, LastAdmitted: bucket.Decision{Allowed: true, Limit: 3}}}
	f.Add(appendResult(appendResult(nil, r, 2), OwnedResult{Err: transport.ErrNotOwner}, 1), 2, 2)
	f.Add([]byte{0xff}, 1, 1)
	f.Fuzz(func(t *testing.T, b []byte, n, count int) {
		if n < 0 || n > 1024 || count < 1 {
			return
		}
		if checkResults(b, n) != nil {
			return
		}
		for i := range n {
			if w := decodeResult(b, i, count); w.code == drlv1.Code_CODE_OK && (w.admitted > count || w.admitted < 0) {
				t.Fatalf("result %d: %d admitted of %d", i, w.admitted, count)
			}
		}
	})
}

// A malformed frame is refused whole, with a reason, and answers nothing.
func TestAnswerFrameRefusesMalformed(t *testing.T) {
	s := newServer(ServerConfig{Owner: constOwner{}, MaxRecvBatch: 2, Logger: slog.Default()})
	var three []byte
	for range 3 {
		three = appendCheck(three, recordChecks[0])
	}
	bad := appendCheck(nil, recordChecks[0])
	bad[57] = 2 // mode
	for _, b := range [][]byte{three, bad, three[:10]} {
		w := &frameWork{in: peerpb.ForwardFrame{Batch: 7, Checks: b}}
		s.answerFrame(context.Background(), "b", w)
		if w.out.GetCode() != drlv1.Code_CODE_INVALID_ARGUMENT || w.out.GetBatch() != 7 || len(w.out.GetResults()) != 0 {
			t.Errorf("frame of %d bytes: code %v, batch %d, %d result bytes; want CODE_INVALID_ARGUMENT for batch 7",
				len(b), w.out.GetCode(), w.out.GetBatch(), len(w.out.GetResults()))
		}
		if err := transport.ErrorFromCode(w.out.GetCode(), w.out.GetMessage()); !errors.Is(err, bucket.ErrInvalidArgument) {
			t.Errorf("the client reads it as %v, want an invalid argument", err)
		}
	}
}

// streamFrame returns a ForwardFrame of n distinct checks, marshaled.
func streamFrame(tb testing.TB, n int) []byte {
	tb.Helper()
	var recs []byte
	for i := range n {
		c := recordChecks[0]
		c.Key.Lo = uint64(i)
		recs = appendCheck(recs, c)
	}
	b, err := proto.Marshal(&peerpb.ForwardFrame{Batch: 1, Checks: recs})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Once its buffers have grown, answering a frame allocates nothing at all.
func TestAnswerFrameAllocatesNothing(t *testing.T) {
	s := newServer(ServerConfig{Owner: constOwner{}, MaxRecvBatch: transport.DefaultMaxRecvBatch, Logger: slog.Default()})
	w := &frameWork{}
	if err := proto.Unmarshal(streamFrame(t, 256), &w.in); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { s.answerFrame(ctx, "b", w) }); n != 0 {
		t.Fatalf("answerFrame of 256 checks: %v allocations, want 0", n)
	}
}

// BenchmarkServerStreamItems is the owner's side of ForwardStream per
// forwarded check, with a trivial Owner: unmarshal a frame of 256 checks,
// decode the records, apply them, encode the results and marshal the
// answer, as ForwardStream does between RecvMsg and Send. One op is one
// check: allocs/op rounds the per-frame allocation (the frame's byte slice,
// which protobuf allocates when it decodes a bytes field) down to 0.
func BenchmarkServerStreamItems(b *testing.B) {
	const perFrame = 256
	s := newServer(ServerConfig{Owner: constOwner{}, MaxRecvBatch: transport.DefaultMaxRecvBatch, Logger: slog.Default()})
	frame := streamFrame(b, perFrame)
	w := &frameWork{}
	var out []byte
	ctx := context.Background()
	opts := proto.MarshalOptions{}
	b.ReportAllocs()
	b.SetBytes(checkRecordSize + resultRecordSize)
	b.ResetTimer()
	for i := 0; i < b.N; i += perFrame {
		if err := proto.Unmarshal(frame, &w.in); err != nil {
			b.Fatal(err)
		}
		s.answerFrame(ctx, "b", w)
		var err error
		if out, err = opts.MarshalAppend(out[:0], &w.out); err != nil {
			b.Fatal(err)
		}
	}
	if len(w.out.GetResults()) != perFrame*resultRecordSize {
		b.Fatalf("%d result bytes, want %d", len(w.out.GetResults()), perFrame*resultRecordSize)
	}
}

// BenchmarkServerUnaryItems is BenchmarkServerStreamItems for the unary
// Forward that the stream replaced: a message per check each way. One op
// is one check.
func BenchmarkServerUnaryItems(b *testing.B) {
	const perFrame = 256
	s := newServer(ServerConfig{Owner: constOwner{}, MaxRecvBatch: transport.DefaultMaxRecvBatch, Logger: slog.Default()})
	msg := &peerpb.ForwardRequest{From: "b"}
	for i := range perFrame {
		c := recordChecks[0]
		msg.Checks = append(msg.Checks, &peerpb.OwnedCheck{KeyHi: c.Key.Hi, KeyLo: uint64(i), Limit: c.Request.Limit,
			WindowNs: int64(c.Request.Window), Hits: c.Request.Hits, Count: uint32(c.Count), Lease: uint32(c.Lease)})
	}
	req, err := proto.Marshal(msg)
	if err != nil {
		b.Fatal(err)
	}
	var out []byte
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += perFrame {
		var in peerpb.ForwardRequest
		if err := proto.Unmarshal(req, &in); err != nil {
			b.Fatal(err)
		}
		resp, err := s.Forward(ctx, &in)
		if err != nil {
			b.Fatal(err)
		}
		if out, err = (proto.MarshalOptions{}).MarshalAppend(out[:0], resp); err != nil {
			b.Fatal(err)
		}
	}
}
