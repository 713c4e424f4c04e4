package core

import (
	"maps"
	"slices"
)

// Voters and members (Options.Voters). A node whose UID is listed is a
// voter; the others are members. Voters connect to each other and accept
// members; a member connects to voters only. A voter therefore sees every
// live node, and a member only the voters: the voters elect the global
// master among themselves, and relay the key masterships.
//
// A voter (a relay) has a slot for every key a known peer holds, not only
// its own, and elects each as usual, competing only for its own keys. What
// it decides for each key, the node the rules name among every live holder
// (rightful) and the holder it knows is master (acting), it sends in its
// full state: its table (with Sticky, a master is named while its newest
// state is on the way). A member claims a key when every live voter whose
// table names the key names it; without Quorum, its claim is a mastership
// once, besides, every live voter names it (one whose table does not name
// the key has not taken in its state yet), is current, has taken in its
// state as it stands (echoed a frame sent since its place in the order
// last changed) and knows no other master of the key, nor takes it for
// master while it is not. A master steps down as soon as a voter names
// another node; with Quorum and Sticky, once a voter that knows it is
// master does (one that does not know yet would depose it for nothing).
// With Quorum, a member's claim is a mastership as any other: once Quorum
// voters acknowledge it. A member that hears from no voter is master of
// nothing. Without Quorum, a voter defers to the other voters' tables for
// its own keys the same way: they may see a member it does not (a master
// on their tables that has not dialed it yet).
//
// Without Quorum, a member may become master on a table its voter has
// since replaced (the new one still on the way), and its claim reaches the
// voter later still: a voter counts a holder it named and no longer names
// as a master of the key until the holder's state, as of a frame that
// answers one sent since (which carried the new table), shows no
// mastership (seed 91: two members master of a key at once, each on a
// table of the one voter). And two voters that see different holders
// (members reconnecting to them one by one) name different members, each
// of which may see one of them only: a voter's naming settles once every
// other live voter has taken in the table that names it and names no
// other node; until then its table names the node as master too, so that
// no member is master on it (settledBut). With Quorum the votes keep a
// master alone.

// TableEntry is what a voter relays about one key: the node the rules
// name among every live holder, the holder it knows is master, and the
// highest term it knows of. Without Quorum, Acting is also a node that
// may be master as far as the voter knows: a holder it named and no
// longer names that has not answered since, or the node it names while
// the naming is not settled among the voters.
type TableEntry struct {
	Rightful string // the UID the rules name; "" if no live node holds the key (or the voter waits)
	Acting   string // the UID of a master of the key it knows of (or that may be one); "" if none
	Term     uint64 // the highest term of the key it knows of
}

// names reports whether the entry names uid, as rightful or as master.
func (e TableEntry) names(uid string) bool { return e.Rightful == uid || e.Acting == uid }

// quiet reports, on a member without Quorum, whether voter p's new state
// b, a delta none of whose table entries names this node before or after
// (connState.named), changed nothing else the voter waits for an answer
// to: such a state is not answered at once. The voter waits for this
// node's answer only to a table that stopped naming it (maybeMaster: it
// may be master still) or names it now (it claims, or steps down, and
// says so in a state of its own); its other waits read the other voters'
// answers (settledBut, votersAgree) or a claim's (candidate). Answering every
// new table cost each voter an answer from every member at each change:
// in a failover of 50 members of 300 holding 100 keys, the members sent
// a median of 5,128 frames against the voters' 6,858; 2,247 so. A change
// of its claims, known terms, keys or place in the order is answered.
func (c *Core) quiet(p *cpeer, b *Msg) bool {
	return p.version > 0 && len(b.Claims)+len(b.Known)+len(b.Votes) == 0 && !b.Leaving && b.Observer == p.observer &&
		b.Start == p.start && b.Prio == p.prio && sameKeys(b.Keys, p.keyList)
}

// awaited reports, on a member, whether the voter's table on connection
// cs takes this node for the master of a key it is not master of (Acting,
// another node named): the voter waits for its answer to a frame sent
// since it stopped naming it (stillUnnamed), and sends a new state each
// Interval until it comes (reannounce); a state that changed nothing
// that concerns this node is otherwise not answered (quiet).
func (c *Core) awaited(cs *connState) bool {
	for k := range cs.mine {
		e := cs.table[k]
		if e.Acting != c.cfg.UID || e.Rightful == c.cfg.UID {
			continue
		}
		if j, ok := c.ki.Idx[k]; !ok || !c.slots[j+1].Acting {
			return true
		}
	}
	return false
}

