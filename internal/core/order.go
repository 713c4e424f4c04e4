package core

import (
	"cmp"
	"math"
	"slices"
)

// collect fills c.order with the live peers in election order and brings
// their bitsets up to date.
func (c *Core) collect(now int64) {
	if c.reindexDue {
		c.reindex(false)
	}
	c.order = c.order[:0]
	for _, p := range c.peers {
		if !p.live(now, c.cfg.Wait) && c.dead(p, now) {
			// Lapsed: it was live, with a state this node took in. A
			// peer whose state has not come yet is not: once its state
			// comes it counts, even if a newer one is announced (seed
			// 50719179: the older of two nodes that had just started,
			// its first state in and a newer one announced on its other
			// connection, was left out of the order as lapsed, and the
			// younger claimed the mastership it held).
			if p.version > 0 {
				p.lapsed = true
			}
			continue
		}
		if p.lapsed {
			// Back from dead: what it held then is no guide to what it
			// holds now. It counts once its newest state is known
			// (announced by its first frame, the full form next on that
			// connection), as if that first frame had come with it.
			// (Seed 49275684: a member that had given up a key while cut
			// off came back; on its old state a voter named it master
			// of the key, and the Sticky master stepped down.)
			if !p.current() {
				continue
			}
			p.lapsed = false
		}
		n := (len(c.ki.List) + 63) / 64
		if p.ki != c.ki {
			c.part.full = true // what it holds changed: every key reads it
			p.ki, p.actingOK = c.ki, false
			p.has = make(bitset, n)
			p.hasGen++
			for k := range p.keys {
				if i, ok := c.ki.Idx[k]; ok {
					p.has.set(int(i))
				}
			}
		}
		if c.member && !p.member && (!p.tabOK || p.tabKI != c.ki) {
			c.part.full = true // a whole table: any entry may have changed
			p.tab = slices.Grow(p.tab[:0], len(c.ki.List))[:len(c.ki.List)]
			for i, k := range c.ki.List {
				p.tab[i] = p.table[k]
			}
			p.tabKI, p.tabOK = c.ki, true
		}
		if !p.actingOK || len(p.acting) != n {
			// Claims are replaced whole with a new state: their bitset
			// is rebuilt then, in place.
			c.part.bits = append(c.part.bits[:0], p.acting...)
			if len(p.acting) != n {
				p.acting = make(bitset, n)
			}
			clear(p.acting)
			for k, cl := range p.claims {
				if i, ok := c.ki.Idx[k]; ok && cl.Term > 0 && cl.Acting {
					p.acting.set(int(i))
				}
			}
			p.actingOK = true
			c.actingChanged(p, c.part.bits)
		}
		c.order = append(c.order, p)
	}
	// Two incarnations of a UID of the same start and priority (an old
	// one lingering) rank alike: the older incarnation first, whatever
	// the map's order (a simulated schedule replays). (slices.SortFunc:
	// sort.Slice's swaps through reflection took a voter of 997 members
	// 0.6 of 6.7 CPU-seconds in the first 10 s of BenchmarkMembers.)
	slices.SortFunc(c.order, func(a, b *cpeer) int {
		switch {
		case a.before(b.rank):
			return -1
		case b.before(a.rank):
			return 1
		}
		return cmp.Compare(a.inc, b.inc)
	})
	c.newEpoch()
}

// dead reports whether p, not live by its own state, is dead. A peer
// that is connected and only silent for WaitTimeout is dead once the
// silence still holds confirmSilence after this node first saw it: when
// this node was stopped or starved, its timer may fire before its readers
// have handed over the frames that waited in the sockets meanwhile; and
// while this node runs late, once silent for patience WaitTimeouts
// (overload.go).
func (c *Core) dead(p *cpeer, now int64) bool {
	if len(p.conns) == 0 || p.leaving || p.version == 0 {
		return true
	}
	if p.suspect <= p.heard {
		p.suspect = now
	}
	// Silent while this node runs late: perhaps only unread (overload.go).
	end := max(p.suspect+int64(c.confirmSilence()), c.patientEnd(p, now))
	if now < end {
		c.wakeAt(end)
		return false
	}
	return true
}

// confirmSilence is how long a connected peer's silence is confirmed
// before it counts dead: Interval/20, the time for readers to run.
func (c *Core) confirmSilence() Duration { return c.cfg.Interval / 20 }

// slotKey is the key of slot i ("" for the global mastership).
func (c *Core) slotKey(i int) string { return slotKeyIn(c.ki, i) }

// slotKeyIn is the key of slot i over index ki.
func slotKeyIn(ki *KeyIndex, i int) string {
	if i == 0 {
		return ""
	}
	return ki.List[i-1]
}

// holds reports whether live peer p competes for slot i, and whether it
// is master of it as far as this node knows (see cpeer.current).
func (c *Core) holds(p *cpeer, i int) (holds, acting bool) {
	if p.observer || i == 0 && p.member {
		return false, false
	}
	if i == 0 {
		cl := p.claims[""]
		return true, cl.Term > 0 && cl.Acting
	}
	return p.has.has(i - 1), p.acting.has(i - 1)
}

