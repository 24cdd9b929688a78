package snapformat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/snapshot"
)

var taken = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// sample returns n buckets of every algorithm, some with log entries.
func sample(n int) []engine.Moved {
	rng := rand.New(rand.NewPCG(1, 2))
	algs := bucket.Algorithms()
	out := make([]engine.Moved, n)
	for i := range out {
		alg := algs[i%len(algs)]
		m := engine.Moved{Key: bucket.Key{Hi: rng.Uint64(), Lo: rng.Uint64()&^7 | uint64(alg)},
			A: -rng.Int64N(1e12), B: rng.Int64N(1000), C: rng.Int64N(1e9), FreshIn: time.Duration(1 + rng.Int64N(1e12))}
		if alg == bucket.SlidingLog {
			m.A, m.B, m.C = 0, 0, 0
			for j := range 1 + i%4 {
				m.Log = append(m.Log, engine.LogEntry{At: time.Duration(-1e9 * (4 - j)), N: int64(1 + j)})
			}
		}
		out[i] = m
	}
	return out
}

func encode(t testing.TB, buckets []engine.Moved) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, slices.Values(buckets), func() time.Time { return taken }); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000} {
		in := sample(n)
		got, err := Read(bytes.NewReader(encode(t, in)), Limits{})
		if err != nil {
			t.Fatalf("%d buckets: %v", n, err)
		}
		if !got.Taken.Equal(taken) || len(got.Buckets) != n || n > 0 && !reflect.DeepEqual(got.Buckets, in) {
			t.Fatalf("%d buckets: read back %d taken %v", n, len(got.Buckets), got.Taken)
		}
	}
}

// Every damaged input is refused with a typed error, and nothing of it is
// returned: cut short anywhere, one byte changed anywhere, a newer format,
// or more than the limits allow.
func TestReadRefusesDamage(t *testing.T) {
	good := encode(t, sample(20))
	for i := range len(good) {
		if _, err := Read(bytes.NewReader(good[:i]), Limits{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d of %d bytes: %v, want ErrCorrupt", i, len(good), err)
		}
	}
	for i := range len(good) {
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		snap, err := Read(bytes.NewReader(bad), Limits{})
		if err == nil || snap.Buckets != nil {
			t.Fatalf("byte %d flipped: read %d buckets, err %v", i, len(snap.Buckets), err)
		}
	}
	if _, err := Read(bytes.NewReader(append(bytes.Clone(good), 0)), Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: %v", err)
	}
	newer := bytes.Clone(good)
	binary.LittleEndian.PutUint32(newer[8:], Version+1)
	if _, err := Read(bytes.NewReader(newer), Limits{}); !errors.Is(err, ErrVersion) {
		t.Errorf("version %d: %v, want ErrVersion", Version+1, err)
	}
	if _, err := Read(bytes.NewReader(good), Limits{MaxBuckets: 19}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("20 buckets with at most 19: %v, want ErrTooLarge", err)
	}
	if _, err := Read(bytes.NewReader(good), Limits{MaxBytes: int64(len(good) / 2)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("%d bytes with at most half: %v, want ErrTooLarge", len(good), err)
	}
	if _, err := Read(bytes.NewReader([]byte("{\"not\": \"a snapshot\"}")), Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("JSON: %v, want ErrCorrupt", err)
	}
}

// The wall time a node was down ages its buckets, never by less than zero
// and never into more than a fresh bucket.
func TestAged(t *testing.T) {
	m := engine.Moved{Key: bucket.Key{Hi: 1, Lo: uint64(bucket.FixedWindow)}, A: -int64(time.Minute), B: 700, FreshIn: time.Hour - time.Minute}
	s := Snapshot{Taken: taken, Buckets: []engine.Moved{m}}
	if got := s.Aged(taken.Add(-time.Hour)); len(got) != 1 || got[0].A != m.A || got[0].FreshIn != m.FreshIn {
		t.Errorf("clock stepped back an hour: %+v, want the bucket unchanged", got)
	}
	if got := s.Aged(taken.Add(10 * time.Minute)); len(got) != 1 || got[0].A != -int64(11*time.Minute) || got[0].B != 700 {
		t.Errorf("10 minutes down: %+v", got)
	}
	if got := s.Aged(taken.Add(time.Hour)); len(got) != 0 {
		t.Errorf("an hour down: %+v, want every bucket fresh", got)
	}
}

// BenchmarkWrite and BenchmarkRead measure a snapshot of 1M buckets: ns
// and bytes per bucket (DESIGN.md §5).
func BenchmarkWrite(b *testing.B) {
	in := sample(1_000_000)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, slices.Values(in), time.Now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/float64(len(in)), "bytes/bucket")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(in)), "ns/bucket")
}

func BenchmarkRead(b *testing.B) {
	enc := encode(b, sample(1_000_000))
	for b.Loop() {
		if _, err := Read(bytes.NewReader(enc), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/bucket")
}

// BenchmarkSaveStore measures what a node's save costs (DESIGN.md §5):
// copying 1M strict-window buckets out of a store, encoding them, and
// writing, syncing and renaming the file.
func BenchmarkSaveStore(b *testing.B) {
	const keys = 1_000_000
	store, err := engine.New(bucket.StoreConfig{MaxEntries: 2 * keys, SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	for i := range keys {
		if _, err := store.Check(bucket.Request{UserID: strconv.Itoa(i), Action: "login", Limit: 1000, Window: time.Hour, Hits: 7}); err != nil {
			b.Fatal(err)
		}
	}
	dir, err := snapshot.NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if err := dir.Save(ctx, func(w io.Writer) error { return Write(w, store.Buckets(), time.Now) }); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(dir.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/keys, "bytes/key")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1M-keys")
}
