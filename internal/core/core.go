package core

import (
	"maps"
	"slices"
)

// ConnID names a connection to the core.
type ConnID uint64

// Config is what the core needs of the options.
type Config struct {
	UID      string   // this node's UID (Options.UID)
	Start    int64    // StartTime, Unix ns
	Inc      uint64   // incarnation: random per Msc, tells a restart with the same UID apart
	Prio     int64    // priority (Options.Priority), as last set (SetPriority)
	Interval Duration // heartbeat period (Options.Interval)
	Wait     Duration // WaitTimeout (Options.WaitTimeout): a peer silent longer is dead
	Quorum   int      // acknowledgements a claim needs, this node included; 0 or 1: no quorum
	Sticky   bool     // a live master keeps its mastership (Options.Sticky)
	Balance  bool     // a key's master is its holder of highest rendezvous weight (Options.Balance)
	Observer bool     // never claims, does not vote
	// Voters, if set, are the UIDs whose votes count (Options.Voters);
	// nil: every node that is not an observer.
	Voters map[string]bool
	// WallOffset is the wall clock minus the monotonic clock, in ns, at
	// creation. With Quorum, new terms are at least the wall clock in
	// microseconds, so that a term stays above those of masterships
	// whose voters have all restarted since (and forgotten them).
	WallOffset int64
}

// Core is one node's election state; its methods are the steps (with
// the monotonic time) and the queries. It is not safe for concurrent use:
// one driver calls it.
type Core struct {
	cfg     Config
	started bool // Start has run
	// electDue: a step asked for an election at electAt, not run yet
	// (electLater).
	electDue bool
	electAt  int64
	// electing: Elect runs, from its collect on (tablesNamed).
	electing bool
	self     rank
	selfH    uint64
	conns    map[ConnID]*connState
	peers    map[string]*cpeer
	keys     map[string]struct{}
	meta     map[string]string
	// own indexes this node's keys; ki the keys it has slots for: the
	// same index, but on a relay (a voter, with Options.Voters) every key
	// a known peer holds too (members.go).
	own *KeyIndex
	ki  *KeyIndex
	// slots[0] is the global mastership, slots[i+1] that of ki.List[i].
	slots   []slot
	members // Options.Voters: the relay's and the member's state
	// used is the highest term this node claimed, per key; other the
	// highest term heard of from the others (claims, votes for anyone but
	// this node, and terms they only know of), per key not in the index
	// (those in it: otherAt; otherOf reads either); rival the highest of
	// their claims and votes alone (what outbids this node's claim).
	used, other, rival map[string]uint64
	// known is max(used, other) of each slot's key, by slot as slots: the
	// term every snapshot and heartbeat names for a key this node does
	// not claim, read for every key, without two map lookups each.
	// Neither map ever lowers a term, so it only grows (noteTerm).
	known []uint64
	// otherAt is other of each slot's key, by slot as slots, kept there
	// alone (the map may hold a lower term for it, from before the key
	// came into the index; reindex writes the slots' terms back): a
	// table's entry, read by key position, is checked against it and
	// raises it without a map lookup (learnAt): before, a member wrote
	// the map for each entry of a voter's delta that raised a term.
	otherAt []uint64
	// votes is this node's acknowledgement per key (Quorum); maxVote the
	// claim of highest term it ever acknowledged per key.
	votes   map[string]Vote
	maxVote map[string]Vote
	version uint64 // of this node's state as sent
	dirty   bool   // the state to send changed outside elect (keys, leaving)
	// learned: a higher term was learned, to pass on with a Tick
	// (learnTick; full mesh and members: learn); ticking, the election
	// is the Tick's; ticks counts the Ticks.
	learned, ticking bool
	ticks            uint64

	servers map[string]bool // configured server ids
	pending map[string]bool // servers not yet heard from or failed, since since
	ready   bool
	rejoin  bool // waiting after a pause: only answers to frames sent since count
	readyAt int64
	since   int64
	leaving bool
	resign  bool // Stop has begun: master of nothing, still a member
	// resigned are keys about to be removed (RemoveKey): held, so that no
	// peer takes over, but not claimed.
	resigned map[string]bool
	// sent is when (mono) this node last asked for its heartbeat to go
	// out on every connection: its peers count it dead WaitTimeout after
	// they received the last one.
	sent     int64
	lastStep int64 // mono: the last step (begin)
	lateAt   int64 // mono: when a step last came late (overload.go)
	born     int64 // mono: when the core was made
	refresh  int64 // Quorum: when leases were last recomputed on an echo
	// quorumWarned is when (mono) checkQuorum last reported (0: never),
	// quorumChecked when it last looked; voterSeen its scratch.
	quorumWarned, quorumChecked int64
	voterSeen                   map[string]bool
	yields                      int   // masterships given up to another live node (Sticky: tests expect none)
	waiting                     bool  // without Quorum: a claim waits for the peers' answers
	rankAt                      int64 // mono: when this node's place in the order last changed (start, priority, keys)

	snap   *Snapshot
	order  []*cpeer  // scratch: live peers in election order
	picks  picks     // what an election asks of the slots over order (picks.go)
	part   partial   // partial elections (partial.go)
	echoes []uidEcho // scratch: settle
	wake   int64     // next wake-up wanted (mono); 0: none
	out    Out
}

