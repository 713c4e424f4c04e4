package core

// slot is this node's claim of one mastership.
type slot struct {
	Claim
	lease int64 // with Quorum, while acting: master until then (mono)
	since int64 // when the claim was made (mono)
	// lapsed: without Quorum, the mastership ended by its grace lease
	// (leaseGrace); the claim takes a new term at the next election.
	lapsed bool
}

// learn records a term heard of for key: of a claim or a vote (rival),
// or only known to a peer, perhaps this node's own term passed on. A
// higher one for a mastership this node competes for is passed on in
// turn (the state it sends changes): on a member too, which is where a
// voter that restarted learns the terms it forgot (seeds 45005824,
// 45020914, 45023547: a member that kept a learned term to itself let a
// restarted voter become master with a term below one used before).
// On a voter, for the global mastership and its own keys it goes out at
// once; for the others its table carries it (TableEntry.Term). Elsewhere
// (a full mesh, where every node hears each master itself, and a member,
// whose voters relayed the term to it) with one Tick in learnTicks, at
// the node's own phase (learnTick), or sooner when its state changes
// anyway or a process not heard before speaks (sendLearned): terms that
// move then cost each node one new state per learnTicks Intervals, not
// one per frame that tells it (each of N nodes telling each other, N²
// frames per term: 30 nodes holding 1,000 keys never converged so; and
// each of 50 member processes telling the voters at once, in a member's
// failover, kept the voters from the CPU for 20 ms). Each new state is
// news its peers answer: with every Tick, 40 nodes holding 1,000 keys in
// one process passed the terms of their start on for a second, and took
// 1.1-8.5 s to converge (5 runs of 18 above 2 s, one never: electors
// starved, nodes re-joined); with one in three, 0.95-1.8 s in 15 of 18.
func (c *Core) learn(key string, term uint64, rival bool) {
	if rival && term > c.rival[key] {
		c.rival[key] = term
	}
	i, ok := c.slotIndex(key)
	if term <= c.otherIn(key, i, ok) {
		return
	}
	c.raise(key, i, ok, term)
}

// otherOf returns the highest term heard of from the others for key.
func (c *Core) otherOf(key string) uint64 {
	i, ok := c.slotIndex(key)
	return c.otherIn(key, i, ok)
}

// otherIn is otherOf(key), key in slot i if ok: the slot's (otherAt)
// for a key of the index, else the map's.
func (c *Core) otherIn(key string, i int, ok bool) uint64 {
	if ok {
		return c.otherAt[i]
	}
	return c.other[key]
}

// raise records term, above otherOf(key), as the highest heard of for
// key: in slot i if ok, else in the map (a slot's term goes to the map
// when its key leaves the index: reindex).
func (c *Core) raise(key string, i int, ok bool, term uint64) {
	if !ok {
		c.other[key] = term
		return
	}
	c.otherAt[i] = term
	c.noteTerm(i, term)
	switch {
	case c.relay:
		if _, own := c.own.Idx[key]; own || key == "" {
			c.dirty = true
		}
	default:
		c.learned = true
	}
	if i > 0 {
		c.markSlot(i)
	}
}

// learnAt is learn(key, term, false) for key in slot i: a term not above
// the highest heard of is passed over without a map lookup.
func (c *Core) learnAt(i int, key string, term uint64) {
	if term > c.otherAt[i] {
		c.raise(key, i, true, term)
	}
}

// noteTerm records that slot i's key has a term t used or heard of
// (known).
func (c *Core) noteTerm(i int, t uint64) {
	if t > c.known[i] {
		c.known[i] = t
	}
}

