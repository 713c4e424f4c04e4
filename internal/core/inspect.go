package core

// Inspection, for tests and debugging (the simulator's checks and
// traces): read-only copies of the core's internal state. Nothing here
// changes the core.

// Inspection is what the core holds about one key ("" global).
type Inspection struct {
	// Rival is the highest term of the others' claims and votes heard
	// of; Other the highest term heard of from the others; Used the
	// highest term this node claimed.
	Rival, Other, Used uint64
	Held               bool     // this node competes for the key (it has a slot)
	Slot               SlotView // this node's claim of it, if Held
	// Rightful is the node the rules name for it, if Held.
	Rightful     string
	RightfulSelf bool             // Rightful is this node
	MaxPrio      int64            // the highest priority competing for it, if Held (MinInt64 for a key with Balance)
	Resigned     bool             // given up until it is removed (RemoveKey)
	Vote         Vote             // this node's acknowledgement (Quorum)
	MaxVote      Vote             // the claim of highest term it ever acknowledged
	Ready        bool             // see Core.Ready
	RankAt       int64            // the peers' echoes count from then (a pause, a change of place in the order)
	Naming       string           // a relay's: the node its table names for the key
	NamingSince  int64            // since when (mono)
	Own          TableEntry       // a relay's: its table's entry for the key, as last built
	Live         int              // live peers at the last election
	Version      uint64           // of this node's state as sent
	Prio         int64            // this node's priority
	Keys         []string         // this node's keys, sorted
	Peers        []PeerInspection // every peer known, in no order
}

// SlotView is this node's claim of one mastership.
type SlotView struct {
	Claim
	Lease int64 // with Quorum, while acting: master until then (mono)
	Since int64 // when the claim was made (mono)
}

// PeerInspection is what the core knows of one peer, about one key.
type PeerInspection struct {
	UID     string     // its UID
	Inc     uint64     // its incarnation
	Live    bool       // live at now: connected (or in grace), heard within WaitTimeout, state known, not leaving
	Current bool       // its newest state is known
	Version uint64     // of its state known; 0: none yet
	Newest  uint64     // the newest version its frames announced
	Prio    int64      // its priority
	Claim   Claim      // its claim of the key
	Vote    Vote       // its vote for the key
	Echo    int64      // this node's clock (mono): send time of this node's newest frame it had processed
	Conns   int        // connections up to it
	Table   TableEntry // a voter's: its table's entry for the key, as this node holds it
}

// Inspect returns what the core holds about key at now.
func (c *Core) Inspect(now int64, key string) Inspection {
	c.flush()
	in := Inspection{Rival: c.rival[key], Other: c.otherOf(key), Used: c.used[key], Vote: c.votes[key], MaxVote: c.maxVote[key],
		Resigned: c.resigned[key], Ready: c.ready, RankAt: c.rankAt, Naming: c.naming[key].uid, NamingSince: c.naming[key].since, Own: c.table[key], Live: len(c.order), Version: c.version, Prio: c.self.prio, Keys: c.own.List}
	if i, ok := c.slotIndex(key); ok && (i == 0 || c.competes(i)) {
		s := c.slots[i]
		in.Held, in.Slot = true, SlotView{Claim: s.Claim, Lease: s.lease, Since: s.since}
		in.Rightful, in.RightfulSelf = c.rightful(i)
		in.MaxPrio = c.maxPrio(i)
	}
	for _, p := range c.peers {
		in.Peers = append(in.Peers, PeerInspection{UID: p.uid, Inc: p.inc, Live: p.live(now, c.cfg.Wait), Current: p.current(),
			Version: p.version, Newest: p.newest, Prio: p.prio, Claim: p.claims[key], Vote: p.votes[key], Echo: p.echo, Conns: len(p.conns), Table: p.table[key]})
	}
	return in
}

// Terms returns, for key, the highest term of the others' claims and
// votes heard of (rival), the highest heard of from the others (other),
// and the highest this node claimed (used).
func (c *Core) Terms(key string) (rival, other, used uint64) {
	c.flush()
	return c.rival[key], c.otherOf(key), c.used[key]
}

// PeerConns returns how many connections are up to the peer (uid, inc);
// -1 for a peer the core does not know.
func (c *Core) PeerConns(uid string, inc uint64) int {
	p := c.peers[peerKey(uid, inc)]
	if p == nil {
		return -1
	}
	return len(p.conns)
}

// Yields returns how many masterships this node gave up to another live
// node (with Sticky, none are expected).
func (c *Core) Yields() int {
	c.flush()
	return c.yields
}

// CheckKnown reports whether the terms cached per slot (Core.known) are
// max(used, other) of the slot's key, and whether the map of other terms
// holds none above a slot's (Core.otherAt, which holds other for the
// keys of the index); if not, for the first slot that differs, its key,
// the slot's term and the maps'. The simulator calls it after each of a
// node's steps.
func (c *Core) CheckKnown() (ok bool, key string, known, want uint64) {
	for i := range c.slots {
		k := c.slotKey(i)
		if w := max(c.used[k], c.otherAt[i]); c.known[i] != w {
			return false, k, c.known[i], w
		}
		if c.other[k] > c.otherAt[i] {
			return false, k, c.otherAt[i], c.other[k]
		}
	}
	return true, "", 0, 0
}
