package core

import (
	"math/bits"
	"slices"
)

// Partial elections. A member without Quorum holds keys that only the
// voters' tables decide: between two elections, a key it does not claim
// can change only if an entry of a voter's table for it changed, or a
// term of it was heard of, or something every key reads changed (the
// live voters, their masterships, this node's readiness, its keys, its
// place in the order). Such an election re-decides, besides the global
// mastership and the keys this node claims, only the keys marked dirty
// since the last one; a thousand keys cost what their news costs. Any
// other change makes the next election whole. TestPartialElections drives
// a core both ways and compares every output.
//
// A node of a full mesh (no Options.Voters) without Quorum or Sticky
// elects so too: a key it does not claim reads only which live peers
// hold it, in order (or their weights, with Balance), and which are
// master of it. The live peers in order are in the fingerprint; a peer
// whose keys change makes the election whole; one whose masterships
// change marks the keys that changed (actingChanged); peers that left,
// and nothing else, mark the keys they decided (onlyLeft).
// TestPartialElectionsMesh and TestPartialElectionsAfterDepartures
// compare both ways.

// partial is the state of partial elections.
type partial struct {
	dirty  bitset // slots whose inputs changed since the last election
	eval   bitset // slots the election in progress re-decided
	full   bool   // the next election re-decides every slot
	off    bool   // every election whole (SetPartial)
	fp     fingerprint
	spare  []*cpeer    // the other buffer of fp.voters
	bits   bitset      // scratch: a peer's acting bits before collect rebuilds them
	states []keyChange // scratch: the keys whose state an election changed (snapshot)
	left   []*cpeer    // scratch: the live peers an election no longer has (onlyLeft)
}

// keyChange is the new state of the key at position j of the snapshot.
type keyChange struct {
	j  int
	st KeyState
}

// fingerprint is what every key of a member reads, as of an election.
type fingerprint struct {
	ki                     *KeyIndex
	started, ready, resign bool
	leaving                bool
	rankAt                 int64
	prio                   int64
	voters                 []*cpeer // the live voters, in order (full mesh: the live peers)
	relay                  *cpeer   // a member's relay voter (relayVoter): every key's naming reads it
}

func (f *fingerprint) equal(g *fingerprint) bool {
	return f.ki == g.ki && f.started == g.started && f.ready == g.ready && f.resign == g.resign && f.leaving == g.leaving &&
		f.rankAt == g.rankAt && f.prio == g.prio && slices.Equal(f.voters, g.voters) && f.relay == g.relay
}

// SetPartial turns partial elections off (false) or on (the default),
// for tests that compare both.
func (c *Core) SetPartial(on bool) { c.part.off = !on; c.part.full = true }

// markDirty marks key's slot for the next election.
func (c *Core) markDirty(key string) {
	if c.ki == nil {
		return
	}
	if i, ok := c.ki.Idx[key]; ok {
		c.markSlot(int(i) + 1)
	}
}

// markSlot marks slot i for the next election (an election not ready for
// partial ones yet is whole anyway).
func (c *Core) markSlot(i int) {
	if i < len(c.slots) && i/64 < len(c.part.dirty) {
		c.part.dirty.set(i)
	}
}

// beginPartial decides, after collect, whether this election is partial,
// and readies the bitsets for it.
func (c *Core) beginPartial() bool {
	pt := &c.part
	words := (len(c.slots) + 63) / 64
	sized := len(pt.dirty) == words
	if !sized {
		pt.dirty, pt.eval = make(bitset, words), make(bitset, words)
	}
	clear(pt.eval)
	if !c.member && (c.relay || c.cfg.Sticky) || c.quorum() || pt.off {
		return false // whole (a node's kind, Quorum and Sticky never change; SetPartial sets full)
	}
	// The fingerprint's voters alternate between two buffers: no
	// allocation per election.
	fp := fingerprint{ki: c.ki, started: c.started, ready: c.ready, resign: c.resign, leaving: c.leaving,
		rankAt: c.rankAt, prio: c.self.prio, voters: append(pt.spare[:0], c.picks.voters...)}
	if c.member {
		fp.relay = c.relayVoter()
	}
	ok := !pt.full && sized && c.snap != nil && c.snap.KI == c.own && (fp.equal(&pt.fp) || c.onlyLeft(&pt.fp, &fp))
	pt.spare, pt.fp, pt.full = pt.fp.voters, fp, false
	return ok
}