// members is the core's state for Options.Voters.
type members struct {
	member bool // Voters set, this node not in it
	relay  bool // Voters set, this node in it
	// union counts, on a relay, the holders of each key among this node
	// and its known peers; reindexDue: a key appeared or went, and the
	// slots follow at the next election.
	union      map[string]int32
	reindexDue bool
	ownBits    bitset                // relay: its own keys over ki
	ownSlot    []int32               // relay: slot of own.List[j]
	table      map[string]TableEntry // relay: as last sent
	// unnamed, on a relay: per key, the members its table named and no
	// longer names, with when (mono) it stopped: each may be master on
	// the table it had, until it answers a frame sent since, with no
	// mastership of the key (buildTable).
	unnamed map[string]map[string]int64
	// naming, on a relay: per key, the node its table names and since
	// when (mono), kept while it is not ready (buildTable).
	naming map[string]naming
	// named, on a relay: the nodes that an entry of its table changed in
	// the last election names (Rightful or Acting, before or after), whose
	// connections its new state goes to first (Out.First); namedSet is
	// sendFirst's scratch.
	named    []string
	namedSet map[string]struct{}
	// tabBuf, on a relay: buildTable's entries by slot.
	tabBuf []TableEntry
	// bulkAt, on a relay: when (mono) its state goes to the members that
	// a change of its table alone does not concern (kickSome); 0: none
	// held back.
	bulkAt int64
	// bulkFrom, on a relay: when the state bulkAt holds back was first
	// held; settling: its table names a holder whose naming is not
	// settled yet (buildTable).
	bulkFrom int64
	settling bool
	// holdTable, on a relay without Quorum re-joining after a pause
	// shorter than WaitTimeout: its table stands until it is ready again
	// (heldEntry).
	holdTable bool
	// unsettledSince, on a relay: since when the oldest wait of its
	// table for answers stands (0: none; buildTable): a naming that only
	// the voters' answers keep from settling, or a member it no longer
	// names that has not answered since (stillUnnamed); announcedAt: when
	// it last sent a new version (reannounce).
	unsettledSince, announcedAt int64
}

// naming is the node a relay's table names for a key, since when.
type naming struct {
	uid   string
	since int64
}

func (c *Core) initMembers() {
	if c.cfg.Voters == nil {
		return
	}
	c.member = !c.cfg.Voters[c.cfg.UID]
	c.relay = !c.member
	if c.relay {
		c.union = make(map[string]int32, len(c.keys))
		for k := range c.keys {
			c.union[k]++
		}
	}
}

// isMember reports whether uid is a member: Voters set, uid not in it.
func (c *Core) isMember(uid string) bool { return c.cfg.Voters != nil && !c.cfg.Voters[uid] }

// Member reports whether this node is a member.
func (c *Core) Member() bool { return c.member }

// apart reports whether this node keeps no connection to uid, reached on
// a connection to server ("" inbound): two members do not connect, and a
// voter does not dial a member (the member dials it).
func (c *Core) apart(uid, server string) bool {
	return c.isMember(uid) && (c.member || server != "")
}

// MemberOn returns, on a relay, the UID of the member on connection id;
// "" if this node is not a relay, or the peer there is not a member or
// not known yet.
func (c *Core) MemberOn(id ConnID) string {
	if p := c.peerOn(id); c.relay && p != nil && p.member {
		return p.uid
	}
	return ""
}

// PeerOn returns the UID of the peer on connection id; "" if it is not
// known yet.
func (c *Core) PeerOn(id ConnID) string {
	if p := c.peerOn(id); p != nil {
		return p.uid
	}
	return ""
}

// peerOn returns the peer on connection id; nil if it is not known yet.
func (c *Core) peerOn(id ConnID) *cpeer {
	if cs := c.conns[id]; cs != nil {
		return cs.peer
	}
	return nil
}