// connState is a connection the core knows of.
type connState struct {
	upAt   int64  // mono: when it came up
	server string // configured server id; "" for inbound
	tag    uint64 // the same at both ends (the dialer's handshake nonce)
	peer   *cpeer // nil until its first heartbeat
	linked bool   // the peer has identified this node on it
	redial bool   // the peer closes it as silent and redials
	// claims and table are the claims and the relay table (Options.Voters)
	// of the peer's last full form on this connection, stateVer its
	// version: a delta (Msg.Base) applies to them. owned: claims is this
	// connection's own copy, which a delta may change in place.
	claims   map[string]Claim
	table    map[string]TableEntry
	stateVer uint64
	owned    bool
	// mine, on a member: the keys whose entry in table names it (quiet).
	mine map[string]struct{}
}

// New makes the core of a node holding keys. It is not started: until
// Start, steps only record what changes (keys, priority, metadata) and
// nothing is elected or sent.
func New(cfg Config, keys []string, meta map[string]string) *Core {
	c := &Core{
		cfg:     cfg,
		self:    rank{prio: cfg.Prio, start: cfg.Start, uid: cfg.UID},
		selfH:   NodeHash(cfg.UID),
		conns:   make(map[ConnID]*connState),
		peers:   make(map[string]*cpeer),
		keys:    make(map[string]struct{}, len(keys)),
		used:    make(map[string]uint64),
		other:   make(map[string]uint64),
		rival:   make(map[string]uint64),
		votes:   make(map[string]Vote),
		maxVote: make(map[string]Vote),
		servers: make(map[string]bool),
		snap:    &Snapshot{KI: NoKeys},
		version: 1,
		meta:    meta,
	}
	for _, k := range keys {
		c.keys[k] = struct{}{}
	}
	c.initMembers()
	c.reindex(true)
	return c
}

// Start starts the core at now (mono), waiting for servers (those added
// before Start), and runs the first election.
func (c *Core) Start(now int64, servers []string) {
	c.started = true
	for _, s := range servers {
		c.servers[s] = true
	}
	c.sent, c.lastStep, c.born, c.rankAt = now, now, now, now
	c.await(now)
	c.dirty = true
	c.Elect(now)
}

func (c *Core) quorum() bool { return c.cfg.Quorum > 1 }

// await makes the node wait, before it claims anything, until it has heard
// from or failed to reach each server, or WaitTimeout has passed.
func (c *Core) await(now int64) {
	c.pending = make(map[string]bool, len(c.servers))
	for s := range c.servers {
		c.pending[s] = true
	}
	c.ready = len(c.pending) == 0
	c.since = now
	c.readyAt = now + int64(c.cfg.Wait)
}

// checkReady makes the node ready once it has waited long enough for
// its servers (await; resolve, once it has heard from them all):
// WaitTimeout, or while a server it waits for has a connection up and
// its state has not come (slowServer), slowWait WaitTimeouts. Such a
// server is slow (this process or that one is overloaded: a cluster that
// starts at once on a loaded machine), not gone; claiming on a partial
// view would move masterships once it comes (40 nodes holding 1,000 keys
// in one process each claimed at WaitTimeout with 13-23 of its 39 peers
// heard). A connection that ends ends that wait.
func (c *Core) checkReady(now int64) {
	if c.ready {
		return
	}
	if now >= c.readyAt && !c.slowServer() || now >= c.slowEnd() {
		c.ready, c.rejoin = true, false
	}
}

// readyWake is when the node not ready yet looks again (checkReady).
func (c *Core) readyWake(now int64) int64 {
	if now < c.readyAt {
		return c.readyAt
	}
	return c.slowEnd()
}

// slowWait is how many WaitTimeouts a node waits at most for a server
// whose connection is up (checkReady).
const slowWait = 4

// slowEnd is when the wait for slow servers ends, whatever they do.
func (c *Core) slowEnd() int64 { return c.since + slowWait*int64(c.cfg.Wait) }