// rightful returns the node the rules name for slot i: with Sticky a
// live master first; else (and among several masters) the first in
// order, or for a key with Balance the one of highest weight. self is
// true when it is this node.
func (c *Core) rightful(i int) (uid string, self bool) { return c.rightfulOf(i, false) }

// rightfulOf is rightful; with stale, a peer known as master counts as
// one even while a newer state of it is on the way (a relay's table).
func (c *Core) rightfulOf(i int, stale bool) (uid string, self bool) {
	if c.member && i > 0 {
		uid, self = c.tablesNamed(i)
		if uid != "" && !self && c.cfg.Sticky && c.quorum() && c.slots[i].Acting && !c.deposed(i) {
			// Sticky: a master keeps it while the voters that name
			// another node do not know it is master (one that just
			// started or connected, its state not taken in yet): with
			// Quorum the votes keep it alone, and once such a voter
			// knows, it names this node (seed 267: a voter restarted
			// named another at once, and the master stepped down).
			return c.cfg.UID, true
		}
		return uid, self
	}
	if c.cfg.Sticky {
		// A live master keeps it; among several (a healed partition
		// without Quorum), the first by the rules below. With Quorum
		// there are never several: another node that looks like a
		// master too is seen through stale frames.
		// A higher priority still wins (SetPriority moves a master).
		top := c.maxPrio(i)
		if c.slots[i].Acting && c.quorum() && (c.self.prio >= top || i > 0 && c.cfg.Balance) {
			return c.cfg.UID, true
		}
		if uid, self, ok := c.first(i, true, stale); ok && (c.prioOf(uid) >= top || i > 0 && c.cfg.Balance) {
			return uid, self
		}
	}
	uid, self, _ = c.first(i, false, false)
	return uid, self
}

// maxPrio returns the highest priority among this node and the live
// peers competing for slot i; for a key with Balance, where priority does
// not apply, the lowest possible.
func (c *Core) maxPrio(i int) int64 {
	if i > 0 && c.cfg.Balance {
		return math.MinInt64
	}
	best := int64(math.MinInt64)
	if c.competes(i) {
		best = c.self.prio
	}
	for _, p := range c.order {
		if h, _ := c.holds(p, i); h {
			best = max(best, p.prio)
		}
	}
	return best
}

// prioOf returns the priority of uid, this node or a live peer.
func (c *Core) prioOf(uid string) int64 {
	if uid == c.cfg.UID {
		return c.self.prio
	}
	if ps := c.liveByUID(uid); len(ps) > 0 {
		return ps[0].prio
	}
	return math.MinInt64
}

// first returns the first by the rules among this node and the live
// peers that compete for slot i (only the masters of it, with masters:
// those whose newest state is known, or with stale any known as one).
func (c *Core) first(i int, masters, stale bool) (uid string, self, ok bool) {
	if c.competes(i) && (!masters || c.slots[i].Acting) {
		uid, self, ok = c.cfg.UID, true, true
	}
	if !masters {
		// Any holder: the election's pick (picks.go).
		p := c.firstPeer(i)
		switch {
		case p == nil:
		case !ok:
			return p.uid, false, true
		case i > 0 && c.cfg.Balance:
			w, sw := p.w[i-1], Weight(c.ki.hash[i-1], c.selfH)
			if w > sw || w == sw && p.uid < uid {
				return p.uid, false, true
			}
		case p.before(c.self):
			return p.uid, false, true
		}
		return uid, self, ok
	}
	if i > 0 && c.cfg.Balance {
		kh := c.ki.hash[i-1]
		var bestW uint64
		if ok {
			bestW = Weight(kh, c.selfH)
		}
		for _, p := range c.order {
			if h, a := c.holds(p, i); !h || !a || !p.current() && !stale {
				continue
			}
			if w := Weight(kh, p.hash); !ok || w > bestW || w == bestW && p.uid < uid {
				uid, bestW, self, ok = p.uid, w, false, true
			}
		}
		return uid, self, ok
	}
	for _, p := range c.order { // in order: the first master
		if ok && self && !p.before(c.self) {
			break
		}
		if h, a := c.holds(p, i); h && a && (p.current() || stale) {
			return p.uid, false, true
		}
	}
	return uid, self, ok
}

// rank is a node's place in the election order.
type rank struct {
	prio  int64
	start int64
	uid   string
}

// before orders nodes: higher priority first, then the earlier start
// time, then the smaller UID.
func (a rank) before(b rank) bool {
	if a.prio != b.prio {
		return a.prio > b.prio
	}
	return less(a.start, a.uid, b.start, b.uid)
}

// less orders nodes of equal priority: earlier start time first, then the
// smaller UID.
func less(startA int64, uidA string, startB int64, uidB string) bool {
	if startA != startB {
		return startA < startB
	}
	return uidA < uidB
}

// Before reports whether the node of priority prioA, start time startA
// and UID uidA comes before the node (prioB, startB, uidB) in the
// election order: higher priority first, then the earlier start time,
// then the smaller UID.
func Before(prioA, startA int64, uidA string, prioB, startB int64, uidB string) bool {
	return rank{prioA, startA, uidA}.before(rank{prioB, startB, uidB})
}