// NamedOnly reports, on a member, whether connection id leads to a voter
// other than the one it reads the keys' masters from (relayVoter): that
// voter need send it, of its table, only the entries that name it (the
// driver asks with a header flag), and its other entries on this node
// may be stale. A thousand members each taking in every voter's every
// entry decoded three copies of each table where one does.
//
// What this node decides for itself reads the entries that name it, which
// every voter sends as they stand (the writer's concerning frames); a
// stale entry names it neither then nor now, so it makes this node not
// the one every voter names, or, empty, not sure of it (tables): without
// Quorum it only holds a mastership back. With Quorum, a stale empty
// entry may let this node claim where the voter's entry as it stands
// (naming another) would not; each voter's vote, one claimant per key,
// still keeps the master alone.
func (c *Core) NamedOnly(id ConnID) bool {
	p := c.peerOn(id)
	if !c.member || p == nil || p.member {
		return false
	}
	r := c.relayVoter()
	return r != nil && p.uid != r.uid
}

// relayVoter is, on a member, the voter whose table names the masters of
// the keys that this node is not named for: the first live voter in
// order with a connection up (the others send this node only the
// entries that name it: NamedOnly; a voter live without one, in grace
// or redialed, sends nothing meanwhile); nil if there is none.
func (c *Core) relayVoter() *cpeer {
	for _, p := range c.picks.voters {
		if len(p.conns) > 0 {
			return p
		}
	}
	return nil
}

// competes reports whether this node competes for slot i: not an
// observer; for the global mastership, not a member; for a key, one it
// holds.
func (c *Core) competes(i int) bool {
	if c.cfg.Observer {
		return false
	}
	if i == 0 {
		return !c.member
	}
	return c.ownBits == nil || c.ownBits.has(i-1)
}

// countKeys updates the relay's holder counts: this node or a peer
// added keys add and dropped keys remove.
func (c *Core) countKeys(add, remove []string) {
	if !c.relay {
		return
	}
	for _, k := range add {
		if c.union[k]++; c.union[k] == 1 {
			c.reindexDue = true
		}
	}
	for _, k := range remove {
		if c.union[k]--; c.union[k] <= 0 {
			delete(c.union, k)
			c.reindexDue = true
		}
	}
}

// forget replaces a peer's keys old with new in the relay's counts.
func (c *Core) forget(old, new []string) { c.countKeys(new, old) }

// reindex rebuilds the key indexes after this node's keys (or, on a
// relay, the union of every known holder's) changed, and carries the
// slots of the keys that stay over.
func (c *Core) reindex(ownChanged bool) {
	c.reindexDue = false
	old, oldSlots := c.ki, c.slots
	for i, t := range c.otherAt {
		// The terms held by slot go back to the map, where the slots
		// below find them (and a key leaving the index keeps its own).
		if k := slotKeyIn(old, i); t > c.other[k] {
			c.other[k] = t
		}
	}
	if ownChanged || c.own == nil {
		c.own = newKeyIndex(slices.Collect(maps.Keys(c.keys)))
	}
	c.ki = c.own
	if c.relay {
		c.ki = newKeyIndex(slices.Collect(maps.Keys(c.union)))
		c.ownBits = make(bitset, (len(c.ki.List)+63)/64)
		c.ownSlot = make([]int32, len(c.own.List))
		for j, k := range c.own.List {
			i := c.ki.Idx[k]
			c.ownBits.set(int(i))
			c.ownSlot[j] = i + 1
		}
	}
	c.slots = make([]slot, 1+len(c.ki.List))
	c.known = make([]uint64, len(c.slots))
	c.otherAt = make([]uint64, len(c.slots))
	for i := range c.known {
		k := c.slotKey(i)
		c.otherAt[i] = c.other[k]
		c.known[i] = max(c.used[k], c.otherAt[i])
	}
	if old == nil {
		return
	}
	c.slots[0] = oldSlots[0]
	for i, k := range c.ki.List {
		if j, ok := old.Idx[k]; ok {
			c.slots[i+1] = oldSlots[j+1]
		}
	}
}

// ownSlotOf returns the slot of this node's j-th key (own.List[j]).
func (c *Core) ownSlotOf(j int) int {
	if c.ownSlot == nil {
		return j + 1
	}
	return int(c.ownSlot[j])
}

