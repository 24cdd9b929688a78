package snapformat

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"
	"time"
)

// FuzzRead feeds Read arbitrary snapshot bodies, each sealed with its
// checksum so that the fuzzer reaches the decoder rather than the
// checksum test (TestReadRefusesDamage covers that). Read never panics,
// and whatever it accepts writes back to the very same bytes: nothing in
// an accepted file was ignored or read two ways. Seeds are in
// testdata/fuzz/FuzzRead: bodies without their checksum.
func FuzzRead(f *testing.F) {
	good := encode(f, sample(12))
	f.Add(good[:len(good)-4])
	f.Add(good[:len(good)/2])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, body []byte) {
		data := binary.LittleEndian.AppendUint32(slices.Clone(body), crc32.Checksum(body, castagnoli))
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
