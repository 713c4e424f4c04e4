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