// buildTable recomputes the relay's table at now; it reports whether it
// changed.
func (c *Core) buildTable(now int64) bool {
	c.named = c.named[:0]
	kept := 0 // entries of c.table whose key is still in the index
	// The entries by slot, in a buffer kept from one election to the
	// next: the map is built only if one differs (a voter elects on
	// every batch of news, and its table of a thousand keys seldom
	// changes).
	ents := slices.Grow(c.tabBuf[:0], len(c.slots))[:len(c.slots)]
	c.tabBuf = ents
	differs, entries := false, 0
	unnamed, names := c.unnamed, c.naming
	c.unnamed, c.naming = nil, make(map[string]naming, len(names))
	c.settling, c.unsettledSince = false, 0
	for i := 1; i < len(c.slots); i++ {
		k := c.slotKey(i)
		e := TableEntry{Term: c.known[i]}
		nm := names[k]
		if c.ready && !c.keysWait(now) {
			// With Sticky, a master is named while its newest state is
			// on the way (a new claim, a new key): named by the rules
			// meanwhile, another would depose it (seed 14646: the
			// mastership went back and forth between two members at
			// each of the master's new states; seed 2357: a voter
			// reconnected deposed the master at once).
			e.Rightful, _ = c.rightfulOf(i, true)
			if c.slots[i].Acting {
				e.Acting = c.cfg.UID
			}
			// The master it knows: the one it names if it is master,
			// else the first in order.
			if e.Acting == "" {
				if p := c.actingPeer(i); p != nil {
					e.Acting = p.uid
				}
			}
			if e.Acting != "" && e.Acting != e.Rightful {
				for _, p := range c.liveByUID(e.Rightful) {
					if h, a := c.holds(p, i); h && a {
						e.Acting = p.uid
						break
					}
				}
			}
			if nm.uid != e.Rightful {
				old := nm.uid
				nm = naming{e.Rightful, now}
				c.named = append(c.named, old) // kept while not ready: maybe in no entry
				// Without Quorum, a holder it no longer names may be
				// master still (above), and another voter may name
				// another. With Quorum the votes keep a master alone,
				// and Acting is a master known: with Sticky, a master
				// keeps it while the voters that name another do not
				// know of it (deposed).
				if !c.quorum() && old != "" && old != c.cfg.UID {
					u := maps.Clone(unnamed[k])
					if u == nil {
						u = make(map[string]int64, 1)
					}
					u[old] = now
					if unnamed == nil {
						unnamed = make(map[string]map[string]int64, 1)
					}
					unnamed[k] = u
				}
			}
			if !c.quorum() {
				// (The answers that settle these are awaited: waiting.)
				if u := c.stillUnnamed(k, e.Rightful, unnamed[k]); u != "" {
					c.waiting = true
					if e.Acting == "" {
						e.Acting = u
					}
					if e.Acting == u {
						// Its answer is awaited: asked again each
						// Interval (reannounce), and first (sendFirst).
						// (While another node is master here, the entry
						// holds nothing back for it, and does not name
						// it: it would not answer. Once it does, the
						// change names it, which it answers.)
						if since := unnamed[k][u]; c.unsettledSince == 0 || since < c.unsettledSince {
							c.unsettledSince = since
						}
						c.named = append(c.named, u)
					}
				}
				if e.Acting == "" && e.Rightful != "" {
					if settled, answers := c.settledBut(k, nm); !settled {
						// Not settled: it names the node as its master,
						// so that no member is master on it yet
						// (tables: the node itself is not master; the
						// others are not named).
						e.Acting = e.Rightful
						c.waiting, c.settling = true, true
						if answers && (c.unsettledSince == 0 || nm.since < c.unsettledSince) {
							c.unsettledSince = nm.since
						}
					}
				}
			}
		} else {
			if u := unnamed[k]; len(u) > 0 {
				c.keepUnnamed(k, u) // for when it names again
			}
			if c.rejoin && c.holdTable {
				e = c.heldEntry(k, e.Term)
			}
		}
		if nm.uid != "" {
			c.naming[k] = nm
		}
		ents[i] = e
		if e != (TableEntry{}) {
			entries++
		}
		old, had := c.table[k]
		if had {
			kept++
		}
		if old != e {
			differs = true
			c.named = append(c.named, old.Rightful, old.Acting, e.Rightful, e.Acting)
		}
	}
	if kept < len(c.table) { // entries of keys gone from the index
		differs = true
		for k, old := range c.table {
			if i, ok := c.ki.Idx[k]; !ok || ents[i+1] == (TableEntry{}) {
				c.named = append(c.named, old.Rightful, old.Acting)
			}
		}
	}
	if !differs {
		return c.reannounce(now)
	}
	c.announcedAt = now // a new version: the voters answer it
	t := make(map[string]TableEntry, entries)
	for i := 1; i < len(ents); i++ {
		if ents[i] != (TableEntry{}) {
			t[c.slotKey(i)] = ents[i]
		}
	}
	c.table = t
	return true
}

