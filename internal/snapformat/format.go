// Package snapformat is the format of a node's snapshot of its buckets
// (package snapshot keeps the bytes): Write encodes buckets in the relative
// form that handoff already uses, stamped with the wall-clock time, and
// Read decodes and refuses what it cannot trust. A node that restarts ages
// what it reads by the wall time it was down (Snapshot.Aged).
package snapformat

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"time"

	"github.com/drlimit/drl/internal/engine"
)

// Version is the format Write produces and the only one Read accepts.
const Version = 1

// magic opens every snapshot.
const magic = "DRLSNAP\n"

// Errors Read returns, for errors.Is. Each means the snapshot must not be
// trusted: the node sets it aside and starts empty.
var (
	ErrCorrupt  = errors.New("snapshot: corrupt")
	ErrVersion  = errors.New("snapshot: unknown format version")
	ErrTooLarge = errors.New("snapshot: too large")
)

// Snapshot is a node's buckets at one moment.
type Snapshot struct {
	// Taken is the wall-clock time the snapshot describes: every bucket's
	// times are offsets from it.
	Taken time.Time
	// Buckets are in relative form (engine.Moved).
	Buckets []engine.Moved
}

// Aged returns the buckets as they are at now: aged by the wall time since
// Taken, never by less than zero (a clock that stepped back spends
// nothing) and with buckets that are fresh by now dropped (a clock that
// leapt forward grants at most a fresh bucket).
func (s Snapshot) Aged(now time.Time) []engine.Moved {
	down := now.Sub(s.Taken)
	out := make([]engine.Moved, 0, len(s.Buckets))
	for _, m := range s.Buckets {
		if aged, ok := m.Aged(down); ok {
			out = append(out, aged)
		}
	}
	return out
}

// The encoding, all integers little-endian or varints:
//
//	header   magic (8 bytes) | version uint32 | reserved uint32 (0)
//	bucket   1 | key hi uint64 | key lo uint64 | A, B, C, FreshIn varint |
//	         log length uvarint | (At varint, N varint) per log entry
//	trailer  0 | bucket count uvarint | Taken (Unix ns) varint |
//	         CRC-32C of every byte before it, uint32
const (
	tagEnd    = 0
	tagBucket = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Write encodes the buckets buckets yields, then stamps the snapshot with
// now() read after the last one. Each bucket must be relative to a moment
// no later than that stamp (bucket.Store.Buckets is), so a restore ages
// each bucket by at most the time that really passed.
func Write(w io.Writer, buckets iter.Seq[engine.Moved], now func() time.Time) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	var buf [binary.MaxVarintLen64*6 + 17]byte
	h := append(buf[:0], magic...)
	h = binary.LittleEndian.AppendUint32(h, Version)
	h = binary.LittleEndian.AppendUint32(h, 0)
	bw.Write(h)
	var count uint64
	for m := range buckets {
		b := append(buf[:0], tagBucket)
		b = binary.LittleEndian.AppendUint64(b, m.Key.Hi)
		b = binary.LittleEndian.AppendUint64(b, m.Key.Lo)
		b = binary.AppendVarint(b, m.A)
		b = binary.AppendVarint(b, m.B)
		b = binary.AppendVarint(b, m.C)
		b = binary.AppendVarint(b, int64(m.FreshIn))
		b = binary.AppendUvarint(b, uint64(len(m.Log)))
		bw.Write(b)
		for _, e := range m.Log {
			b = binary.AppendVarint(buf[:0], int64(e.At))
			b = binary.AppendVarint(b, e.N)
			bw.Write(b)
		}
		if _, err := bw.Write(nil); err != nil {
			// The writer failed (a full disk): stop copying the store.
			return fmt.Errorf("snapshot: write: %w", err)
		}
		count++
	}
	t := append(buf[:0], tagEnd)
	t = binary.AppendUvarint(t, count)
	t = binary.AppendVarint(t, now().UnixNano())
	bw.Write(t)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(buf[:0], crc.Sum32())); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	return nil
}

// Limits bounds what Read accepts.
type Limits struct {
	// MaxBytes bounds the encoded size. Default 1 GiB.
	MaxBytes int64
	// MaxBuckets bounds the buckets. Default 10 million.
	MaxBuckets int
}

// Default limits.
const (
	DefaultMaxBytes   = 1 << 30
	DefaultMaxBuckets = 10_000_000
)