// claimSlot decides whether this node claims slot i, and with which term.
// It reports whether its claim changed.
func (c *Core) claimSlot(now int64, i int) bool {
	s := &c.slots[i]
	old := s.Claim
	mine := false
	if c.competes(i) { // a relay's slot of a key it does not hold: nothing to decide
		_, mine = c.rightful(i)
	}
	if mine && c.relay && i > 0 && !c.quorum() {
		// Another voter may see a holder this one does not (a member
		// that has not dialed it yet, master on that voter's table):
		// a voter that names another node is one before it.
		if other, _ := c.votersAgree(i); other {
			mine = false
		}
	}
	if !mine || !c.ready || c.resign || c.leaving || !c.competes(i) || i > 0 && (c.resigned[c.ki.List[i-1]] || c.keysWait(now)) {
		if s.Acting && !mine && c.ready && !c.resign && !c.leaving && c.yielded(i) {
			c.yields++
		}
		*s = slot{}
		return old != s.Claim
	}
	key := c.slotKey(i)
	if s.Term == 0 || !s.Acting && (c.rival[key] >= s.Term || c.otherAt[i] > s.Term || s.lapsed || c.quorum() && now-s.since > int64(c.cfg.Wait+c.margin())) {
		// A new claim, a candidate outbid, a mastership that lapsed
		// (leaseGrace: taken again, it is a new one, which RunAsMaster
		// and Watch tell from the one before by its term), or with
		// Quorum one that gathered no quorum for WaitTimeout+M (its
		// voters may have moved on): a term above every term heard of.
		// Without Quorum a candidate keeps its term while it waits
		// (below).
		t := max(c.otherAt[i], c.used[key], c.maxVote[key].Term) + 1
		if c.quorum() {
			t = max(t, uint64((now+c.cfg.WallOffset)/1000))
		}
		*s = slot{Claim: Claim{Term: t}, since: now}
		c.used[key] = t
		c.noteTerm(i, t)
	}
	if !c.quorum() && !s.Acting && now-s.since > int64(c.cfg.Wait+c.margin()) {
		// Without Quorum, a candidate that waited WaitTimeout+M (for
		// the voters' tables to settle, for a peer's answer) says its
		// state again as a new version, with its term: every peer
		// answers a new state at once, and a frame that repeats the
		// last one is not even handed to the elector (the driver's
		// beatFilter.news), so an answer lost would hold the claim
		// for good (seed 175155053407575: a peer's echo stayed below
		// the candidate's rankAt). A term heard of above it (rival,
		// otherAt, above) still renews the term. A new term every
		// WaitTimeout+M instead, as with Quorum, was a new entry in
		// every voter's table for every member to take in: at 1,000
		// members holding 1,000 keys in one process, where the voters
		// took longer than that to settle, each waiting candidate
		// renewed its term every 2 s, tables of up to 1,000 changed
		// entries for each member each time, which starved the voters
		// further (BenchmarkMembers/1000x1000).
		s.since = now
		c.dirty = true
	}
	if !c.quorum() && s.Acting && (c.rival[key] >= s.Term || c.otherAt[i] > s.Term) {
		// Another master has a term as high (a healed partition): a new
		// term, above it, so that a store fencing on terms refuses the
		// other master's writes.
		s.Term = max(c.otherAt[i], c.used[key]) + 1
		c.used[key] = s.Term
		c.noteTerm(i, s.Term)
	}
	if !c.quorum() && s.Acting {
		c.leaseGrace(now, s, i)
	}
	if !c.quorum() && !s.Acting {
		// A master once no live peer competing for it is master of it,
		// and every one has taken in this node's place in the order as
		// it stands (echoed a frame sent since it last changed: at start,
		// SetPriority, a key change): a master steps down when it hears
		// of a node before it, before it answers (no overlap on a
		// handoff). Peers answer a claim at once.
		// (The tables are read while the claim is not a mastership.)
		acting := !c.unknownPeer(now, s.since)
		if c.member && i > 0 {
			// The voters' tables stand for the holders it cannot see.
			_, _, sure := c.tables(i)
			acting = acting && sure
		}
		if c.relay && i > 0 {
			// And on a voter, for those the other voters see (seed
			// 536: a voter restarted claimed a key at once, beside a
			// member master on the other voter's table that had not
			// dialed it yet); and once its own table names it, with no
			// holder it named before that may be master still (seed
			// 1844: a voter was master of its key in the step its
			// table stopped naming a member, which became master on
			// the table before).
			_, sure := c.votersAgree(i)
			key := c.slotKey(i)
			acting = acting && sure && c.table[key].Rightful == c.cfg.UID && !c.unnamedMaster(key)
		}
		s.Acting = acting
		c.waiting = c.waiting || !s.Acting
		if c.blocked(i) {
			s.Acting = false
			c.waiting = true
		}
		if s.Acting {
			// A mastership taken now is bounded as one held (a peer
			// live by grace, not stale, may count this node dead
			// before the next election).
			c.leaseGrace(now, s, i)
			c.waiting = c.waiting || !s.Acting
		}
	}
	return old != s.Claim
}