// heldEntry is the entry for key k of a relay that re-joins after a
// pause shorter than WaitTimeout (holdTable), term the highest it knows:
// the one its table had, with the holder it names taken as master
// (Acting), so that no member becomes master on it while it does not
// know what happened during the pause, as on an empty entry (tables,
// votersAgree); a master it names stays master. After a pause shorter
// than WaitTimeout no peer counted the voter dead, so no member became
// master meanwhile without its table: what it held stands. (After a
// longer pause it names no one until it is ready, as before: a holder
// it named may have died, and another become master on the other
// voters' tables.) Emptied, every entry changed twice on every member:
// at 1,000 members holding 1,000 keys in one process, starved voters
// re-joined again and again, each emptied its table and refilled it once
// ready, 2,000 entries for each of the members to decode and decide,
// which starved them further (BenchmarkMembers/1000x1000).
func (c *Core) heldEntry(k string, term uint64) TableEntry {
	e := c.table[k]
	if e == (TableEntry{}) {
		return e
	}
	e.Term = max(e.Term, term)
	if e.Acting == "" {
		e.Acting = e.Rightful
	}
	return e
}

// reannounce reports, on a relay whose table names a holder that every
// other voter names too, but not settled for an Interval (an answer
// missing), whether to send its state again, as a new version: the other
// voters answer a new version at once, and their answers settle it. An
// answer lost with its connection (closed to dedupe it, or cut) is not
// sent again: the frames after it repeat the same versions and carry
// their echoes to no election (seed 51416751: a voter's naming of a
// member stayed unsettled for good, and the member master of nothing).
// Not while a voter names another node, which answers do not change.
// The same while a member it no longer names has not answered a frame
// sent since (stillUnnamed): the member answers a new state of a table
// that takes it for a master it is not (awaited). (The new term a waiting
// candidate took every WaitTimeout+M was, by chance, that retry until it
// kept its term: a reviewer's finding.) Once per Interval at most after
// the last new version; it wakes for the next.
func (c *Core) reannounce(now int64) bool {
	if c.unsettledSince == 0 {
		return false
	}
	due := max(c.unsettledSince, c.announcedAt) + int64(c.cfg.Interval)
	if now < due {
		c.wakeAt(due)
		return false
	}
	c.announcedAt = now
	c.wakeAt(now + int64(c.cfg.Interval))
	return true
}

// keysWait reports, on a relay without Quorum, whether it is within
// WaitTimeout+M of its start: it neither names a key's master nor claims
// one of its own keys yet. It does not know what its previous
// incarnation's table named: a member may be master on it, and count
// that incarnation live until WaitTimeout after it last heard from it
// (seed 30012006: the one voter, restarted at once after a crash whose
// connections stayed half-open, was master of its key beside the member
// master). With Quorum the votes wait so (vote).
func (c *Core) keysWait(now int64) bool {
	if !c.relay || c.quorum() {
		return false
	}
	end := c.born + int64(c.cfg.Wait+c.margin())
	if now < end {
		c.wakeAt(end)
		return true
	}
	return false
}

// settledBut reports, without Quorum, whether the relay's naming nm for
// key k stands among the voters: every other live voter has taken in the
// table that names it (answered a frame sent since), and names no other
// node nor knows of another master. Two voters that see different holders
// (members that reconnect to them one by one after they restarted) name
// different nodes, each of which would be master on the one table it sees
// (seed 71582555832474: two members master of a key at once). If not
// settled, answers reports whether only answers are missing: every other
// live voter names no other node for k, nor knows of another master
// (reannounce).
func (c *Core) settledBut(k string, nm naming) (settled, answers bool) {
	settled = true
	for _, p := range c.picks.voters {
		if e := p.table[k]; e.Rightful != "" && e.Rightful != nm.uid || e.Acting != "" && e.Acting != nm.uid {
			return false, false
		}
		if p.echo < nm.since {
			settled = false
		}
	}
	return settled, !settled
}