// slowServer reports whether a server the node waits for has a
// connection up whose peer's state has not come yet: reached, not heard.
// (A peer heard before, after a pause, may not answer at all: a frame
// that repeats the last one is not news to it.)
func (c *Core) slowServer() bool {
	for _, cs := range c.conns {
		if cs.server != "" && c.pending[cs.server] && (cs.peer == nil || cs.peer.version == 0) {
			return true
		}
	}
	return false
}

// begin starts a step: it notices a pause.
func (c *Core) begin(now int64) {
	if !c.started {
		return
	}
	if now-c.lastStep > int64(c.cfg.Interval+c.cfg.Interval/2) {
		// This node did not step for longer than an Interval (stopped,
		// starved): the frames its peers sent meanwhile may wait in the
		// sockets, unread. A connected peer is not counted silent for
		// that: it stays live for an Interval more, time for the readers
		// to hand those frames over.
		for _, p := range c.peers {
			if len(p.conns) > 0 {
				p.heard = max(p.heard, now-int64(c.cfg.Wait-c.cfg.Interval))
			}
		}
	}
	c.lastStep = now
	if c.Paused(now) {
		c.rejoinAt(now)
	}
}

// rejoinAt: this process was paused, starved, or its clock stood still:
// its peers may have counted it dead and elected another master. Claim
// nothing until it has heard from its servers again, and then only once
// every live peer has answered a frame sent from now on (rankAt): a
// peer's frames that waited in the socket during the pause may be stale.
func (c *Core) rejoinAt(now int64) {
	c.await(now)
	if c.ready && len(c.peers) > 0 {
		// No server to hear from, but peers that dialed this node: they
		// may have counted it dead and elected another master, and
		// closed their connections meanwhile; with none left it would
		// claim at once, beside the new master. Wait for them to dial
		// again, WaitTimeout as at a start
		// (TestRulePauseWithoutServersWaits).
		c.ready = false
	}
	c.rankAt = now
	// A relay's table stands through a re-join after a pause shorter
	// than WaitTimeout, until it is ready (heldEntry): by its last send,
	// before the kick below. (A second call of one re-join, or a pause
	// within a re-join, keeps it only if the first kept it.)
	short := now-c.sent < int64(c.cfg.Wait)
	c.holdTable = c.relay && !c.quorum() && short && (!c.rejoin || c.holdTable)
	c.rejoin = true
	c.kick(now)
}

// clockTolerance is how far the wall clock may move on beyond the
// monotonic one between two turns before WallClock counts a jump: M/4,
// far above what NTP slewing makes (0.5 ms/s) and what a thread
// descheduled between the two readings shows on a loaded machine (with
// Interval/20, 5 ms, 20 nodes in one process re-joined after their start
// and moved 80–144 key masterships), and within the lease margin that
// the clock-rate bound leaves (M/2): a lease stretched by less is still
// safe.
func (c *Core) clockTolerance() int64 { return int64(c.margin() / 4) }

// WallClock tells the core the wall clock (Unix ns) at now (mono), as the
// driver reads it each turn. If the wall clock moved on beyond the
// monotonic clock since the core last knew their offset (by more than
// clockTolerance), the monotonic clock stood still while time passed
// (Linux stops it during a suspend; a VM restored from a snapshot jumps
// by part of the time): by wall time this node did not send for that much
// longer, its peers may have counted it dead, and a lease measured on the
// monotonic clock ran that much longer than it shows. The core then
// re-joins as after a pause (it claims nothing until it has heard from
// its peers), even if the jump alone is shorter than FreshFor (seed
// 603: 85 ms of a 284 ms suspend lost, 100 ms after the last send; the
// peers had elected another master), and reports true. The offset is
// taken in at every call: terms and the ticks' phase follow the wall
// clock.
func (c *Core) WallClock(now, wall int64) (jumped bool) {
	off := wall - now
	d := off - c.cfg.WallOffset
	c.cfg.WallOffset = off // a slow drift (NTP slewing) is followed turn by turn
	if d <= c.clockTolerance() || c.leaving {
		return false
	}
	// As if nothing was sent, and no step made, for that much longer.
	c.sent -= d
	c.lastStep -= d
	c.begin(now)
	c.rejoinAt(now)
	return true
}

// Paused reports whether a step at now would notice a pause: this node has
// not sent its heartbeat for longer than freshFor, so its peers may have
// counted it dead.
func (c *Core) Paused(now int64) bool {
	return Duration(now-c.sent) > FreshFor(c.cfg.Interval, c.cfg.Wait) && !c.leaving
}

// kick asks for the heartbeat on every connection now.
func (c *Core) kick(now int64) {
	if !c.started {
		return
	}
	c.out.Kick = true
	c.sent = now
	c.bulkAt = 0
	c.sendFirst() // the order: the voters and the nodes concerned first
}

