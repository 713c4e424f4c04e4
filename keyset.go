package msc

import (
	"hash/fnv"
	"slices"
)

// keyIndex is an immutable, sorted set of this node's keys with an index,
// shared by the elector and the snapshots built on it. A new one is built
// whenever the node's own key set changes; peers' key sets are kept as
// bitsets over it, so an election tests a bit rather than hashing a string.
type keyIndex struct {
	list []string         // sorted
	idx  map[string]int32 // key → position in list
	hash []uint64         // keyHash of each key, for Balance
}

// noKeys is the index of a node without keys.
var noKeys = &keyIndex{}

func newKeyIndex(keys map[string]struct{}) *keyIndex {
	ki := &keyIndex{list: make([]string, 0, len(keys)), idx: make(map[string]int32, len(keys))}
	for k := range keys {
		ki.list = append(ki.list, k)
	}
	slices.Sort(ki.list)
	ki.hash = make([]uint64, len(ki.list))
	for i, k := range ki.list {
		ki.idx[k] = int32(i)
		ki.hash[i] = keyHash(k)
	}
	return ki
}

// bits returns the set of keys, as a bitset over the index, that are in
// keys.
func (ki *keyIndex) bits(keys map[string]struct{}) bitset {
	b := make(bitset, (len(ki.list)+63)/64)
	if len(keys) < len(ki.list) {
		for k := range keys {
			if i, ok := ki.idx[k]; ok {
				b.set(int(i))
			}
		}
		return b
	}
	for i, k := range ki.list {
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

func keyHash(k string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k))
	return h.Sum64()
}

func nodeHash(uid string) uint64 { return mix64(keyHash(uid)) }

func weight(keyHash, nodeHash uint64) uint64 { return mix64(keyHash ^ nodeHash) }

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