// stillUnnamed updates the holders the relay no longer names for key k,
// u as it stands, now that it names rightful: one named again, or no
// longer live, or whose state as of a frame that answers one sent since
// shows no mastership of k, leaves them. It returns the first that may
// still be master ("" if none).
func (c *Core) stillUnnamed(k, rightful string, u map[string]int64) string {
	first := ""
	for uid, since := range u {
		if uid == rightful || !c.maybeMaster(k, uid, since) {
			continue
		}
		c.keepUnnamed(k, map[string]int64{uid: since})
		if first == "" || uid < first {
			first = uid
		}
	}
	return first
}

// maybeMaster reports whether a live holder of UID uid (any incarnation)
// may be master of key k on a table it had before since: it has not
// answered a frame sent since, or its state says it is.
func (c *Core) maybeMaster(k, uid string, since int64) bool {
	for _, p := range c.liveByUID(uid) {
		if cl := p.claims[k]; p.echo < since || cl.Term > 0 && cl.Acting {
			return true
		}
	}
	return false
}

// unnamedMaster reports whether a holder the relay no longer names for
// key k may be master still.
func (c *Core) unnamedMaster(k string) bool {
	for uid, since := range c.unnamed[k] {
		if c.maybeMaster(k, uid, since) {
			return true
		}
	}
	return false
}

// keepUnnamed keeps the members u in the relay's unnamed ones for key k.
func (c *Core) keepUnnamed(k string, u map[string]int64) {
	if c.unnamed == nil {
		c.unnamed = make(map[string]map[string]int64)
	}
	if c.unnamed[k] == nil {
		c.unnamed[k] = make(map[string]int64, len(u))
	}
	maps.Copy(c.unnamed[k], u)
}

// votersAgree reads, on a relay, what the other live voters' tables say
// about slot i, which it holds: other, whether one names another node;
// sure, whether every one names this node, is current, has taken in its
// state as it stands and knows no other master of the key (true if there
// is none).
func (c *Core) votersAgree(i int) (other, sure bool) {
	key := c.slotKey(i)
	sure = true
	for _, p := range c.picks.voters {
		e, ok := p.table[key]
		switch {
		case !ok || e.Rightful == "":
			sure = false // it has not taken in this node's keys yet, or waits for its servers
		case e.Rightful != c.cfg.UID:
			other, sure = true, false
		case e.Acting != "" && e.Acting != c.cfg.UID || !p.current() || p.echo < c.rankAt || e.Acting == c.cfg.UID && !c.slots[i].Acting:
			sure = false
		}
	}
	return other, sure
}

// tables reads, on a member, what the live voters relay about slot i:
// the node they name (a master first), whether every one that names the
// key names this node (mine), and whether, besides, every live voter is
// current, has taken in this node's place in the order and knows no
// other master of the key (sure).
func (c *Core) tables(i int) (uid string, mine, sure bool) {
	n := 0
	mine, sure = true, true
	acting := ""
	for _, p := range c.picks.voters {
		e := p.tab[i-1]
		if e.Rightful == "" {
			// It names no live holder (it has not heard of this node's
			// keys yet, or is waiting for its servers): it knows of no
			// master either, whoever is connected to it. It names no
			// one, but it has not taken in this node's state either:
			// once it has, it may name another, which knows it as its
			// only voter (seed 513: two members master of a key at
			// once, each named by one voter, the other's table without
			// the key yet).
			sure = false
			continue
		}
		n++
		if e.Rightful != c.cfg.UID {
			mine = false
			if uid == "" {
				uid = e.Rightful
			}
		}
		if e.Acting != "" && e.Acting != c.cfg.UID {
			sure = false
			if acting == "" {
				acting = e.Acting
			}
		}
		if !p.current() || p.echo < c.rankAt || e.Acting == c.cfg.UID && !c.slots[i].Acting {
			// (A voter that takes it for master while it is not has not
			// its state as it stands: with Sticky, it names it for that
			// alone; seed 10795: a member that had stepped down became
			// master again on such a table, and the mastership went back
			// and forth.)
			sure = false
		}
	}
	if n == 0 {
		return "", false, false
	}
	if mine {
		return c.cfg.UID, true, sure
	}
	if acting != "" {
		uid = acting
	}
	return uid, false, false
}

