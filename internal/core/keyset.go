package core

import (
	"slices"
)

// KeyIndex is an immutable, sorted set of keys with an index, built by
// the core: this node's keys, shared with the snapshots it publishes
// (which the readers, IsMasterByKey, Status and the metrics, use without
// a lock), and on a relay every key a known peer holds too. A new one is built
// whenever the node's own key set changes; peers' key sets are kept as
// bitsets over it, so an election tests a bit rather than hashing a string.
type KeyIndex struct {
	List []string         // sorted
	Idx  map[string]int32 // key → position in list
	hash []uint64         // keyHash of each key, for Balance
}

// NoKeys is the index of a node without keys.
var NoKeys = &KeyIndex{}

// newKeyIndex indexes keys (a set, in any order; the slice is sorted in
// place and kept).
func newKeyIndex(keys []string) *KeyIndex {
	slices.Sort(keys)
	ki := &KeyIndex{List: keys, Idx: make(map[string]int32, len(keys))}
	ki.hash = make([]uint64, len(ki.List))
	for i, k := range ki.List {
		ki.Idx[k] = int32(i)
		ki.hash[i] = KeyHash(k)
	}
	return ki
}

// bits returns the set of keys, as a bitset over the index, that are in
// keys.
func (ki *KeyIndex) bits(keys map[string]struct{}) bitset {
	b := make(bitset, (len(ki.List)+63)/64)
	if len(keys) < len(ki.List) {
		for k := range keys {
			if i, ok := ki.Idx[k]; ok {
				b.set(int(i))
			}
		}
		return b
	}
	for i, k := range ki.List {
		if _, ok := keys[k]; ok {
			b.set(i)
		}
	}
	return b
}

type bitset []uint64

func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }

// Rendezvous hashing (Options.Balance). The weight of node U for key K is
//
//	mix64(fnv1a64(K) XOR mix64(fnv1a64(U)))
//
// where fnv1a64 is the 64-bit FNV-1a hash (hash/fnv) and mix64 the
// SplitMix64 finalizer. The live node holding K with the highest weight
// is master of K; equal weights go to the smaller UID. Every node computes
// the same weights, and a node joining or leaving moves only the keys it
// takes or held.

// KeyHash is fnv1a64 of a key.
func KeyHash(k string) uint64 {
	// FNV-1a, 64 bits, as hash/fnv computes it.
	h := uint64(14695981039346656037)
	for i := 0; i < len(k); i++ {
		h ^= uint64(k[i])
		h *= 1099511628211
	}
	return h
}

// NodeHash is mix64(fnv1a64(uid)), for Balance.
func NodeHash(uid string) uint64 { return mix64(KeyHash(uid)) }

// Weight is the rendezvous weight of a node for a key.
func Weight(keyHash, nodeHash uint64) uint64 { return mix64(keyHash ^ nodeHash) }

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
