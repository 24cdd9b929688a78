package peer

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

// A ForwardStream frame carries its checks and results as fixed-size
// records in one bytes field (internal/peerpb/drl_peer.proto, ForwardFrame) instead of
// repeated messages: protobuf then decodes a frame into one byte slice,
// whatever its length, and these functions read and write the records in
// place, so neither side allocates per check.
const (
	checkRecordSize  = 64
	resultRecordSize = 80
)

var le = binary.LittleEndian

// appendCheck appends c's record to buf.
func appendCheck(buf []byte, c OwnedCheck) []byte {
	var r [checkRecordSize]byte
	le.PutUint64(r[0:], c.Key.Hi)
	le.PutUint64(r[8:], c.Key.Lo)
	le.PutUint64(r[16:], uint64(c.Request.Limit))
	le.PutUint64(r[24:], uint64(c.Request.Window))
	le.PutUint64(r[32:], uint64(c.Request.Burst))
	le.PutUint64(r[40:], uint64(c.Request.Hits))
	le.PutUint32(r[48:], uint32(c.Count))
	le.PutUint32(r[52:], uint32(c.Lease))
	r[56] = byte(c.Request.Algorithm)
	r[57] = byte(c.Mode)
	if c.Request.DryRun {
		r[58] = 1
	}
	return append(buf, r[:]...)
}

// decodeChecks decodes the records in b into dst (reusing its capacity)
// and returns it. It checks what the unary Forward checks: at most maxN
// records, a count of 1 to maxN, a known mode; a lease is capped at maxN.
// Anything malformed is an error, never a panic.
func decodeChecks(b []byte, dst []OwnedCheck, maxN int) ([]OwnedCheck, error) {
	if len(b)%checkRecordSize != 0 {
		return dst[:0], fmt.Errorf("peer: frame of %d bytes is not a whole number of %d-byte checks", len(b), checkRecordSize)
	}
	n := len(b) / checkRecordSize
	if n > maxN {
		return dst[:0], fmt.Errorf("peer: %d checks in one frame, more than %d", n, maxN)
	}
	if cap(dst) < n {
		dst = make([]OwnedCheck, n)
	}
	dst = dst[:n]
	for i := range dst {
		r := b[i*checkRecordSize : (i+1)*checkRecordSize]
		count, mode, flags := le.Uint32(r[48:]), r[57], r[58]
		if count < 1 || count > uint32(maxN) || mode > byte(ModeProxied) || flags > 1 || le.Uint32(r[59:63]) != 0 || r[63] != 0 {
			return dst[:0], fmt.Errorf("peer: check %d: count %d, mode %d, flags %d or padding out of range", i, count, mode, flags)
		}
		dst[i] = OwnedCheck{
			Key: bucket.Key{Hi: le.Uint64(r[0:]), Lo: le.Uint64(r[8:])},
			Request: bucket.Request{
				Limit:     int64(le.Uint64(r[16:])),
				Window:    time.Duration(le.Uint64(r[24:])),
				Burst:     int64(le.Uint64(r[32:])),
				Hits:      int64(le.Uint64(r[40:])),
				Algorithm: bucket.Algorithm(r[56]),
				DryRun:    flags == 1,
			},
			Count: int(count),
			Mode:  Mode(mode),
			Lease: int(min(le.Uint32(r[52:]), uint32(maxN))),
		}
	}
	return dst, nil
}

// wireResult is one decoded result record.
type wireResult struct {
	code         drlv1.Code
	admitted     int
	leased       int
	last, denied bucket.Decision
}

// appendResult appends the record of r, the answer to count checks, to buf.
func appendResult(buf []byte, r OwnedResult, count int) []byte {
	var rec [resultRecordSize]byte
	rec[0] = byte(transport.WireCode(r.Err))
	if r.Err == nil {
		le.PutUint32(rec[4:], uint32(r.Repeated.Admitted))
		le.PutUint32(rec[8:], uint32(r.Leased))
		if r.Repeated.Admitted > 0 {
			putDecision(rec[16:48], r.Repeated.LastAdmitted)
			if r.Repeated.LastAdmitted.Allowed {
				rec[1] |= 1
			}
			rec[2] = byte(r.Repeated.LastAdmitted.DecidedBy)
		}
		if r.Repeated.Admitted < count {
			putDecision(rec[48:80], r.Repeated.Denied)
			if r.Repeated.Denied.Allowed {
				rec[1] |= 2
			}
			rec[3] = byte(r.Repeated.Denied.DecidedBy)
		}
	}
	return append(buf, rec[:]...)
}

func putDecision(b []byte, d bucket.Decision) {
	le.PutUint64(b[0:], uint64(d.Limit))
	le.PutUint64(b[8:], uint64(d.Remaining))
	le.PutUint64(b[16:], uint64(d.ResetAfter))
	le.PutUint64(b[24:], uint64(d.RetryAfter))
}

func decision(b []byte, allowed bool) bucket.Decision {
	return bucket.Decision{
		Allowed:    allowed,
		Limit:      int64(le.Uint64(b[0:])),
		Remaining:  int64(le.Uint64(b[8:])),
		ResetAfter: time.Duration(le.Uint64(b[16:])),
		RetryAfter: time.Duration(le.Uint64(b[24:])),
	}
}

// decidedBy reads a record's decided_by byte: 0 from a member too old to
// say, and a value this member does not know (from a newer one) is
// unknown too.
func decidedBy(b byte) bucket.DecidedBy {
	if b > byte(bucket.DecidedByFailPolicy) {
		return bucket.DecidedByUnknown
	}
	return bucket.DecidedBy(b)
}

// checkResults reports whether b holds exactly n result records.
func checkResults(b []byte, n int) error {
	if len(b) != n*resultRecordSize {
		return fmt.Errorf("peer: %d bytes of results for %d checks", len(b), n)
	}
	return nil
}

// decodeResult decodes the i-th record of b, which checkResults has
// vouched for. A record claiming more admitted checks than count, which
// only a broken peer sends, is an internal error.
func decodeResult(b []byte, i, count int) wireResult {
	r := b[i*resultRecordSize : (i+1)*resultRecordSize]
	w := wireResult{
		code:     drlv1.Code(r[0]),
		admitted: int(le.Uint32(r[4:])),
		leased:   int(le.Uint32(r[8:])),
		last:     decision(r[16:48], r[1]&1 != 0),
		denied:   decision(r[48:80], r[1]&2 != 0),
	}
	w.last.DecidedBy, w.denied.DecidedBy = decidedBy(r[2]), decidedBy(r[3])
	if w.admitted > count || r[1] > 3 {
		w.code = drlv1.Code_CODE_INTERNAL
	}
	return w
}
