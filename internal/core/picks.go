package core

import "math/bits"

// Per-election picks: what an election asks of every slot over the live
// peers, found once per collect (an epoch) instead of once per question.
// Every input they read (c.order, the peers' bitsets and weights, the
// index) changes only in collect, so they hold until the next one; but
// blocked also reads the peers' versions and echoes and c.rankAt, which
// change between elections: it is asked only within one (claimSlot), and
// found again if claimSlot moved rankAt.

// picks is the state of the picks for one epoch.
type picks struct {
	epoch uint64
	// voters: the live peers in order that are not members (all of
	// them without Options.Voters).
	voters []*cpeer
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
	blockRank int64 // c.rankAt the block was found with
	// With Balance, kept from one election to the next (balance): best,
	// by slot, the weight of first; balPeers, the peers first was found
	// over (balIn set), each as of its keys then (balGen); balKI, the
	// index. dirty: scratch.
	best     []uint64
	balPeers []*cpeer
	// On a member, while an election runs (electing): by slot, the node
	// the voters' tables name and whether it is this node (tables),
	// valid where tabAt equals epoch. The tables change only between
	// elections (Recv): claimSlot reads them, and the snapshot the
	// election ends with reads them again.
	tabUID  []string
	tabMine []bool
	tabAt   []uint64
	// byUID, once byUIDAt is epoch: the live peers of each UID (any
	// incarnation), in order (liveByUID).
	byUID   map[string][]*cpeer
	byUIDAt uint64
	balKI   *KeyIndex
	dirty   []int
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
	pk.voters = pk.voters[:0]
	for _, p := range c.order {
		if !p.member {
			pk.voters = append(pk.voters, p)
		}
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

// liveByUID returns the live peers of UID uid, in order: most often one,
// two while a restarted process's old incarnation lingers. Found over
// every live peer once per epoch, not by a walk of the order per
// question: a relay asks for each holder it no longer names of each key
// (maybeMaster), and with a thousand members in one process, walking the
// order for each took a quarter of the voters' CPU
// (BenchmarkMembers/1000x1000).
func (c *Core) liveByUID(uid string) []*cpeer {
	pk := &c.picks
	if pk.byUIDAt != pk.epoch || pk.byUID == nil {
		if pk.byUID == nil {
			pk.byUID = make(map[string][]*cpeer, len(c.order))
		}
		clear(pk.byUID)
		for _, p := range c.order {
			pk.byUID[p.uid] = append(pk.byUID[p.uid], p)
		}
		pk.byUIDAt = pk.epoch
	}
	return pk.byUID[uid]
}

// picksReady sizes the picks for the slots if no collect did yet (Inspect
// before Start: no live peer).
func (c *Core) picksReady() {
	if len(c.picks.acting) != len(c.slots) {
		c.newEpoch()
	}
}

// actingPeer returns the first live peer in order that is master of slot
// i as far as this node knows (holds: acting); nil if none.
func (c *Core) actingPeer(i int) *cpeer {
	c.picksReady()
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
	c.picksReady()
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

// balance brings the picks' first of every key slot with Balance up to
// date: the holder of highest weight (equal weights: the smaller UID),
// each peer's weights computed once per index. It keeps them from one
// election to the next and redoes only the slots whose holders changed:
// a peer that left (or whose keys changed) frees the slots it was first
// of, which are found again over every holder; a peer that came (or whose
// keys changed) competes for the slots it holds. A new index redoes all.
func (c *Core) balance() {
	pk := &c.picks
	n := len(c.slots)
	full := pk.balKI != c.ki || len(pk.best) != n
	if full {
		pk.balKI = c.ki
		pk.best = make([]uint64, n)
		clear(pk.first[1:]) // slot 0 (global) is not balanced: firstPeer memoizes it
		for _, p := range pk.balPeers {
			p.balIn = false
		}
		pk.balPeers = pk.balPeers[:0]
	}
	// The peers that left or changed their keys: their slots are redone.
	for _, p := range c.order {
		p.balSeen = pk.epoch
	}
	dirty := pk.dirty[:0]
	kept := pk.balPeers[:0]
	for _, p := range pk.balPeers {
		if p.balSeen == pk.epoch && p.balGen == p.hasGen && !p.observer {
			kept = append(kept, p)
			continue
		}
		p.balIn = false
		for i := 1; i < n; i++ {
			if pk.first[i] == p {
				pk.first[i] = nil
				dirty = append(dirty, i)
			}
		}
	}
	pk.balPeers = kept
	// The peers that came: each competes for the slots it holds.
	for _, p := range c.order {
		if p.balIn || p.observer {
			continue
		}
		p.balIn, p.balGen = true, p.hasGen
		pk.balPeers = append(pk.balPeers, p)
		c.weigh(p)
		for w, x := range p.has {
			for x != 0 {
				b := bits.TrailingZeros64(x)
				x &= x - 1
				if i := w*64 + b + 1; i < n {
					c.compete(i, p)
				}
			}
		}
	}
	// The slots left without their first: found again over every holder
	// (one that came above may have taken one already).
	for _, i := range dirty {
		for _, p := range pk.balPeers {
			if p.has.has(i - 1) {
				c.compete(i, p)
			}
		}
	}
	pk.dirty = dirty[:0]
	pk.balanced = pk.epoch
}

// weigh computes p's weights over the index, once per index.
func (c *Core) weigh(p *cpeer) {
	if p.wKI != c.ki {
		p.w, p.wKI = make([]uint64, len(c.ki.List)), c.ki
		for j := range p.w {
			p.w[j] = Weight(c.ki.hash[j], p.hash)
		}
	}
}

// compete makes p the first of key slot i if it weighs more than the
// first so far (equal weights: the smaller UID).
func (c *Core) compete(i int, p *cpeer) {
	pk := &c.picks
	w := p.w[i-1]
	if q := pk.first[i]; q == nil || w > pk.best[i] || w == pk.best[i] && p.uid < q.uid {
		pk.first[i], pk.best[i] = p, w
	}
}

// blocked reports whether a live peer holds slot i and is master of it,
// or holds it with a state not current, or has not taken in this node's
// place in the order (echoed a frame sent since rankAt). A peer live
// only by grace (its connections closed to be redialed) or whose newest
// state is on the way, that has not taken it in, blocks every key: it
// may have added the key, or add it and claim it once it counts this
// node dead (graceLease; seed 50028054).
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
				} else if len(p.conns) == 0 || !p.current() {
					x = ^uint64(0) // what it holds now is not known
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