// tablesNamed is tables' uid and mine for slot i, found once per
// election (picks.tabUID): claimSlot and the snapshot the election ends
// with both ask, and between them no table changes. Outside an
// election, a table may have changed since the last: found again.
func (c *Core) tablesNamed(i int) (uid string, mine bool) {
	pk := &c.picks
	if !c.electing {
		uid, mine, _ = c.tables(i)
		return uid, mine
	}
	if n := len(c.slots); len(pk.tabAt) != n {
		pk.tabUID, pk.tabMine, pk.tabAt = make([]string, n), make([]bool, n), make([]uint64, n)
	}
	if pk.tabAt[i] != pk.epoch {
		pk.tabUID[i], pk.tabMine[i], _ = c.tables(i)
		pk.tabAt[i] = pk.epoch
	}
	return pk.tabUID[i], pk.tabMine[i]
}

// relayNames returns, on a member not named for slot i by every voter,
// the node it names as the slot's master: the one its relay voter names
// (its master, else the node the rules name), if another; none else. The
// other voters send this node only the entries that name it (NamedOnly):
// their others may name a master of before, dead since, for as long as
// the voters disagree. ok: there is a relay (without, every voter sends
// its whole table, and tables' node stands).
func (c *Core) relayNames(i int) (uid string, ok bool) {
	r := c.relayVoter()
	if r == nil {
		return "", false
	}
	switch e := r.tab[i-1]; {
	case e.Acting != "" && e.Acting != c.cfg.UID:
		return e.Acting, true
	case e.Rightful != "" && e.Rightful != c.cfg.UID:
		return e.Rightful, true
	}
	return "", true
}

// sendFirst fills Out.First on a relay: a change to its table reaches
// the other voters, which settle it (settledBut), and the members it
// concerns (named), which claim or step down, before the many members it
// changes nothing for. Between processes on a few cores, each frame a
// voter writes may wake a member that runs before the voter's next write
// (53 processes on 2 cores: a voter's table reached another voter 10 to
// 30 ms after it was sent).
func (c *Core) sendFirst() {
	if !c.relay {
		return
	}
	if c.namedSet == nil {
		c.namedSet = make(map[string]struct{})
	}
	clear(c.namedSet)
	for _, uid := range c.named {
		c.namedSet[uid] = struct{}{}
	}
	for _, p := range c.peers {
		if _, ok := c.namedSet[p.uid]; ok || !p.member {
			for id := range p.conns {
				c.out.First = append(c.out.First, id)
			}
		}
	}
	// With those of the steps before in this batch (the driver applies
	// once): sorted, the same order every time (the simulator replays).
	slices.Sort(c.out.First)
	c.out.First = slices.Compact(c.out.First)
}

// kickSome sends a relay's new state, when only its table changed, to the
// connections of Out.First now, and to the others bulkDelay later (or up
// to Interval/2 while a naming settles: holdBulk), with whatever changes
// by then (one frame, not one per change): a member an entry does not
// name has nothing to decide on it. The kicks of a
// failover (the table that names a new holder, then the same settled
// among the voters, then the holder master) wake each of many members
// once, after the voters and the holder have done, not three times
// while they work.
func (c *Core) kickSome(now int64) {
	if !c.started {
		return
	}
	c.sendFirst()
	if c.out.Kick {
		return // a kick of this batch carries it to every connection
	}
	if c.bulkAt == 0 {
		c.bulkAt, c.bulkFrom = now+int64(c.bulkDelay()), now
	}
	c.wakeAt(c.bulkAt)
}

// bulkDelay is how long kickSome holds a relay's new state back from the
// members it does not concern: Interval/10.
func (c *Core) bulkDelay() Duration { return c.cfg.Interval / 10 }

// holdBulk, at bulkAt, moves bulkAt on if the relay holds its state back
// from the members it does not concern for longer, up to Interval/2
// after it was first held: while a naming in its table is not settled,
// the entry changes again soon (settled, then the holder master), and a
// member it does not concern would take in and decide each step, for
// nothing: it names the holder throughout. While a cluster converges
// every member is named for some key, and they decided mostly such
// entries (BenchmarkMembers/300x100, 10 runs each: convergence 565–953
// ms and 0.87–1.36 CPU-seconds with this, 672–8,639 ms and 1.1–16.7
// without). While two voters name different holders of a key, which
// settles nothing, the members it does not concern get every change
// Interval/2 after it.
func (c *Core) holdBulk(now int64) {
	if end := c.bulkFrom + int64(c.cfg.Interval/2); c.settling && now < end {
		c.bulkAt = min(now+int64(c.bulkDelay()), end)
	}
}
