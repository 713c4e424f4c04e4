package core

import "math/bits"

// Per-election picks: what an election asks of every slot over the live
// peers, found once per collect (an epoch) instead of once per question.
// Every input they read (c.order, the peers' bitsets and weights, the
// index) changes only in collect, so they hold until the next one.

// picks is the state of the picks for one epoch.
type picks struct {
	epoch uint64
	// acting, by slot (i > 0): the first live peer in order that holds
	// it and is master of it; nil if none.
	acting []*cpeer
	// first, by slot: the first live peer by the rules that holds it
	// (in order; with Balance, the highest weight), valid where
	// firstAt equals epoch.
	first   []*cpeer
	firstAt []uint64
	// balanced: first was filled for every slot (Balance) this epoch.
	balanced uint64
	// block, once blockAt is epoch: the slots a live peer holds and is
	// master of, or holds with a state not current or that has not taken
	// in this node's place in the order (claimSlot).
	block     bitset
	blockAt   uint64
	blockRank int64    // c.rankAt the block was found with
	best      []uint64 // scratch: balance's weights
}

// newEpoch starts the picks of an election, after collect ordered the
// live peers: it finds each slot's first master among them.
func (c *Core) newEpoch() {
	pk := &c.picks
	pk.epoch++
	n := len(c.slots)
	if cap(pk.acting) < n {
		pk.acting = make([]*cpeer, n)
		pk.first = make([]*cpeer, n)
		pk.firstAt = make([]uint64, n)
	}
	pk.acting, pk.first, pk.firstAt = pk.acting[:n], pk.first[:n], pk.firstAt[:n]
	clear(pk.acting)
	for _, p := range c.order {
		if p.observer {
			continue
		}
		for w := range p.acting {
			x := p.acting[w] & p.has[w]
			for x != 0 {
				b := bits.TrailingZeros64(x)
				x &= x - 1
				if i := w*64 + b + 1; i < n && pk.acting[i] == nil {
					pk.acting[i] = p
				}
			}
		}
	}
}

// actingPeer returns the first live peer in order that is master of slot
// i as far as this node knows (holds: acting); nil if none.
func (c *Core) actingPeer(i int) *cpeer {
	if i == 0 {
		for _, p := range c.order {
			if h, a := c.holds(p, 0); h && a {
				return p
			}
		}
		return nil
	}
	return c.picks.acting[i]
}

// firstPeer returns the first live peer by the rules that holds slot i
// (this node aside): in order, or for a key with Balance the one of
// highest weight (equal weights: the smaller UID); nil if none.
func (c *Core) firstPeer(i int) *cpeer {
	pk := &c.picks
	if i > 0 && c.cfg.Balance {
		if pk.balanced != pk.epoch {
			c.balance()
		}
		return pk.first[i]
	}
	if pk.firstAt[i] == pk.epoch {
		return pk.first[i]
	}
	var first *cpeer
	for _, p := range c.order {
		if h, _ := c.holds(p, i); h {
			first = p
			break
		}
	}
	pk.first[i], pk.firstAt[i] = first, pk.epoch
	return first
}

// balance fills the picks' first of every key slot with Balance: the
// holder of highest weight, each peer's weights computed once per index.
func (c *Core) balance() {
	pk := &c.picks
	n := len(c.slots)
	if cap(pk.best) < n {
		pk.best = make([]uint64, n)
	}
	best := pk.best[:n]
	clear(pk.first[1:]) // slot 0 (global) is not balanced: firstPeer memoizes it
	for _, p := range c.order {
		if p.observer {
			continue
		}
		if p.wKI != c.ki {
			p.w, p.wKI = make([]uint64, len(c.ki.List)), c.ki
			for j := range p.w {
				p.w[j] = Weight(c.ki.hash[j], p.hash)
			}
		}
		for w, x := range p.has {
			for x != 0 {
				b := bits.TrailingZeros64(x)
				x &= x - 1
				j := w*64 + b
				i := j + 1
				if i >= n {
					continue
				}
				if q := pk.first[i]; q == nil || p.w[j] > best[i] || p.w[j] == best[i] && p.uid < q.uid {
					pk.first[i], best[i] = p, p.w[j]
				}
			}
		}
	}
	pk.balanced = pk.epoch
}

// blocked reports whether a live peer holds slot i and is master of it,
// or holds it with a state not current, or has not taken in this node's
// place in the order (echoed a frame sent since rankAt).
func (c *Core) blocked(i int) bool {
	pk := &c.picks
	if i == 0 {
		for _, p := range c.order {
			if h, a := c.holds(p, 0); h && (a || !p.current() || p.echo < c.rankAt) {
				return true
			}
		}
		return false
	}
	if pk.blockAt != pk.epoch || pk.blockRank != c.rankAt {
		words := (len(c.slots) + 63) / 64
		if cap(pk.block) < words {
			pk.block = make(bitset, words)
		}
		pk.block = pk.block[:words]
		clear(pk.block)
		for _, p := range c.order {
			if p.observer {
				continue
			}
			stale := !p.current() || p.echo < c.rankAt
			for w := range p.has {
				x := p.has[w]
				if !stale {
					x &= p.acting[w]
				}
				// Bit j of the key index is slot j+1.
				pk.block.orShifted(w, x)
			}
		}
		pk.blockAt, pk.blockRank = pk.epoch, c.rankAt
	}
	return pk.block.has(i)
}

// orShifted sets, for each bit j set in x (word w of a key-index bitset),
// bit j+1 of b (its slot).
func (b bitset) orShifted(w int, x uint64) {
	if x == 0 {
		return
	}
	b[w] |= x << 1
	if w+1 < len(b) {
		b[w+1] |= x >> 63
	}
}
