package bucket

import (
	"encoding/binary"
	"hash/maphash"
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

// NewKeyHasher returns a KeyHasher built on hash/maphash with two random
// seeds: fast, and private to this process.
func NewKeyHasher() KeyHasher {
	s1, s2 := maphash.MakeSeed(), maphash.MakeSeed()
	return func(userID, action string) Key {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(userID)))
		var h maphash.Hash
		h.SetSeed(s1)
		h.Write(n[:])
		h.WriteString(userID)
		h.WriteString(action)
		hi := h.Sum64()
		h.SetSeed(s2)
		h.Write(n[:])
		h.WriteString(userID)
		h.WriteString(action)
		return Key{Hi: hi, Lo: h.Sum64()}
	}
}

// withAlgorithm separates a key's buckets under different algorithms. Hi is
// left alone so that placement by Hi (shards, ring partitions) does not
// depend on the algorithm.
func (k Key) withAlgorithm(a Algorithm) Key {
	k.Lo ^= uint64(a) * 0x9e3779b97f4a7c15
	return k
}