// onlyLeft reports, in a full mesh, whether the fingerprint g differs
// from f, the last election's, only by live peers gone from it (a crash,
// a peer silent), and if so marks the slots those peers could decide: a
// key a peer that left was master of, and one it held and was the first
// holder of by the rules (with Balance, the highest weight, as the picks
// kept it; without, any it held). Every other key reads the same live
// holders and masters as before. A peer's departure at a thousand keys
// so costs the keys it was master of, not a thousand (BenchmarkPeerDown).
//
// It rests on three facts, which a change elsewhere must keep: collect
// runs only in Elect, so a departed peer's bits are those the last
// election read (a new state that came after them was never used);
// pk.first changes only in balance, which runs in an epoch before its
// first read; and a peer that comes, or whose keys, place in the order
// or observer flag change, breaks the subsequence or sets part.full.
func (c *Core) onlyLeft(f, g *fingerprint) bool {
	if c.cfg.Voters != nil || f.ki != g.ki || f.started != g.started || f.ready != g.ready || f.resign != g.resign ||
		f.leaving != g.leaving || f.rankAt != g.rankAt || f.prio != g.prio || len(g.voters) >= len(f.voters) {
		return false
	}
	// g.voters must be f.voters with some taken out, in the same order.
	pk := &c.picks
	kept := len(pk.best) == len(c.slots) && pk.balKI == c.ki // the Balance picks are the last election's
	left := c.part.left[:0]
	defer func() { clear(left); c.part.left = left[:0] }() // no departed peer kept reachable
	j := 0
	for _, p := range f.voters {
		if j < len(g.voters) && g.voters[j] == p {
			j++
			continue
		}
		if p.ki != c.ki || len(p.acting) != len(p.has) {
			return false // its bits are not over this index
		}
		left = append(left, p)
	}
	if j != len(g.voters) {
		return false
	}
	for _, p := range left {
		if p.observer {
			continue // it held nothing and was master of nothing (holds, newEpoch)
		}
		for w := range p.has {
			x := p.acting[w]
			if !c.cfg.Balance {
				x |= p.has[w]
			}
			for x != 0 {
				b := bits.TrailingZeros64(x)
				x &= x - 1
				c.markSlot(w*64 + b + 1)
			}
		}
		if c.cfg.Balance {
			if !kept || !p.balIn {
				// Not among the picks: mark every key it held.
				for w := range p.has {
					for x := p.has[w]; x != 0; x &= x - 1 {
						c.markSlot(w*64 + bits.TrailingZeros64(x) + 1)
					}
				}
				continue
			}
			for i := 1; i < len(pk.first); i++ {
				if pk.first[i] == p {
					c.markSlot(i)
				}
			}
		}
	}
	return true
}

// endPartial clears what the election took in.
func (c *Core) endPartial() { clear(c.part.dirty) }

// decides reports whether a partial election re-decides slot i: the
// global mastership, a key this node claims, or one marked dirty.
func (c *Core) decides(i int) bool {
	return i == 0 || c.slots[i].Term != 0 || c.part.dirty.has(i)
}

// actingChanged records, in collect, that a peer's acting bits were
// rebuilt: if they differ from before (saved), on a member every key
// reads them; in a full mesh, the keys whose bit changed.
func (c *Core) actingChanged(p *cpeer, before bitset) {
	if slices.Equal(before, p.acting) {
		return
	}
	if c.member || len(before) != len(p.acting) {
		c.part.full = true
		return
	}
	for w := range before {
		x := before[w] ^ p.acting[w]
		for x != 0 {
			b := bits.TrailingZeros64(x)
			x &= x - 1
			c.markSlot(w*64 + b + 1)
		}
	}
}