// Tick is called every Interval: it re-elects and sends the heartbeat.
func (c *Core) Tick(now int64) {
	c.ticking = true
	c.ticks++
	defer func() { c.ticking = false }()
	c.Alarm(now)
	c.kick(now)
}

// learnTicks: in a full mesh and on a member, a term learned goes out
// with one Tick in learnTicks (learn).
const learnTicks = 3

// learnTick reports whether this Tick carries the terms learned: one in
// learnTicks, at a phase of the node's own (its UID's hash), so that the
// nodes, whose Ticks fall at the same instants, do not all send their new
// states at once.
func (c *Core) learnTick() bool { return (c.ticks+c.selfH)%learnTicks == 0 }

// Alarm: the time the core asked for (wake) has come. It re-elects, and
// the heartbeat goes out only if that changed something: the wake-ups of
// a node that hears from many peers at scattered times cost no traffic.
func (c *Core) Alarm(now int64) {
	c.begin(now) // Elect, below, checks readiness (checkReady)
	limit := now - int64(10*c.cfg.Wait)
	for k, p := range c.peers {
		if len(p.conns) == 0 && p.heard < limit {
			c.forget(p.keyList, nil)
			delete(c.peers, k)
		}
	}
	c.Elect(now) // which may hold it on (holdBulk)
	if c.bulkAt != 0 && now >= c.bulkAt {
		c.kick(now) // what kickSome held back
	}
}

// Up: a connection finished its handshake. tag is the same at both ends.
func (c *Core) Up(now int64, id ConnID, server string, tag uint64) {
	c.begin(now)
	c.conns[id] = &connState{upAt: now, server: server, tag: tag}
}

// Down: a connection ended; silent: this end closed it because nothing
// came on it for a while.
func (c *Core) Down(now int64, id ConnID, silent bool) {
	c.begin(now)
	cs := c.conns[id]
	if cs == nil {
		return
	}
	delete(c.conns, id)
	if !c.ready && cs.server != "" && c.pending[cs.server] {
		// A server waited for (checkReady) may be waited for no longer.
		c.electLater(now)
	}
	if p := cs.peer; p != nil {
		delete(p.conns, id)
		// The connection that kept dedupe from closing the others (the
		// peer's of the largest tag, not yet linked: a half-open one,
		// whose other end is gone) may be this one: look again.
		c.dedupe(p)
		if silent || cs.redial {
			// Closed to be dialed again, not by a crash: the peer
			// stays live until WaitTimeout after it was last heard, even
			// if its other connection closes plainly meanwhile (one
			// connection per pair: the peer's dedupe may close the one
			// it dialed, not yet knowing the one kept is gone).
			p.grace = max(p.grace, p.heard+int64(c.cfg.Wait))
		}
		if len(p.conns) == 0 {
			// Its clients may be waiting while another connection was
			// up: dial it again now.
			for s := range p.servers {
				c.out.Wake = append(c.out.Wake, s)
			}
			// As Recv: the connections that end together (a peer's
			// crash seen by many, a voter's members gone) cost one
			// election.
			c.electLater(now)
		}
	}
}

// Heard: a frame that brought nothing new (the driver did not pass it on)
// arrived on connection id at time at. Not a step: it only keeps the
// peer's last-Heard time, for the next one.
func (c *Core) Heard(id ConnID, at int64) {
	if cs := c.conns[id]; cs != nil && cs.peer != nil && at > cs.peer.heard {
		cs.peer.heard = at
	}
}

// Linked reports whether the peer (uid, inc) has a connection up.
func (c *Core) Linked(uid string, inc uint64) bool {
	p := c.peers[peerKey(uid, inc)]
	return p != nil && len(p.conns) > 0
}

// dedupe keeps one connection to p. The node of the larger UID does it:
// it closes the connections it dialed once the peer's (the survivor) is
// known to lead to the peer at both ends (its frames say beatLinked), so
// that neither counts the other dead for a moment. Among several
// connections the peer dialed, the one of the largest tag (the same at
// both ends) survives.
func (c *Core) dedupe(p *cpeer) {
	if len(p.conns) < 2 || c.cfg.UID < p.uid {
		return
	}
	var keep *connState
	var keepID ConnID
	for id := range p.conns {
		if cs := c.conns[id]; cs.server == "" && (keep == nil || cs.tag > keep.tag) {
			keep, keepID = cs, id
		}
	}
	if keep == nil || !keep.linked {
		return
	}
	// In the order of their ids: the closes go out the same way each
	// time (a simulated schedule replays).
	ids := make([]ConnID, 0, len(p.conns))
	for id := range p.conns {
		if id != keepID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c.dropConn(id, c.conns[id])
	}
}

