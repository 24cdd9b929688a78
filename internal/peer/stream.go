package peer

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/metadata"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/internal/peerpb"
)

// fromKey is the ForwardStream metadata key naming the sending member.
const fromKey = "drl-peer-from"

// streamWorkers bounds the frames of one stream that the owner applies at
// once. The owner may block on one (a check that crosses an ownership
// change waits for a handoff), and the frames behind it must not wait too:
// unary Forward calls never did.
const streamWorkers = 8

// frameWork is one frame's decoded checks, results and answer; reused
// through server.frames so that a frame allocates nothing per check.
type frameWork struct {
	in      peerpb.ForwardFrame
	out     peerpb.ForwardFrameResult
	checks  []OwnedCheck
	results []OwnedResult
}

// ForwardStream answers the frames of one sending member until it closes
// its side or the stream breaks. Up to streamWorkers goroutines apply its
// frames, started as frames find none idle and kept for the stream's
// life, all joined before it returns: a goroutine per frame cost a start
// and, for the owner's deep call chain, a stack growth on every frame.
func (s *server) ForwardStream(st peerpb.Peer_ForwardStreamServer) error {
	ctx := st.Context()
	from := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(fromKey); len(v) > 0 {
			from = v[0]
		}
	}
	var (
		workers sync.WaitGroup
		started int
		// work hands a frame to an idle worker; closed when the stream
		// ends, which stops the workers.
		work = make(chan *frameWork)
		// sendMu serializes Send, which gRPC allows on one goroutine at a
		// time.
		sendMu sync.Mutex
	)
	defer func() {
		close(work)
		workers.Wait()
	}()
	apply := func(w *frameWork) {
		for ok := true; ok; w, ok = <-work {
			s.answerFrame(ctx, from, w)
			sendMu.Lock()
			// An error means the stream broke; RecvMsg returns it too.
			_ = st.Send(&w.out)
			sendMu.Unlock()
			s.frames.Put(w)
		}
	}
	for {
		w := s.frames.Get().(*frameWork)
		if err := st.RecvMsg(&w.in); err != nil {
			s.frames.Put(w)
			if errors.Is(err, io.EOF) {
				return nil // the sender is done and every frame is answered below
			}
			return err
		}
		select {
		case work <- w: // an idle worker takes it
			continue
		default:
		}
		if started < streamWorkers {
			started++
			workers.Go(func() { apply(w) })
			continue
		}
		// Back-pressure: with streamWorkers frames being applied, read no
		// more; HTTP/2 flow control then holds the sender.
		work <- w
	}
}

// answerFrame applies the checks of w.in and writes w.out, reusing w's
// buffers: no allocation per check.
func (s *server) answerFrame(ctx context.Context, from string, w *frameWork) {
	w.out.Batch = w.in.GetBatch()
	w.out.Results = w.out.Results[:0]
	checks, err := decodeChecks(w.in.GetChecks(), w.checks, s.cfg.MaxRecvBatch)
	w.checks = checks
	if err != nil {
		w.out.Code, w.out.Message = drlv1.Code_CODE_INVALID_ARGUMENT, err.Error()
		return
	}
	w.out.Code, w.out.Message = drlv1.Code_CODE_OK, ""
	if cap(w.results) < len(checks) {
		w.results = make([]OwnedResult, len(checks))
	}
	w.results = w.results[:len(checks)]
	clear(w.results)
	s.cfg.Owner.CheckOwned(ctx, checks, w.results)
	for i, r := range w.results {
		w.out.Results = appendResult(w.out.Results, r, checks[i].Count)
		if r.Err != nil {
			s.cfg.Logger.Debug("forwarded check failed", "peer", from, "err", r.Err)
		}
	}
	clear(w.results) // drop the errors' references until the next frame
}
