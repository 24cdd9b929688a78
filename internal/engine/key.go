package engine

import (
	"hash/maphash"
	"math/bits"
)

// Key identifies a bucket by a 128-bit hash of (userID, action). The store
// keeps only the hash, never the strings: 16 bytes per key whatever the ids'
// length. Two different (userID, action) pairs share a bucket only if all
// 125 bits collide (three bits name the algorithm); for a million keys on
// one node the chance of any collision is about 1.2e-26, and a collision would make the two share one
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
// two different mixes. Lo goes through a full avalanche: the store picks a
// shard by Hi's top bits and a slot by Lo's top bits, so within one shard
// those must not be correlated (with Lo a plain sum, they were, and one
// shard's keys crowded into a 256th of its table).
func NewKeyHasher() KeyHasher {
	su, sa := maphash.MakeSeed(), maphash.MakeSeed()
	return func(userID, action string) Key {
		return KeyOf(maphash.String(su, userID), maphash.String(sa, action))
	}
}

// KeyOf builds a Key from independent 64-bit hashes of the user id and of
// the action, for hashers built on other hash functions.
func KeyOf(userHash, actionHash uint64) Key {
	return Key{
		Hi: userHash ^ bits.RotateLeft64(actionHash, 29),
		Lo: avalanche(userHash + actionHash*0x9e3779b97f4a7c15),
	}
}

// withAlgorithm separates a key's buckets under different algorithms by
// writing the algorithm into Lo's low three bits, where the store can read
// it back when it moves the key to another node (Extract). That leaves
// 125 bits of hash. Hi is left alone so that placement by Hi (shards, ring
// partitions) does not depend on the algorithm.
func (k Key) withAlgorithm(a Algorithm) Key {
	k.Lo = k.Lo&^algorithmBits | uint64(a)
	return k
}

const algorithmBits = 7 // numAlgorithms must stay at most 8

// algorithm returns the algorithm written by withAlgorithm.
func (k Key) algorithm() Algorithm { return Algorithm(k.Lo & algorithmBits) }

// avalanche is MurmurHash3's 64-bit finalizer: a bijection in which every
// input bit flips each output bit with probability about one half.
func avalanche(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