// Unreachable: a configured server could not be reached, at time at.
func (c *Core) Unreachable(now, at int64, server string) {
	c.begin(now)
	c.resolve(now, at, server)
}

// resolve marks a server as heard from or failed to reach at time at;
// what happened before the node began waiting does not count.
func (c *Core) resolve(now, at int64, server string) {
	if server == "" || !c.pending[server] || at < c.since {
		return
	}
	delete(c.pending, server)
	if !c.ready {
		if len(c.pending) == 0 {
			c.ready, c.rejoin = true, false
		} else {
			c.checkReady(now)
		}
		if c.ready {
			c.Elect(now)
		}
	}
}

// AddServer and removeServer change the configured servers.
func (c *Core) AddServer(now int64, id string) {
	c.begin(now)
	c.servers[id] = true
}

// RemoveServer removes a configured server.
func (c *Core) RemoveServer(now int64, id string) {
	c.begin(now)
	delete(c.servers, id)
	c.resolve(now, now, id)
}

// Recv: a heartbeat read from connection id at time at is handled at now.
// back reports whether the peer became live with it. The election it may
// call for runs when the driver next reads the outputs (electLater).
func (c *Core) Recv(now, at int64, id ConnID, b *Msg) (back bool) {
	if !c.Paused(now) && !(c.rejoin && at < c.since) {
		// Not a frame that waited through a pause (begin re-joins, or
		// the turn's Tick did: since).
		c.NoteLate(now, now-at)
	}
	c.begin(now)
	cs := c.conns[id]
	if cs == nil {
		return // already down
	}
	if b.UID == c.cfg.UID {
		if b.Inc == c.cfg.Inc {
			// Connected to itself: a server list that names this node.
			c.resolve(now, at, cs.server)
		} else {
			c.out.Errs = append(c.out.Errs, Fault{Peer: b.UID, Err: ErrDuplicateUID})
		}
		c.dropConn(id, cs)
		return
	}
	if c.apart(b.UID, cs.server) {
		// Two members keep no connection, and a voter does not dial a
		// member: not dialed again, and nothing to wait for.
		if cs.server != "" {
			c.out.Members = append(c.out.Members, cs.server)
		}
		c.resolve(now, at, cs.server)
		c.dropConn(id, cs)
		return
	}
	changed := false
	p := cs.peer
	if p == nil || p.uid != b.UID || p.inc != b.Inc {
		p = c.peers[peerKey(b.UID, b.Inc)]
	}
	if p == nil {
		p = &cpeer{inc: b.Inc, hash: NodeHash(b.UID), conns: make(map[ConnID]struct{}), servers: make(map[string]bool), member: c.isMember(b.UID)}
		p.uid = b.UID
		c.peers[peerKey(b.UID, b.Inc)] = p
		c.sendLearned(now)
	}
	if cs.peer != p {
		if cs.peer != nil {
			delete(cs.peer.conns, id)
		}
		cs.peer = p
		p.conns[id] = struct{}{}
		c.out.Attach = append(c.out.Attach, id)
		changed = true
	}
	if b.Redial {
		cs.redial = true
	}
	if b.Linked && !cs.linked {
		cs.linked = true
		c.dedupe(p)
		if _, ok := p.conns[id]; !ok {
			return // this one was a duplicate
		}
	}
	claims, table := b.Claims, b.Table
	// answer: a new state of the sender is answered at once (below);
	// not, on a member without Quorum, a voter's that changed only
	// entries of its table that name another node (quiet).
	answer := true
	if b.Full {
		if b.Base != 0 {
			if cs.stateVer == 0 || cs.stateVer != b.Base || (b.Table == nil) != (cs.table == nil) {
				// Changes to a state this connection did not carry: its
				// frames came out of order, which TCP does not do. A new
				// connection starts from a whole one.
				c.out.Errs = append(c.out.Errs, Fault{Peer: b.UID, Err: errStaleDelta})
				c.dropConn(id, cs)
				c.electLater(now) // as a close: the peer's connections changed (a member's relay voter)
				return
			}
			cs.mergeClaims(b.Claims, b.Known)
			named := false // an entry that changed names this node, before or after
			for k, e := range b.Table {
				if c.member && cs.named(k, e, c.cfg.UID) {
					named = true
				}
				if e == (TableEntry{}) {
					delete(cs.table, k)
				} else {
					cs.table[k] = e
				}
			}
			claims, table = cs.claims, cs.table
			if c.member && !p.member && !c.quorum() {
				answer = named || !c.quiet(p, b) || c.awaited(cs)
			}
		} else {
			cs.claims, cs.table, cs.owned = b.Claims, b.Table, false
			if c.member {
				clear(cs.mine)
				for k, e := range b.Table {
					cs.named(k, e, c.cfg.UID)
				}
			}
		}
		cs.stateVer = b.Version
	}
	wasLive := p.live(now, c.cfg.Wait)
	if !wasLive && slices.Contains(c.order, p) {
		wasLive = true // silent but waited for (dead, overload.go): not back
	}
	p.heard = now
	p.newest = max(p.newest, b.Version)
	if cs.server != "" && !p.servers[cs.server] {
		p.servers[cs.server] = true
	}
	if b.Leaving && !p.leaving {
		p.leaving = true
		changed = true
	}
	if b.Observer != p.observer {
		p.observer = b.Observer
		changed = true
		c.part.full = true
	}
	news := b.Full && b.Version > p.version
	if news {
		// Newer state: applied even if it came on a slower connection
		// than a short frame of the same version.
		p.version = b.Version
		if p.start != b.Start || p.prio != b.Prio {
			// Its place in the order, as of this state (a priority set
			// changes the version): taken even if the frame was sent
			// before one already read, whose send time the check below
			// wants passed; the frames of this version after it repeat
			// it and are not handed over (seed 51447918: a voter never
			// learned a member's new priority and named another holder
			// of its key than the other voters, for good).
			p.start, p.prio = b.Start, b.Prio
			changed = true
			c.part.full = true
		}
		if !sameKeys(b.Keys, p.keyList) {
			// Keys sent sorted: the same list is the same set, and its
			// map and bitset stay (a churn of claims re-sends the keys).
			c.forget(p.keyList, b.Keys)
			p.keyList = b.Keys
			p.keys = make(map[string]struct{}, len(b.Keys))
			for _, k := range b.Keys {
				p.keys[k] = struct{}{}
			}
			p.ki = nil
		}
		c.takeTable(p, id, b, table)
		p.claims, p.votes, p.meta = claims, b.Votes, b.Meta
		p.actingOK = false
		for k, cl := range b.Claims {
			c.learn(k, cl.Term, true)
		}
		for k, t := range b.Known {
			c.learn(k, t, false)
		}
		for k, v := range p.votes {
			if v.UID != c.cfg.UID || v.Inc != c.cfg.Inc {
				c.learn(k, v.Term, true)
			}
		}
		changed = true
	}
	if !news && b.Full && b.Version == p.version && (p.tableOn == id || b.Base == 0) && b.Table != nil {
		// The state known again, on the connection its table came on: a
		// voter completes the table of a member it held entries back
		// from (the frames of this version before it carried only those
		// that named the member: writer.plan at the root). Or whole, on
		// any connection: the first frame of a connection that replaces
		// one closed before the voter completed the table on it.
		c.takeTable(p, id, b, table)
		p.claims = claims
		changed = true
	}
	if b.Version == p.version && b.Echo > p.echo {
		// A frame of the state known: when it was sent, the peer had
		// taken in this node's frame sent at Echo, and held that state
		// (its votes). Taken even from a frame sent before the newest
		// one read: a peer's frames on two connections interleave (a
		// new connection's first frames echo nothing yet), and an
		// answer that came after them must still count.
		p.echo = b.Echo
		if c.quorum() && now-c.refresh >= int64(c.cfg.Interval/4) || !c.quorum() && c.waiting {
			changed = true // renew the leases, or a claim may be a mastership now
		}
	}
	if b.Sent > p.sent && b.Version == p.version {
		// The newest frame of the state known.
		p.sent = b.Sent
		if p.start != b.Start || p.prio != b.Prio {
			p.start, p.prio = b.Start, b.Prio
			changed = true
			c.part.full = true // its place in the order: every key reads it
		}
		for cid := range p.conns {
			c.out.Echoes = append(c.out.Echoes, ConnEcho{cid, p.sent})
		}
		if news && answer || !b.Reply && p.candidate(c.quorum()) {
			// Echo it back at once. With Quorum: the claimant's lease is
			// anchored at the send time of its frame this echo names, so
			// a prompt echo keeps the lease fresh whatever the latency.
			// Without: a claimant waits for every peer's answer.
			// A new state is answered at once too, even one that came as
			// a reply (news is finite: no frames back and forth): a node
			// that re-joins after a pause waits for answers to its
			// frames, and a voter for answers to a new table before its
			// naming is settled (seed 49872124: a voter's table naming a
			// claimant went out as a reply to it; the claimant's frames
			// after it repeated the last one, were not handed over, and
			// the key had no master).
			// (A member answers a new table that names it, or named it,
			// at once too: without Quorum, a frame that repeats the
			// last one is not handed to the elector, so only a reply
			// carries a new echo; a voter waits for it to stop counting
			// a member it no longer names as master: seed 40001012,
			// where members answered only voters' claims and a key
			// stayed without a master. A table that changed only
			// entries naming others is not answered: quiet.)
			c.out.Reply = append(c.out.Reply, id)
		}
	}
	if !wasLive && p.live(now, c.cfg.Wait) {
		changed = true
	}
	if p.version > 0 && (!c.rejoin || p.echo >= c.since) {
		// Heard all of it: resolve its servers. After a pause, only a
		// frame that answers one sent since: frames that waited in the
		// socket during the pause are stale.
		c.resolve(now, at, cs.server)
		for s := range p.servers {
			c.resolve(now, at, s)
		}
	}
	if changed {
		c.electLater(now)
	}
	return !wasLive && p.live(now, c.cfg.Wait)
}