// leaseGrace bounds the mastership s of slot i, without Quorum: a peer
// that may claim the slot whose connections closed to be redialed (live
// by grace) may have lost this node's frames in flight: it counts this
// node dead WaitTimeout after it received the last frame it read, whose
// send time it echoed. Master until freshFor after that send time
// (graceLease); past it, as after a pause, the claim waits for the
// peer's answer to a frame sent from now on (rankAt, blocked).
func (c *Core) leaseGrace(now int64, s *slot, i int) {
	s.lease = c.graceLease(now, i)
	if s.lease != 0 && now >= s.lease {
		s.Acting, s.lease, s.lapsed = false, 0, true
		c.rankAt = now
	} else if s.lease != 0 {
		c.wakeAt(s.lease)
	}
}

// yielded reports whether this node, master of slot i and no longer
// named, gives it up to another live node of no higher priority. A member
// does not see the holders, nor their priorities: it counts every
// mastership it gives up because a voter names another node (not when no
// voter names anyone: it hears from none, or they wait for their
// servers); the simulator weighs the priorities.
func (c *Core) yielded(i int) bool {
	if !c.member || i == 0 {
		return c.maxPrio(i) <= c.self.prio
	}
	uid, _, _ := c.tables(i)
	return uid != ""
}

// deposed reports, on a member master of slot i, whether a voter that
// knows it is master names another node.
func (c *Core) deposed(i int) bool {
	key := c.slotKey(i)
	for _, p := range c.picks.voters {
		if e := p.table[key]; e.Rightful != "" && e.Rightful != c.cfg.UID && e.Acting == c.cfg.UID {
			return true
		}
	}
	return false
}

// graceLease returns, without Quorum, when this node's mastership of
// slot i ends for want of an answer from a peer whose connections closed
// to be redialed (see claimSlot); 0: none such. Any peer that may claim
// the slot counts, not only one that holds it now: a peer that adds the
// key (or, for the global mastership, any peer but a member or observer)
// claims it once it counts this node dead, WaitTimeout after the last
// frame it read (seed 50028054: a master paused just short of FreshFor,
// whose peer had closed their connection as silent meanwhile, stayed
// master of a key beside that peer, which added the key and claimed it
// when this node counted dead there). With Options.Voters, a key's
// voters count too: a voter that counts this node dead names another
// holder (seed 30102850: a member paused just short of FreshFor, whose
// voter had closed their connection as silent meanwhile, stayed master
// beside the member the voter named next).
func (c *Core) graceLease(now int64, i int) int64 {
	var end int64
	for _, p := range c.order {
		if len(p.conns) > 0 || now > p.grace || p.observer || i == 0 && p.member {
			continue
		}
		if e := p.echo + int64(FreshFor(c.cfg.Interval, c.cfg.Wait)); end == 0 || e < end {
			end = e
		}
	}
	return end
}

// unknownPeer reports whether a connection came up less than WaitTimeout
// ago whose peer's state is not known yet: a process that may hold any
// key and be master of it (one that just restarted, and claimed before
// it heard of this node's new key). Without Quorum a claim waits for its
// first full frame, which follows the handshake at once; but a claim made
// at since waits so at most WaitTimeout in all: a process that connects
// and never speaks (its elector stuck), again and again, does not hold
// every claim back. It wakes when the first of those connections has
// waited WaitTimeout, whichever the map's order (seed 51800271 did not
// replay: the wake was the first connection's found).
func (c *Core) unknownPeer(now, since int64) bool {
	limit := since + int64(c.cfg.Wait)
	if now >= limit {
		return false
	}
	unknown := false
	for _, cs := range c.conns {
		if (cs.peer == nil || cs.peer.version == 0) && now < cs.upAt+int64(c.cfg.Wait) {
			c.wakeAt(min(cs.upAt+int64(c.cfg.Wait), limit))
			unknown = true
		}
	}
	return unknown
}
