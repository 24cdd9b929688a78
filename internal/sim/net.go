package sim

import (
	"math/rand/v2"
	"time"
)

// network is the virtual network between node slots: a base delay per
// link, and what faults add: cuts (counted, so that overlapping faults
// compose), extra delay and loss. Every link is FIFO, as a TCP stream is.
type network struct {
	r     *rand.Rand
	base  [][]time.Duration
	cut   [][]int
	extra [][]time.Duration
	loss  [][]float64
	last  [][]time.Duration // when the link last delivered: FIFO
}

func newNetwork(r *rand.Rand, slots int) *network {
	n := &network{r: r}
	n.base = make([][]time.Duration, slots)
	n.cut = make([][]int, slots)
	n.extra = make([][]time.Duration, slots)
	n.loss = make([][]float64, slots)
	n.last = make([][]time.Duration, slots)
	for a := range slots {
		n.base[a] = make([]time.Duration, slots)
		n.cut[a] = make([]int, slots)
		n.extra[a] = make([]time.Duration, slots)
		n.loss[a] = make([]float64, slots)
		n.last[a] = make([]time.Duration, slots)
		for b := range slots {
			n.base[a][b] = 200*time.Microsecond + time.Duration(r.Int64N(int64(1800*time.Microsecond)))
		}
	}
	return n
}

// rto is a stream's retransmission timeout (Linux's minimum).
const rto = 200 * time.Millisecond

// up reports whether a can reach b now.
func (n *network) up(a, b int) bool { return a == b || n.cut[a][b] == 0 }

// delay draws the delay of one message from a to b sent at now, or false
// if it is lost. A datagram (gossip) is lost to link loss; a stream's
// message (a check, a handoff) is retransmitted instead, an RTO later
// for each loss, and is lost only to a cut.
func (n *network) delay(a, b int, now time.Duration, datagram bool) (time.Duration, bool) {
	if a == b {
		return 0, true
	}
	if !n.up(a, b) {
		return 0, false
	}
	d := n.base[a][b] + n.extra[a][b]
	for range 3 {
		if n.loss[a][b] <= 0 || n.r.Float64() >= n.loss[a][b] {
			break
		}
		if datagram {
			return 0, false
		}
		d += rto
	}
	d += time.Duration(n.r.Int64N(int64(d/5) + 1))
	at := max(now+d, n.last[a][b])
	n.last[a][b] = at
	return at - now, true
}