// takeTable takes in the table of peer p that came on connection id
// with b (table: the connection's, with b merged in). What changed (a
// delta), or all: terms only grow, and the others were learned from the
// state the delta applies to.
func (c *Core) takeTable(p *cpeer, id ConnID, b *Msg, table map[string]TableEntry) {
	if b.Base != 0 && p.tableOn == id && p.tabOK && p.tabKI == c.ki {
		// A delta to the table it holds: only its entries change,
		// found by key position once.
		for k, e := range b.Table {
			if i, ok := c.ki.Idx[k]; ok {
				p.tab[i] = e
				c.markSlot(int(i) + 1)
				c.learnAt(int(i)+1, k, e.Term)
			} else {
				c.learn(k, e.Term, false)
			}
		}
	} else {
		p.tabOK = false
		for k, e := range b.Table {
			c.learn(k, e.Term, false)
		}
	}
	p.table, p.tableOn = table, id
}

// electLater asks for an election at now, held until the driver reads
// the outputs (flush) or another step elects: a burst of frames with
// news, taken in as one batch, costs one election, not one per frame.
func (c *Core) electLater(now int64) {
	c.electDue, c.electAt = true, now
}

// flush runs the election a step left for later.
func (c *Core) flush() {
	if c.electDue {
		c.Elect(c.electAt)
	}
}

