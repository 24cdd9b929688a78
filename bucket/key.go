package bucket

import (
	"hash/maphash"
	"math/bits"
)

// Key identifies a bucket by a 128-bit hash of (userID, action). The store
// keeps only the hash, never the strings: 16 bytes per key whatever the ids'
// length. Two different (userID, action) pairs share a bucket only if all
// 128 bits collide; for a million keys on one node the chance of any
// collision is about 1.5e-27, and a collision would make the two share one
// limit (fewer admissions in total, never more than either limit allows).
type Key struct{ Hi, Lo uint64 }

// KeyHasher maps (userID, action) to a Key. It must be deterministic for
// the life of a store, and the same on every node that hands keys to
// another. The parts must be length-prefixed or hashed separately so that
// ("a_b", "c") and ("a", "b_c") differ.
type KeyHasher func(userID, action string) Key

// NewKeyHasher returns a KeyHasher built on hash/maphash with random
// seeds: fast, and private to this process. It hashes the two ids as
// separate fields, so no separator is needed and ("a_b", "c") and
// ("a", "b_c") differ, then spreads the two 64-bit hashes over 128 bits by
// two different invertible mixes, so that two keys agree on both halves
// only if both of their field hashes agree.
func NewKeyHasher() KeyHasher {
	su, sa := maphash.MakeSeed(), maphash.MakeSeed()
	return func(userID, action string) Key {
		hu, ha := maphash.String(su, userID), maphash.String(sa, action)
		return Key{
			Hi: hu ^ bits.RotateLeft64(ha, 29),
			Lo: hu + ha*0xff51afd7ed558ccd,
		}
	}
}

// withAlgorithm separates a key's buckets under different algorithms. Hi is
// left alone so that placement by Hi (shards, ring partitions) does not
// depend on the algorithm.
func (k Key) withAlgorithm(a Algorithm) Key {
	k.Lo ^= uint64(a) * 0x9e3779b97f4a7c15
	return k
}