// Read decodes a snapshot Write wrote. It returns an error wrapping
// ErrCorrupt, ErrVersion or ErrTooLarge for anything else: a truncated,
// damaged, foreign or oversized input is never half-trusted, since the
// checksum is verified before a single bucket is decoded.
func Read(r io.Reader, lim Limits) (Snapshot, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	if lim.MaxBuckets <= 0 {
		lim.MaxBuckets = DefaultMaxBuckets
	}
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: read: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return Snapshot{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	if len(data) < len(magic)+8 || string(data[:len(magic)]) != magic {
		return Snapshot{}, fmt.Errorf("%w: not a drl snapshot", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != Version {
		return Snapshot{}, fmt.Errorf("%w: %d, this node reads %d", ErrVersion, v, Version)
	}
	if len(data) < 16+4 {
		return Snapshot{}, fmt.Errorf("%w: truncated at %d bytes", ErrCorrupt, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return Snapshot{}, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", ErrCorrupt)
	}
	if binary.LittleEndian.Uint32(body[12:]) != 0 {
		return Snapshot{}, fmt.Errorf("%w: reserved header bits set", ErrCorrupt)
	}
	d := decoder{buf: body[16:]}
	snap, err := d.snapshot(lim.MaxBuckets)
	if err != nil {
		return Snapshot{}, err
	}
	return snap, nil
}

// errShort is what a decoder says when its input ends inside a field.
var errShort = fmt.Errorf("%w: truncated", ErrCorrupt)

// decoder reads fields off the front of buf.
type decoder struct {
	buf []byte
}

func (d *decoder) byte() (byte, error) {
	if len(d.buf) == 0 {
		return 0, errShort
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b, nil
}

func (d *decoder) uint64() (uint64, error) {
	if len(d.buf) < 8 {
		return 0, errShort
	}
	v := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v, nil
}

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.buf)
	if err := d.advance(n); err != nil {
		return 0, err
	}
	return v, nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.buf)
	if err := d.advance(n); err != nil {
		return 0, err
	}
	return v, nil
}

// advance steps over a varint of n bytes. It refuses one Write would not
// have written (a longer form of a smaller number, ending in a zero
// byte), so that every accepted snapshot has one encoding.
func (d *decoder) advance(n int) error {
	if n <= 0 || n > 1 && d.buf[n-1] == 0 {
		return fmt.Errorf("%w: bad varint", ErrCorrupt)
	}
	d.buf = d.buf[n:]
	return nil
}

func (d *decoder) snapshot(maxBuckets int) (Snapshot, error) {
	var snap Snapshot
	for {
		tag, err := d.byte()
		if err != nil {
			return Snapshot{}, err
		}
		if tag == tagEnd {
			break
		}
		if tag != tagBucket {
			return Snapshot{}, fmt.Errorf("%w: unknown record %d", ErrCorrupt, tag)
		}
		if len(snap.Buckets) == maxBuckets {
			return Snapshot{}, fmt.Errorf("%w: more than %d buckets", ErrTooLarge, maxBuckets)
		}
		m, err := d.bucket()
		if err != nil {
			return Snapshot{}, err
		}
		snap.Buckets = append(snap.Buckets, m)
	}
	count, err := d.uvarint()
	if err != nil {
		return Snapshot{}, err
	}
	if count != uint64(len(snap.Buckets)) {
		return Snapshot{}, fmt.Errorf("%w: %d buckets, the trailer says %d", ErrCorrupt, len(snap.Buckets), count)
	}
	taken, err := d.varint()
	if err != nil {
		return Snapshot{}, err
	}
	if len(d.buf) != 0 {
		return Snapshot{}, fmt.Errorf("%w: %d bytes after the trailer", ErrCorrupt, len(d.buf))
	}
	snap.Taken = time.Unix(0, taken)
	return snap, nil
}

func (d *decoder) bucket() (engine.Moved, error) {
	var m engine.Moved
	var err error
	if m.Key.Hi, err = d.uint64(); err != nil {
		return m, err
	}
	if m.Key.Lo, err = d.uint64(); err != nil {
		return m, err
	}
	for _, f := range []*int64{&m.A, &m.B, &m.C, (*int64)(&m.FreshIn)} {
		if *f, err = d.varint(); err != nil {
			return m, err
		}
	}
	if !m.Algorithm().Known() || m.FreshIn <= 0 {
		return m, fmt.Errorf("%w: bucket %x: algorithm %d, fresh in %v", ErrCorrupt, m.Key.Hi, m.Algorithm(), m.FreshIn)
	}
	n, err := d.uvarint()
	if err != nil {
		return m, err
	}
	// Every entry takes at least two bytes: a count past what the rest of
	// the input holds is damage, not a reason to allocate.
	if n > uint64(len(d.buf))/2 {
		return m, fmt.Errorf("%w: bucket %x claims %d log entries", ErrCorrupt, m.Key.Hi, n)
	}
	if n > 0 {
		m.Log = make([]engine.LogEntry, 0, n)
	}
	for range n {
		at, err := d.varint()
		if err != nil {
			return m, err
		}
		hits, err := d.varint()
		if err != nil {
			return m, err
		}
		if hits <= 0 || len(m.Log) > 0 && time.Duration(at) < m.Log[len(m.Log)-1].At {
			return m, fmt.Errorf("%w: bucket %x: log entry of %d hits at %v out of order", ErrCorrupt, m.Key.Hi, hits, time.Duration(at))
		}
		m.Log = append(m.Log, engine.LogEntry{At: time.Duration(at), N: hits})
	}
	return m, nil
}