// mergeClaims applies a delta's claims and known terms (Msg.Base) to the
// claims the connection carried: a known term replaces a claim of its
// key. The first delta after a whole state copies that state's map,
// which the message's sender may still hold.
func (cs *connState) mergeClaims(claims map[string]Claim, known map[string]uint64) {
	if len(claims)+len(known) == 0 {
		return
	}
	if !cs.owned {
		cs.claims, cs.owned = maps.Clone(cs.claims), true
		if cs.claims == nil {
			cs.claims = make(map[string]Claim, len(claims))
		}
	}
	for k, cl := range claims {
		if cl.Term == 0 {
			delete(cs.claims, k)
		} else {
			cs.claims[k] = cl
		}
	}
	for k, t := range known {
		if t != 0 {
			delete(cs.claims, k)
		}
	}
}

// named records, on a member, whether the entry e for key k that
// connection cs carries from now on names uid, and reports whether it
// does or the one before did.
func (cs *connState) named(k string, e TableEntry, uid string) bool {
	_, before := cs.mine[k]
	switch {
	case e.names(uid):
		if cs.mine == nil {
			cs.mine = make(map[string]struct{})
		}
		cs.mine[k] = struct{}{}
		return true
	case before:
		delete(cs.mine, k)
	}
	return before
}

func (c *Core) dropConn(id ConnID, cs *connState) {
	delete(c.conns, id)
	if cs.peer != nil {
		delete(cs.peer.conns, id)
	}
	c.out.Close = append(c.out.Close, id)
}

// SetKeys changes this node's key set.
func (c *Core) SetKeys(now int64, add, remove []string) {
	c.begin(now)
	changed := false
	for _, k := range add {
		if _, ok := c.keys[k]; !ok {
			c.keys[k] = struct{}{}
			changed = true
		}
	}
	for _, k := range remove {
		delete(c.resigned, k)
		if _, ok := c.keys[k]; ok {
			delete(c.keys, k)
			changed = true
		}
	}
	unresigned := false
	for _, k := range add {
		if c.resigned[k] {
			delete(c.resigned, k)
			unresigned = true
		}
	}
	if !changed {
		if unresigned {
			// A key held and given up (RemoveKey in progress) is
			// competed for again: at once, and by a partial election too.
			c.part.full = true
			c.Elect(now)
		}
		return
	}
	c.countKeys(add, remove)
	c.rankAt = now
	c.reindex(true)
	c.dirty = true
	c.Elect(now)
}

