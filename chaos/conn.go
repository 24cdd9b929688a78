package chaos

import (
	"net"
	"os"
	"sync"
	"time"
)

// shapedConn is one stream between two nodes, wrapped by the side that
// dialed it: what it writes travels the link from -> to, what it reads
// travels to -> from. Each segment is held for its link's latency (plus a
// retransmission timeout if it is "lost") and while the link is cut, and
// segments keep their order, as TCP's do.
type shapedConn struct {
	net.Conn
	nw       *Network
	from, to string

	out  chan segment  // written by Write, sent by the writer goroutine
	in   chan segment  // read by the reader goroutine, taken by Read
	done chan struct{} // closed by Close; the loops end on it

	closeOnce sync.Once

	// mu guards the fields below, Read's state.
	mu           sync.Mutex
	pending      []byte   // the rest of a segment Read delivered
	head         *segment // a segment Read took but could not deliver yet
	readErr      error
	readDeadline time.Time
	lastOut      time.Time // due time of the last written segment
}

type segment struct {
	data []byte
	due  time.Time
	err  error // the end of the stream (reader side only)
}

// queueLen bounds the segments held in each direction: a writer blocks
// once this many wait, as a full socket buffer would block it.
const queueLen = 256

func shape(c net.Conn, nw *Network, from, to string) *shapedConn {
	s := &shapedConn{Conn: c, nw: nw, from: from, to: to,
		out: make(chan segment, queueLen), in: make(chan segment, queueLen), done: make(chan struct{})}
	go s.writeLoop()
	go s.readLoop()
	return s
}

// due is when a segment sent now on from -> to arrives, never before the
// one sent ahead of it.
func (s *shapedConn) due(from, to string, last *time.Time) time.Time {
	l, _ := s.nw.link(from, to)
	d, lost := s.nw.delay(from, to, l)
	if lost {
		d += RetransmitTimeout
	}
	t := time.Now().Add(d)
	if t.Before(*last) {
		t = *last
	}
	*last = t
	return t
}

func (s *shapedConn) Write(b []byte) (int, error) {
	s.mu.Lock()
	seg := segment{data: append([]byte(nil), b...), due: s.due(s.from, s.to, &s.lastOut)}
	s.mu.Unlock()
	select {
	case s.out <- seg:
		return len(b), nil
	case <-s.done:
		return 0, net.ErrClosed
	}
}

// writeLoop sends the written segments when they are due and the link is
// up. It ends when s closes.
func (s *shapedConn) writeLoop() {
	for {
		select {
		case seg := <-s.out:
			if !s.hold(s.from, s.to, seg.due, time.Time{}) {
				return
			}
			if _, err := s.Conn.Write(seg.data); err != nil {
				s.Close()
				return
			}
		case <-s.done:
			return
		}
	}
}

// readLoop reads the real connection and queues what arrives with its due
// time. It ends when the connection does.
func (s *shapedConn) readLoop() {
	var last time.Time
	for {
		buf := make([]byte, 32<<10)
		n, err := s.Conn.Read(buf)
		seg := segment{data: buf[:n], due: s.due(s.to, s.from, &last), err: err}
		select {
		case s.in <- seg:
		case <-s.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// hold waits until due and then while the link from -> to is cut. It
// reports false if the connection closed first, and stops at deadline
// (when not zero) with false too.
func (s *shapedConn) hold(from, to string, due, deadline time.Time) bool {
	for {
		l, changed := s.nw.link(from, to)
		wait := time.Until(due)
		if !l.Cut && wait <= 0 {
			return true
		}
		var timer <-chan time.Time
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		var expire <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-timer:
		case <-changed:
		case <-expire:
			return false
		case <-s.done:
			return false
		}
	}
}

func (s *shapedConn) Read(b []byte) (int, error) {
	s.mu.Lock()
	if len(s.pending) > 0 {
		n := copy(b, s.pending)
		s.pending = s.pending[n:]
		s.mu.Unlock()
		return n, nil
	}
	if s.readErr != nil {
		err := s.readErr
		s.mu.Unlock()
		return 0, err
	}
	deadline, head := s.readDeadline, s.head
	s.head = nil
	s.mu.Unlock()

	if head == nil {
		var expire <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			expire = t.C
		}
		select {
		case seg := <-s.in:
			head = &seg
		case <-expire:
			return 0, os.ErrDeadlineExceeded
		case <-s.done:
			return 0, net.ErrClosed
		}
	}
	if !s.hold(s.to, s.from, head.due, deadline) {
		// Still in flight at the deadline: the next Read waits for it
		// again, cut links included.
		s.mu.Lock()
		s.head = head
		s.mu.Unlock()
		select {
		case <-s.done:
			return 0, net.ErrClosed
		default:
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(b, head.data)
	s.mu.Lock()
	s.pending, s.readErr = head.data[n:], head.err
	s.mu.Unlock()
	if n == 0 && head.err != nil {
		return 0, head.err
	}
	return n, nil
}

// Deadlines apply to what the application waits for: reads. Writes
// return at once (the segment is queued), so write deadlines do nothing.
func (s *shapedConn) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

func (s *shapedConn) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.readDeadline = t
	s.mu.Unlock()
	return nil
}

func (s *shapedConn) SetWriteDeadline(time.Time) error { return nil }

func (s *shapedConn) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done) // ends writeLoop, and readLoop with the conn below
		err = s.Conn.Close()
	})
	return err
}
