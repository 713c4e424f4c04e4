package core

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

// Outranks reports whether node a takes key before node b by rendezvous
// hashing: a higher weight, or an equal one and a smaller UID. The core
// compares cached hashes the same way (order.go, votes.go); the tests and
// the simulator's checks use this.
func Outranks(key, a, b string) bool {
	kh := KeyHash(key)
	wa, wb := Weight(kh, NodeHash(a)), Weight(kh, NodeHash(b))
	return wa > wb || wa == wb && a < b
}

// Owner returns the node among uids that masters key by rendezvous
// hashing, "" if uids is empty.
func Owner(key string, uids []string) string {
	best := ""
	for _, u := range uids {
		if best == "" || Outranks(key, u, best) {
			best = u
		}
	}
	return best
}