// ResignKeys gives up the masterships of keys but keeps holding them,
// until setKeys removes them.
func (c *Core) ResignKeys(now int64, keys []string) {
	c.begin(now)
	c.part.full = true
	if c.resigned == nil {
		c.resigned = make(map[string]bool)
	}
	for _, k := range keys {
		if _, ok := c.keys[k]; ok {
			c.resigned[k] = true
		}
	}
	c.Elect(now)
}

// SetPriority changes this node's priority.
func (c *Core) SetPriority(now int64, prio int64) {
	c.begin(now)
	c.self.prio, c.cfg.Prio = prio, prio
	c.rankAt = now
	c.dirty = true
	c.Elect(now)
}

// SetMeta changes this node's metadata.
func (c *Core) SetMeta(now int64, meta map[string]string) {
	c.begin(now)
	c.meta = meta
	c.dirty = true
	c.Elect(now)
}

// SetResign and setLeave: Stop's two steps.
func (c *Core) SetResign(now int64) {
	c.begin(now)
	c.resign = true
	c.Elect(now)
}

// SetLeave is Stop's second step: this node leaves.
func (c *Core) SetLeave(now int64) {
	c.begin(now)
	c.resign, c.leaving = true, true
	c.dirty = true
	c.Elect(now)
	c.kick(now)
}

// Elect recomputes claims, votes and masterships; it sets c.out.snap and
// c.out.beat when they change.
func (c *Core) Elect(now int64) {
	if !c.started {
		return // Start elects
	}
	c.electDue = false
	c.wake = 0
	c.waiting = false
	c.checkReady(now)
	if !c.ready && !c.leaving {
		c.wakeAt(c.readyWake(now))
	}
	c.collect(now)
	c.electing = true
	defer func() { c.electing = false }()
	for _, p := range c.order {
		// A live peer silent for WaitTimeout is dead then (once
		// confirmed: dead), not at the next tick.
		if t := p.heard + int64(c.cfg.Wait) + 1; t > now {
			c.wakeAt(t)
		}
	}
	changed := false
	partial := c.beginPartial()
	for i := range c.slots {
		if partial && !c.decides(i) {
			continue
		}
		c.part.eval.set(i)
		if c.claimSlot(now, i) {
			changed = true
		}
	}
	if c.quorum() {
		c.checkQuorum(now)
		if c.castVotes(now) {
			changed = true
		}
		for i := range c.slots {
			if c.settle(now, i) {
				changed = true
			}
		}
		c.refresh = now
	}
	// Only the table changed (a relay): kickSome, unless the heartbeat
	// goes out anyway (Tick).
	tableOnly := !changed && !c.dirty && !c.ticking
	if c.relay && c.buildTable(now) {
		changed = true
	} else {
		tableOnly = false
	}
	if changed || c.dirty || c.learned && c.ticking && c.learnTick() {
		c.version++
		c.dirty, c.learned = false, false
		c.publish()
		if tableOnly {
			c.kickSome(now)
		} else {
			c.kick(now)
		}
	}
	if c.bulkAt != 0 {
		if now >= c.bulkAt {
			c.holdBulk(now) // on this election's table
		}
		c.wakeAt(c.bulkAt)
	}
	s := c.snapshot(partial)
	c.endPartial()
	if s != c.snap {
		c.snap = s
		c.out.Snap = s
	}
}

func (c *Core) wakeAt(t int64) {
	if c.wake == 0 || t < c.wake {
		c.wake = t
	}
}

// MasterMeta returns a copy of the metadata of the master of key.
func (c *Core) MasterMeta(key string) (map[string]string, bool) {
	c.flush()
	s := c.snap
	uid := s.MasterUID
	if key != "" {
		ks, has := s.Key(key)
		if !has {
			return nil, false
		}
		uid = ks.UID
	}
	if uid == "" {
		return nil, false
	}
	if uid == c.cfg.UID {
		return maps.Clone(c.meta), true
	}
	if ps := c.liveByUID(uid); len(ps) > 0 {
		return maps.Clone(ps[0].meta), true
	}
	return nil, false
}

// sameKeys reports whether two sorted key lists are the same. A
// connection's frames name the list they last sent whole (a delta has
// none): the same slice, whose thousand keys need no comparing.
func sameKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return slices.Equal(a, b)
}

// sendLearned sends the terms learned and not passed on yet (learn) now,
// not with a later Tick (learnTick): a process not heard before spoke.
// It may be a master's new incarnation, or a new node that is master
// next; it learns the terms used before from its peers' states only once
// their masters are gone, and on a state without the last one it would
// claim that term again.
func (c *Core) sendLearned(now int64) {
	if c.learned {
		c.dirty = true
		c.electLater(now)
	}
}
