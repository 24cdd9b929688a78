package snapshot

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// FuzzRead feeds Read arbitrary bytes: it never panics, and whatever it
// accepts writes back to the very same bytes, so nothing in an accepted
// file was ignored. Seeds are in testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	good := encode(f, sample(12))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := Read(bytes.NewReader(data), Limits{MaxBytes: 1 << 20, MaxBuckets: 1000})
		if err != nil {
			if snap.Buckets != nil {
				t.Fatalf("error %v with %d buckets", err, len(snap.Buckets))
			}
			return
		}
		var again bytes.Buffer
		if err := Write(&again, slices.Values(snap.Buckets), func() time.Time { return snap.Taken }); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), data) {
			t.Fatalf("accepted %d bytes that write back as %d different ones", len(data), again.Len())
		}
	})
}
