package msc

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
)

// The election core: all election state in one type, with no goroutine,
// no clock read, no socket and no randomness inside. Its inputs are
// events (a heartbeat received, a connection up or down, a tick, a local
// change), each with the current monotonic time; after each one it
// leaves in c.out what the drivers must do: the snapshot to publish, the
// heartbeat to send, the connections to close, the echoes to send back,
// the errors to report. The elector goroutine (elector.go) drives it
// over real sockets; the simulator (sim_test.go) drives many of them over
// a simulated network in virtual time.
//
// # The protocol
//
// Every mastership, global (key "") or of a key, is a claim with a term.
// The node the rules name (the oldest, or with Balance the heaviest, among
// the live nodes holding the key; with Sticky a live master first) claims
// it with a term above every term it has heard of for that key; a node
// that claims nothing sends the highest term it knows of, so that a node
// that comes later takes one above it.
//
// Without Quorum a claim is a mastership as soon as no live peer is
// master of it: a master steps down when it hears of the node the rules
// name, which then takes over (a handoff, not an overlap).
//
// With Quorum, a node also votes: for each key, it acknowledges at most
// one claim at a time, never a term at or below one it acknowledged
// before, and it keeps acknowledging a claim (a promise) until the
// claimant withdraws, leaves, or has not been heard for WaitTimeout+M.
// A claim is a mastership once Quorum nodes, the claimant included,
// acknowledge it: two claims of one term cannot both gather a majority,
// so terms are unique. Its lease runs until WaitTimeout after the send
// time of the claimant's newest heartbeat that the Quorum-1'th freshest
// acknowledging peer echoed back; that peer's promise runs until at least
// WaitTimeout+M after it received that heartbeat, which is later. So a
// master's lease ends at least M before anyone else can be acknowledged:
// never two masters at one instant, with clock rates apart by up to
// M/(WaitTimeout+M).

// connID names a connection to the core.
type connID uint64

// coreConfig is what the core needs of the options.
type coreConfig struct {
	uid      string
	start    int64 // StartTime, Unix ns
	inc      uint64
	prio     int64
	interval time.Duration
	wait     time.Duration
	quorum   int
	sticky   bool
	balance  bool
	observer bool // never claims, does not vote
	// voters, if set, are the UIDs whose votes count (Options.Voters);
	// nil: every node that is not an observer.
	voters map[string]bool
	// wallOffset is the wall clock minus the monotonic clock, in ns, at
	// creation. With Quorum, new terms are at least the wall clock in
	// microseconds, so that a term stays above those of masterships
	// whose voters have all restarted since (and forgotten them).
	wallOffset int64
}

// claim is a node's claim of a mastership.
type claim struct {
	term   uint64
	acting bool // acknowledged by a quorum (or no Quorum): master
}

// vote is a node's acknowledgement of a claim.
type vote struct {
	uid  string
	inc  uint64
	term uint64
}

// slot is this node's claim of one mastership.
type slot struct {
	claim
	lease int64 // with Quorum, while acting: master until then (mono)
	since int64 // when the claim was made (mono)
}

// cpeer is what the core knows of another node (one process: UID and
// incarnation).
type cpeer struct {
	rank
	inc      uint64
	hash     uint64 // nodeHash(uid), for Balance
	conns    map[connID]struct{}
	servers  map[string]bool // configured server ids it answered on
	heard    int64           // mono: its newest frame arrived
	sent     int64           // its clock: send time of its newest frame processed
	echo     int64           // this node's clock: send time of this node's newest frame it had processed
	observer bool            // it never claims and does not vote
	meta     map[string]string
	version  uint64 // version of its state (keys, claims, votes) known; 0: none yet
	newest   uint64 // the newest version its frames announced
	grace    int64  // mono: live until then without a connection (one closed to be redialed)
	leaving  bool
	keys     map[string]struct{}
	claims   map[string]claim
	votes    map[string]vote
	// Bitsets over the core's key index, rebuilt when either changes.
	ki     *keyIndex
	has    bitset // holds the key
	acting bitset // claims the key and is master of it
}

// live: connected, heard within WaitTimeout, not leaving, state known.
func (p *cpeer) live(now int64, wait time.Duration) bool {
	return (len(p.conns) > 0 || now <= p.grace) && !p.leaving && p.version > 0 && time.Duration(now-p.heard) <= wait
}

// candidate reports whether p claims something it should be answered on
// at once: with Quorum any claim (leases), without it a claim that is not
// a mastership yet.
func (p *cpeer) candidate(quorum bool) bool {
	for _, cl := range p.claims {
		if quorum || !cl.acting {
			return true
		}
	}
	return false
}

// current reports whether p's newest state is known: a frame announced no
// newer one (its full form follows on that connection). Until then, that
// p was master may be stale.
func (p *cpeer) current() bool { return p.version >= p.newest }

func peerKey(uid string, inc uint64) string {
	return uid + "/" + strconv.FormatUint(inc, 16)
}

// beatMsg is a decoded heartbeat, as the core takes it. Keys, claims and
// votes are set only in the full form (full).
type beatMsg struct {
	uid      string
	start    int64
	inc      uint64
	prio     int64
	sent     int64 // the sender's clock at sending
	echo     int64 // the receiver's clock: send time of its newest frame the sender had processed
	version  uint64
	leaving  bool
	full     bool
	reply    bool // sent at once in answer to a frame of this node
	linked   bool // the sender has identified this node on the connection
	redial   bool // the sender closes the connection as silent, and redials
	observer bool
	meta     map[string]string
	keys     []string
	claims   map[string]claim
	known    map[string]uint64
	votes    map[string]vote
}

// coreOut is what the drivers must do after a step. The outputs of
// several steps accumulate until the driver takes them (reset): a driver
// may take in a burst of events, then apply once.
type coreOut struct {
	snap   *snapshot // the snapshot to publish; nil: unchanged
	beat   *beat     // the heartbeat to send from now on; nil: unchanged
	kick   bool      // send the heartbeat on every connection now
	close  []connID  // connections to close
	wake   []string  // servers to dial again now
	attach []connID  // connections now known to lead to a peer (beatLinked from now on)
	reply  []connID  // connections to send the heartbeat on now, as a reply
	echo   []connEcho
	errs   []error
}

// reset empties the outputs, keeping their storage: a steady heartbeat
// allocates nothing.
func (o *coreOut) reset() {
	o.snap, o.beat, o.kick = nil, nil, false
	o.close, o.wake, o.attach, o.reply = o.close[:0], o.wake[:0], o.attach[:0], o.reply[:0]
	o.echo, o.errs = o.echo[:0], o.errs[:0]
}

// connEcho is the echo to send on a connection from now on.
type connEcho struct {
	id   connID
	echo int64
}

type core struct {
	cfg   coreConfig
	self  rank
	selfH uint64
	conns map[connID]*connState
	peers map[string]*cpeer
	keys  map[string]struct{}
	meta  map[string]string
	ki    *keyIndex
	// slots[0] is the global mastership, slots[i+1] that of ki.list[i].
	slots []slot
	// used is the highest term this node claimed, per key; other the
	// highest term heard of from the others (claims, votes for anyone but
	// this node, and terms they only know of), per key; rival the highest
	// of their claims and votes alone (what outbids this node's claim).
	used, other, rival map[string]uint64
	// votes is this node's acknowledgement per key (Quorum); maxVote the
	// claim of highest term it ever acknowledged per key.
	votes   map[string]vote
	maxVote map[string]vote
	version uint64 // of this node's state as sent
	dirty   bool   // the state to send changed outside elect (keys, leaving)

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
	born     int64 // mono: when the core was made
	refresh  int64 // Quorum: when leases were last recomputed on an echo
	// quorumWarned is when (mono) checkQuorum last reported (0: never),
	// quorumChecked when it last looked; voterSeen its scratch.
	quorumWarned, quorumChecked int64
	voterSeen                   map[string]bool
	yields                      int   // masterships given up to another live node (Sticky: tests expect none)
	waiting                     bool  // without Quorum: a claim waits for the peers' answers
	rankAt                      int64 // mono: when this node's place in the order last changed (start, priority, keys)

	snap   *snapshot
	spare  *snapshot // built and found equal to snap: reused by the next election
	order  []*cpeer  // scratch: live peers in election order
	echoes []uidEcho // scratch: settle
	wake   int64     // next wake-up wanted (mono); 0: none
	out    coreOut
}

// connState is a connection the core knows of.
type connState struct {
	upAt   int64  // mono: when it came up
	server string // configured server id; "" for inbound
	tag    uint64 // the same at both ends (the dialer's handshake nonce)
	peer   *cpeer // nil until its first heartbeat
	linked bool   // the peer has identified this node on it
	redial bool   // the peer closes it as silent and redials
}

func newCore(cfg coreConfig, keys []string, servers []string, now int64, meta map[string]string) *core {
	c := &core{
		cfg:     cfg,
		self:    rank{prio: cfg.prio, start: cfg.start, uid: cfg.uid},
		selfH:   nodeHash(cfg.uid),
		conns:   make(map[connID]*connState),
		peers:   make(map[string]*cpeer),
		keys:    make(map[string]struct{}, len(keys)),
		used:    make(map[string]uint64),
		other:   make(map[string]uint64),
		rival:   make(map[string]uint64),
		votes:   make(map[string]vote),
		maxVote: make(map[string]vote),
		servers: make(map[string]bool, len(servers)),
		snap:    &snapshot{ki: noKeys},
		version: 1,
		meta:    meta,
	}
	for _, k := range keys {
		c.keys[k] = struct{}{}
	}
	for _, s := range servers {
		c.servers[s] = true
	}
	c.ki = newKeyIndex(c.keys)
	c.slots = make([]slot, 1+len(c.ki.list))
	c.sent, c.lastStep, c.born, c.rankAt = now, now, now, now
	c.await(now)
	c.dirty = true
	c.elect(now)
	return c
}

// margin is the lease margin M = max(Interval, WaitTimeout/4).
func (c *core) margin() time.Duration { return leaseMargin(c.cfg.interval, c.cfg.wait) }

func leaseMargin(interval, wait time.Duration) time.Duration { return max(interval, wait/4) }

// silentAfter is how long a connection may carry nothing before its
// reader closes it: (WaitTimeout+Interval)/2, so that a broken flow is
// redialed before the peer counts dead at WaitTimeout.
func silentAfter(interval, wait time.Duration) time.Duration { return (wait + interval) / 2 }

// freshFor is how long after this node last sent its heartbeat a
// mastership still holds (IsMaster): WaitTimeout-M/2. Its peers count it
// dead WaitTimeout after they received that heartbeat, which is later; a
// process paused (or starved) past it answers false when it resumes,
// before its elector has run, even if its clock ran up to
// M/(2*WaitTimeout) slow. It is measured from the last send, not from the
// elector's last step: a node that stepped just before a pause (on a
// peer's frame) sent its last heartbeat up to an Interval earlier.
func freshFor(interval, wait time.Duration) time.Duration {
	return wait - leaseMargin(interval, wait)/2
}

func (c *core) quorum() bool { return c.cfg.quorum > 1 }

// await makes the node wait, before it claims anything, until it has heard
// from or failed to reach each server, or WaitTimeout has passed.
func (c *core) await(now int64) {
	c.pending = make(map[string]bool, len(c.servers))
	for s := range c.servers {
		c.pending[s] = true
	}
	c.ready = len(c.pending) == 0
	c.since = now
	c.readyAt = now + int64(c.cfg.wait)
}

// begin starts a step: it notices a pause.
func (c *core) begin(now int64) {
	if now-c.lastStep > int64(c.cfg.interval+c.cfg.interval/2) {
		// This node did not step for longer than an Interval (stopped,
		// starved): the frames its peers sent meanwhile may wait in the
		// sockets, unread. A connected peer is not counted silent for
		// that: it stays live for an Interval more, time for the readers
		// to hand those frames over.
		for _, p := range c.peers {
			if len(p.conns) > 0 {
				p.heard = max(p.heard, now-int64(c.cfg.wait-c.cfg.interval))
			}
		}
	}
	c.lastStep = now
	if c.paused(now) {
		// This process was paused, starved, or its clock stood still:
		// its peers may have counted it dead and elected another master.
		// Claim nothing until it has heard from its servers again, and
		// then only once every live peer has answered a frame sent from
		// now on (rankAt): a peer's frames that waited in the socket
		// during the pause may be stale.
		c.await(now)
		c.rankAt = now
		c.rejoin = true
		c.kick(now)
	}
}

// paused reports whether a step at now would notice a pause: this node has
// not sent its heartbeat for longer than freshFor, so its peers may have
// counted it dead.
func (c *core) paused(now int64) bool {
	return time.Duration(now-c.sent) > freshFor(c.cfg.interval, c.cfg.wait) && !c.leaving
}

// kick asks for the heartbeat on every connection now.
func (c *core) kick(now int64) {
	c.out.kick = true
	c.sent = now
}

// tick is called every Interval: it re-elects and sends the heartbeat.
func (c *core) tick(now int64) {
	c.alarm(now)
	c.kick(now)
}

// alarm: the time the core asked for (wake) has come. It re-elects, and
// the heartbeat goes out only if that changed something: the wake-ups of
// a node that hears from many peers at scattered times cost no traffic.
func (c *core) alarm(now int64) {
	c.begin(now)
	if !c.ready && now >= c.readyAt {
		c.ready, c.rejoin = true, false
	}
	limit := now - int64(10*c.cfg.wait)
	for k, p := range c.peers {
		if len(p.conns) == 0 && p.heard < limit {
			delete(c.peers, k)
		}
	}
	c.elect(now)
}

// up: a connection finished its handshake. tag is the same at both ends.
func (c *core) up(now int64, id connID, server string, tag uint64) {
	c.begin(now)
	c.conns[id] = &connState{upAt: now, server: server, tag: tag}
}

// down: a connection ended; silent: this end closed it because nothing
// came on it for a while.
func (c *core) down(now int64, id connID, silent bool) {
	c.begin(now)
	cs := c.conns[id]
	if cs == nil {
		return
	}
	delete(c.conns, id)
	if p := cs.peer; p != nil {
		delete(p.conns, id)
		if silent || cs.redial {
			// Closed to be dialed again, not by a crash: the peer
			// stays live until WaitTimeout after it was last heard, even
			// if its other connection closes plainly meanwhile (one
			// connection per pair: the peer's dedupe may close the one
			// it dialed, not yet knowing the one kept is gone).
			p.grace = max(p.grace, p.heard+int64(c.cfg.wait))
		}
		if len(p.conns) == 0 {
			// Its clients may be waiting while another connection was
			// up: dial it again now.
			for s := range p.servers {
				c.out.wake = append(c.out.wake, s)
			}
			c.elect(now)
		}
	}
}

// heard: a frame that brought nothing new (the driver did not pass it on)
// arrived on connection id at time at. Not a step: it only keeps the
// peer's last-heard time, for the next one.
func (c *core) heard(id connID, at int64) {
	if cs := c.conns[id]; cs != nil && cs.peer != nil && at > cs.peer.heard {
		cs.peer.heard = at
	}
}

// linked reports whether the peer (uid, inc) has a connection up.
func (c *core) linked(uid string, inc uint64) bool {
	p := c.peers[peerKey(uid, inc)]
	return p != nil && len(p.conns) > 0
}

// dedupe keeps one connection to p. The node of the larger UID does it:
// it closes the connections it dialed once the peer's (the survivor) is
// known to lead to the peer at both ends (its frames say beatLinked), so
// that neither counts the other dead for a moment. Among several
// connections the peer dialed, the one of the largest tag (the same at
// both ends) survives.
func (c *core) dedupe(p *cpeer) {
	if len(p.conns) < 2 || c.cfg.uid < p.uid {
		return
	}
	var keep *connState
	var keepID connID
	for id := range p.conns {
		if cs := c.conns[id]; cs.server == "" && (keep == nil || cs.tag > keep.tag) {
			keep, keepID = cs, id
		}
	}
	if keep == nil || !keep.linked {
		return
	}
	for id := range p.conns {
		if id != keepID {
			c.dropConn(id, c.conns[id])
		}
	}
}

// unreachable: a configured server could not be reached, at time at.
func (c *core) unreachable(now, at int64, server string) {
	c.begin(now)
	c.resolve(now, at, server)
}

// resolve marks a server as heard from or failed to reach at time at;
// what happened before the node began waiting does not count.
func (c *core) resolve(now, at int64, server string) {
	if server == "" || !c.pending[server] || at < c.since {
		return
	}
	delete(c.pending, server)
	if !c.ready && len(c.pending) == 0 {
		c.ready, c.rejoin = true, false
		c.elect(now)
	}
}

// addServer and removeServer change the configured servers.
func (c *core) addServer(now int64, id string) {
	c.begin(now)
	c.servers[id] = true
}

func (c *core) removeServer(now int64, id string) {
	c.begin(now)
	delete(c.servers, id)
	c.resolve(now, now, id)
}

// recv: a heartbeat read from connection id at time at is handled at now.
func (c *core) recv(now, at int64, id connID, b *beatMsg) {
	c.begin(now)
	cs := c.conns[id]
	if cs == nil {
		return // already down
	}
	if b.uid == c.cfg.uid {
		if b.inc == c.cfg.inc {
			// Connected to itself: a server list that names this node.
			c.resolve(now, at, cs.server)
		} else {
			c.out.errs = append(c.out.errs, &PeerError{Peer: b.uid, Err: ErrDuplicateUID})
		}
		c.dropConn(id, cs)
		return
	}
	changed := false
	p := cs.peer
	if p == nil || p.uid != b.uid || p.inc != b.inc {
		p = c.peers[peerKey(b.uid, b.inc)]
	}
	if p == nil {
		p = &cpeer{inc: b.inc, hash: nodeHash(b.uid), conns: make(map[connID]struct{}), servers: make(map[string]bool)}
		p.uid = b.uid
		c.peers[peerKey(b.uid, b.inc)] = p
	}
	if cs.peer != p {
		if cs.peer != nil {
			delete(cs.peer.conns, id)
		}
		cs.peer = p
		p.conns[id] = struct{}{}
		c.out.attach = append(c.out.attach, id)
		changed = true
	}
	if b.redial {
		cs.redial = true
	}
	if b.linked && !cs.linked {
		cs.linked = true
		c.dedupe(p)
		if _, ok := p.conns[id]; !ok {
			return // this one was a duplicate
		}
	}
	wasLive := p.live(now, c.cfg.wait)
	p.heard = now
	p.newest = max(p.newest, b.version)
	if cs.server != "" && !p.servers[cs.server] {
		p.servers[cs.server] = true
	}
	if b.leaving && !p.leaving {
		p.leaving = true
		changed = true
	}
	if b.observer != p.observer {
		p.observer = b.observer
		changed = true
	}
	if b.full && b.version > p.version {
		// Newer state: applied even if it came on a slower connection
		// than a short frame of the same version.
		p.version = b.version
		p.keys = make(map[string]struct{}, len(b.keys))
		for _, k := range b.keys {
			p.keys[k] = struct{}{}
		}
		p.claims, p.votes, p.meta = b.claims, b.votes, b.meta
		for k, cl := range p.claims {
			c.learn(k, cl.term, true)
		}
		for k, t := range b.known {
			c.learn(k, t, false)
		}
		for k, v := range p.votes {
			if v.uid != c.cfg.uid || v.inc != c.cfg.inc {
				c.learn(k, v.term, true)
			}
		}
		p.ki = nil
		changed = true
	}
	if b.sent > p.sent && b.version == p.version {
		// The newest frame of the state known: its echo is current.
		p.sent = b.sent
		if b.echo > p.echo {
			p.echo = b.echo
			if c.quorum() && now-c.refresh >= int64(c.cfg.interval/4) || !c.quorum() && c.waiting {
				changed = true // renew the leases, or a claim may be a mastership now
			}
		}
		if p.start != b.start || p.prio != b.prio {
			p.start, p.prio = b.start, b.prio
			changed = true
		}
		for cid := range p.conns {
			c.out.echo = append(c.out.echo, connEcho{cid, p.sent})
		}
		if !b.reply && p.candidate(c.quorum()) {
			// Echo it back at once. With Quorum: the claimant's lease is
			// anchored at the send time of its frame this echo names, so
			// a prompt echo keeps the lease fresh whatever the latency.
			// Without: a claimant waits for every peer's answer.
			c.out.reply = append(c.out.reply, id)
		}
	}
	if !wasLive && p.live(now, c.cfg.wait) {
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
		c.elect(now)
	}
}

// learn records a term heard of for key: of a claim or a vote (rival),
// or only known to a peer, perhaps this node's own term passed on. A
// higher one for a mastership this node competes for is passed on in
// turn (the state it sends changes).
func (c *core) learn(key string, term uint64, rival bool) {
	if rival && term > c.rival[key] {
		c.rival[key] = term
	}
	if term <= c.other[key] {
		return
	}
	c.other[key] = term
	if _, ok := c.slotIndex(key); ok {
		c.dirty = true
	}
}

func (c *core) dropConn(id connID, cs *connState) {
	delete(c.conns, id)
	if cs.peer != nil {
		delete(cs.peer.conns, id)
	}
	c.out.close = append(c.out.close, id)
}

// setKeys changes this node's key set.
func (c *core) setKeys(now int64, add, remove []string) {
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
	for _, k := range add {
		delete(c.resigned, k)
	}
	if !changed {
		return
	}
	old, oldSlots := c.ki, c.slots
	c.rankAt = now
	c.ki = newKeyIndex(c.keys)
	c.slots = make([]slot, 1+len(c.ki.list))
	c.slots[0] = oldSlots[0]
	for i, k := range c.ki.list {
		if j, ok := old.idx[k]; ok {
			c.slots[i+1] = oldSlots[j+1]
		}
	}
	c.dirty = true
	c.elect(now)
}

// resignKeys gives up the masterships of keys but keeps holding them,
// until setKeys removes them.
func (c *core) resignKeys(now int64, keys []string) {
	c.begin(now)
	if c.resigned == nil {
		c.resigned = make(map[string]bool)
	}
	for _, k := range keys {
		if _, ok := c.keys[k]; ok {
			c.resigned[k] = true
		}
	}
	c.elect(now)
}

// setPriority changes this node's priority.
func (c *core) setPriority(now int64, prio int64) {
	c.begin(now)
	c.self.prio, c.cfg.prio = prio, prio
	c.rankAt = now
	c.dirty = true
	c.elect(now)
}

// setMeta changes this node's metadata.
func (c *core) setMeta(now int64, meta map[string]string) {
	c.begin(now)
	c.meta = meta
	c.dirty = true
	c.elect(now)
}

// setResign and setLeave: Stop's two steps.
func (c *core) setResign(now int64) {
	c.begin(now)
	c.resign = true
	c.elect(now)
}

func (c *core) setLeave(now int64) {
	c.begin(now)
	c.resign, c.leaving = true, true
	c.dirty = true
	c.elect(now)
	c.kick(now)
}

// elect recomputes claims, votes and masterships; it sets c.out.snap and
// c.out.beat when they change.
func (c *core) elect(now int64) {
	c.wake = 0
	c.waiting = false
	if !c.ready && !c.leaving {
		c.wakeAt(c.readyAt)
	}
	c.collect(now)
	for _, p := range c.order {
		// A live peer silent for WaitTimeout is dead then, not at the
		// next tick.
		c.wakeAt(p.heard + int64(c.cfg.wait) + 1)
	}
	changed := false
	for i := range c.slots {
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
	if changed || c.dirty {
		c.version++
		c.dirty = false
		c.publish()
		c.kick(now)
	}
	s := c.snapshot(c.spare)
	if !s.equal(c.snap) {
		c.snap, c.spare = s, nil
		c.out.snap = s
	} else {
		c.spare = s // unpublished: reused by the next election
	}
}

func (c *core) wakeAt(t int64) {
	if c.wake == 0 || t < c.wake {
		c.wake = t
	}
}

// collect fills c.order with the live peers in election order and brings
// their bitsets up to date.
func (c *core) collect(now int64) {
	c.order = c.order[:0]
	for _, p := range c.peers {
		if !p.live(now, c.cfg.wait) {
			continue
		}
		if p.ki != c.ki {
			p.ki = c.ki
			n := (len(c.ki.list) + 63) / 64
			p.has, p.acting = make(bitset, n), make(bitset, n)
			for k := range p.keys {
				if i, ok := c.ki.idx[k]; ok {
					p.has.set(int(i))
				}
			}
			for k, cl := range p.claims {
				if i, ok := c.ki.idx[k]; ok && cl.term > 0 && cl.acting {
					p.acting.set(int(i))
				}
			}
		}
		c.order = append(c.order, p)
	}
	sort.Slice(c.order, func(i, j int) bool { return c.order[i].before(c.order[j].rank) })
}

// slotKey is the key of slot i ("" for the global mastership).
func (c *core) slotKey(i int) string {
	if i == 0 {
		return ""
	}
	return c.ki.list[i-1]
}

// holds reports whether live peer p competes for slot i, and whether it
// is master of it as far as this node knows (see cpeer.current).
func (c *core) holds(p *cpeer, i int) (holds, acting bool) {
	if p.observer {
		return false, false
	}
	if i == 0 {
		cl := p.claims[""]
		return true, cl.term > 0 && cl.acting
	}
	return p.has.has(i - 1), p.acting.has(i - 1)
}

// rightful returns the node the rules name for slot i: with Sticky a
// live master first; else (and among several masters) the first in
// order, or for a key with Balance the one of highest weight. self is
// true when it is this node.
func (c *core) rightful(i int) (uid string, self bool) {
	if c.cfg.sticky {
		// A live master keeps it; among several (a healed partition
		// without Quorum), the first by the rules below. With Quorum
		// there are never several: another node that looks like a
		// master too is seen through stale frames.
		// A higher priority still wins (SetPriority moves a master).
		top := c.maxPrio(i)
		if c.slots[i].acting && c.quorum() && (c.self.prio >= top || i > 0 && c.cfg.balance) {
			return c.cfg.uid, true
		}
		if uid, self, ok := c.first(i, true); ok && (c.prioOf(uid) >= top || i > 0 && c.cfg.balance) {
			return uid, self
		}
	}
	uid, self, _ = c.first(i, false)
	return uid, self
}

// maxPrio returns the highest priority among this node and the live
// peers competing for slot i; for a key with Balance, where priority does
// not apply, the lowest possible.
func (c *core) maxPrio(i int) int64 {
	if i > 0 && c.cfg.balance {
		return math.MinInt64
	}
	best := int64(math.MinInt64)
	if !c.cfg.observer {
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
func (c *core) prioOf(uid string) int64 {
	if uid == c.cfg.uid {
		return c.self.prio
	}
	for _, p := range c.order {
		if p.uid == uid {
			return p.prio
		}
	}
	return math.MinInt64
}

// first returns the first by the rules among this node and the live
// peers that compete for slot i (only the masters of it, with masters).
func (c *core) first(i int, masters bool) (uid string, self, ok bool) {
	if !c.cfg.observer && (!masters || c.slots[i].acting) {
		uid, self, ok = c.cfg.uid, true, true
	}
	if i > 0 && c.cfg.balance {
		kh := c.ki.hash[i-1]
		var bestW uint64
		if ok {
			bestW = weight(kh, c.selfH)
		}
		for _, p := range c.order {
			if h, a := c.holds(p, i); !h || masters && (!a || !p.current()) {
				continue
			}
			if w := weight(kh, p.hash); !ok || w > bestW || w == bestW && p.uid < uid {
				uid, bestW, self, ok = p.uid, w, false, true
			}
		}
		return uid, self, ok
	}
	for _, p := range c.order { // in order: the first that competes
		if ok && self && !p.before(c.self) {
			break
		}
		if h, a := c.holds(p, i); h && (!masters || a && p.current()) {
			return p.uid, false, true
		}
	}
	return uid, self, ok
}

// claimSlot decides whether this node claims slot i, and with which term.
// It reports whether its claim changed.
func (c *core) claimSlot(now int64, i int) bool {
	s := &c.slots[i]
	old := s.claim
	_, mine := c.rightful(i)
	if !mine || !c.ready || c.resign || c.leaving || c.cfg.observer || i > 0 && c.resigned[c.ki.list[i-1]] {
		if s.acting && !mine && c.ready && !c.resign && !c.leaving && c.maxPrio(i) <= c.self.prio {
			c.yields++
		}
		*s = slot{}
		return old != s.claim
	}
	key := c.slotKey(i)
	if s.term == 0 || !s.acting && (c.rival[key] >= s.term || c.other[key] > s.term || now-s.since > int64(c.cfg.wait+c.margin())) {
		// A new claim, a candidate outbid, or one that gathered no
		// quorum for WaitTimeout+M (its voters may have moved on): a
		// term above every term heard of.
		t := max(c.other[key], c.used[key], c.maxVote[key].term) + 1
		if c.quorum() {
			t = max(t, uint64((now+c.cfg.wallOffset)/1000))
		}
		*s = slot{claim: claim{term: t}, since: now}
		c.used[key] = t
	}
	if !c.quorum() && s.acting && (c.rival[key] >= s.term || c.other[key] > s.term) {
		// Another master has a term as high (a healed partition): a new
		// term, above it, so that a store fencing on terms refuses the
		// other master's writes.
		s.term = max(c.other[key], c.used[key]) + 1
		c.used[key] = s.term
	}
	if !c.quorum() && s.acting {
		// A competing peer whose connections closed to be redialed (live
		// by grace) may have lost this node's frames in flight: it counts
		// this node dead WaitTimeout after it received the last frame it
		// read, whose send time it echoed. Master until freshFor after
		// that send time; past it, as after a pause, the claim waits for
		// the peer's answer to a frame sent from now on.
		s.lease = c.graceLease(now, i)
		if s.lease != 0 && now >= s.lease {
			s.acting, s.lease = false, 0
			c.rankAt = now
		} else if s.lease != 0 {
			c.wakeAt(s.lease)
		}
	}
	if !c.quorum() && !s.acting {
		// A master once no live peer competing for it is master of it,
		// and every one has taken in this node's place in the order as
		// it stands (echoed a frame sent since it last changed: at start,
		// SetPriority, a key change): a master steps down when it hears
		// of a node before it, before it answers (no overlap on a
		// handoff). Peers answer a claim at once.
		s.acting = !c.unknownPeer(now)
		c.waiting = c.waiting || !s.acting
		for _, p := range c.order {
			if h, a := c.holds(p, i); h && (a || !p.current() || p.echo < c.rankAt) {
				s.acting = false
				c.waiting = true
				break
			}
		}
	}
	return old != s.claim
}

// graceLease returns, without Quorum, when this node's mastership of
// slot i ends for want of an answer from a competing peer whose
// connections closed to be redialed (see claimSlot); 0: none such.
func (c *core) graceLease(now int64, i int) int64 {
	var end int64
	for _, p := range c.order {
		if len(p.conns) > 0 || now > p.grace {
			continue
		}
		if h, _ := c.holds(p, i); h {
			if e := p.echo + int64(freshFor(c.cfg.interval, c.cfg.wait)); end == 0 || e < end {
				end = e
			}
		}
	}
	return end
}

// unknownPeer reports whether a connection came up less than WaitTimeout
// ago whose peer's state is not known yet: a process that may hold any
// key and be master of it (one that just restarted, and claimed before
// it heard of this node's new key). Without Quorum a claim waits for its
// first full frame, which follows the handshake at once.
func (c *core) unknownPeer(now int64) bool {
	for _, cs := range c.conns {
		if (cs.peer == nil || cs.peer.version == 0) && now < cs.upAt+int64(c.cfg.wait) {
			c.wakeAt(cs.upAt + int64(c.cfg.wait))
			return true
		}
	}
	return false
}

// castVotes updates this node's votes. It reports whether they changed.
func (c *core) castVotes(now int64) bool {
	changed := false
	// Every key someone claims: this node's slots and the peers' claims.
	seen := make(map[string]bool)
	consider := func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		if c.vote(now, key) {
			changed = true
		}
	}
	for i := range c.slots {
		if c.slots[i].term > 0 {
			consider(c.slotKey(i))
		}
	}
	for _, p := range c.order {
		for k := range p.claims {
			consider(k)
		}
	}
	for k := range c.votes {
		consider(k)
	}
	return changed
}

// vote updates this node's vote for key; it reports whether it changed.
func (c *core) vote(now int64, key string) bool {
	if !c.voter(c.cfg.uid, c.cfg.observer) {
		return false // it does not count toward Quorum
	}
	if now < c.born+int64(c.cfg.wait+c.margin()) {
		// A process that may have restarted does not know what its
		// previous incarnation promised: it votes once every such
		// promise has run out.
		c.wakeAt(c.born + int64(c.cfg.wait+c.margin()))
		return false
	}
	cur, has := c.votes[key]
	if has && !c.released(now, key, cur) {
		return false
	}
	// The best claim above every term voted for: a master first, then
	// the first in order (or of highest weight, with Balance).
	var best vote
	var bestRank rank
	bestActing, found := false, false
	floor := c.maxVote[key]
	kh := keyHash(key)
	consider := func(uid string, inc uint64, r rank, h uint64, cl claim) {
		// Never a term at or below one voted for before, but the same
		// claim again (after its promise was released) is the same
		// candidacy.
		if cl.term < floor.term || cl.term == floor.term && (uid != floor.uid || inc != floor.inc) {
			return
		}
		better := !found || cl.acting && !bestActing
		if found && cl.acting == bestActing {
			if key != "" && c.cfg.balance {
				w, bw := weight(kh, h), weight(kh, nodeHash(best.uid))
				better = w > bw || w == bw && uid < best.uid
			} else {
				better = r.before(bestRank)
			}
		}
		if better {
			best, bestRank, bestActing, found = vote{uid: uid, inc: inc, term: cl.term}, r, cl.acting, true
		}
	}
	if i, ok := c.slotIndex(key); ok && c.slots[i].term > 0 {
		consider(c.cfg.uid, c.cfg.inc, c.self, c.selfH, c.slots[i].claim)
	}
	for _, p := range c.order {
		if cl, ok := p.claims[key]; ok && cl.term > 0 {
			consider(p.uid, p.inc, p.rank, p.hash, cl)
		}
	}
	if !found {
		if has {
			delete(c.votes, key)
			return true
		}
		return false
	}
	c.votes[key] = best
	c.maxVote[key] = best
	return !has || cur != best
}

// quorumWarnEvery is how often at most the core reports that the
// assumption Quorum rests on is broken (checkQuorum).
const quorumWarnEvery = 10 * time.Second

// liveVoters counts the voters live now, this node included, once per
// UID; dup names a voter UID that more than one live process uses.
func (c *core) liveVoters(now int64) (n int, dup string) {
	if c.voterSeen == nil {
		c.voterSeen = make(map[string]bool)
	}
	seen := c.voterSeen
	clear(seen)
	if c.voter(c.cfg.uid, c.cfg.observer) {
		seen[c.cfg.uid] = true
	}
	for _, p := range c.peers {
		if !p.live(now, c.cfg.wait) || !c.voter(p.uid, p.observer) {
			continue
		}
		if seen[p.uid] && p.uid != c.cfg.uid {
			dup = p.uid
		}
		seen[p.uid] = true
	}
	return len(seen), dup
}

// checkQuorum reports (at most every quorumWarnEvery) an error wrapping
// ErrQuorum when two disjoint quorums are possible: more live voters than
// 2*Quorum-1 (without Options.Voters: a surge process in a rolling
// update, an old incarnation behind a partition), or a voter UID used by
// two live processes.
func (c *core) checkQuorum(now int64) {
	if c.quorumWarned != 0 && now-c.quorumWarned < int64(quorumWarnEvery) || now-c.quorumChecked < int64(c.cfg.interval) {
		return
	}
	c.quorumChecked = now
	n, dup := c.liveVoters(now)
	var err error
	switch {
	case dup != "":
		err = fmt.Errorf("%w: two live processes use voter UID %s: two masters are possible", ErrQuorum, dup)
	case n > 2*c.cfg.quorum-1:
		err = fmt.Errorf("%w: %d live voters, more than 2*Quorum-1 = %d: two disjoint quorums of %d are possible; set Options.Voters", ErrQuorum, n, 2*c.cfg.quorum-1, c.cfg.quorum)
	default:
		return
	}
	c.quorumWarned = now
	c.out.errs = append(c.out.errs, err)
}

// voter reports whether the node uid votes: not an observer, and named
// in Options.Voters if that is set.
func (c *core) voter(uid string, observer bool) bool {
	return !observer && (c.cfg.voters == nil || c.cfg.voters[uid])
}

// uidEcho is a voter's freshest echo of this node's frames (settle).
type uidEcho struct {
	uid  string
	echo int64
}

// slotIndex returns the slot of key, if this node competes for it.
func (c *core) slotIndex(key string) (int, bool) {
	if key == "" {
		return 0, true
	}
	i, ok := c.ki.idx[key]
	return int(i) + 1, ok
}

// released reports whether this node's promise to claim v of key is over:
// the claimant withdrew it, left, or has not been heard from for
// WaitTimeout+M.
func (c *core) released(now int64, key string, v vote) bool {
	if v.uid == c.cfg.uid && v.inc == c.cfg.inc {
		i, ok := c.slotIndex(key)
		return !ok || c.slots[i].term != v.term
	}
	p := c.peers[peerKey(v.uid, v.inc)]
	if p == nil || p.leaving || p.claims[key].term != v.term {
		return true
	}
	end := p.heard + int64(c.cfg.wait+c.margin())
	if now >= end {
		return true
	}
	c.wakeAt(end)
	return false
}

// settle decides, with Quorum, whether this node's claim of slot i is a
// mastership: acknowledged by Quorum nodes, itself included, with a lease
// still running. A mastership that ends spends its term. It reports
// whether the claim changed.
func (c *core) settle(now int64, i int) bool {
	s := &c.slots[i]
	if s.term == 0 {
		return false
	}
	key := c.slotKey(i)
	me := vote{uid: c.cfg.uid, inc: c.cfg.inc, term: s.term}
	var lease int64
	need, mine := c.cfg.quorum, true
	if c.voter(c.cfg.uid, c.cfg.observer) {
		// Its own vote counts; a voter that acknowledges another claim
		// (a higher term it heard of first) is not master.
		need, mine = need-1, c.votes[key] == me
	}
	if mine {
		// The freshest echo of each voter UID that acknowledges the
		// claim: a UID counts once, whatever its incarnations.
		echoes := c.echoes[:0]
		for _, p := range c.peers {
			if p.votes[key] != me || p.echo <= 0 || p.leaving || !c.voter(p.uid, p.observer) {
				continue
			}
			if j := slices.IndexFunc(echoes, func(e uidEcho) bool { return e.uid == p.uid }); j >= 0 {
				echoes[j].echo = max(echoes[j].echo, p.echo)
			} else {
				echoes = append(echoes, uidEcho{p.uid, p.echo})
			}
		}
		c.echoes = echoes
		if len(echoes) >= need {
			slices.SortFunc(echoes, func(a, b uidEcho) int { return cmp.Compare(a.echo, b.echo) })
			lease = echoes[len(echoes)-need].echo + int64(c.cfg.wait)
		}
	}
	was := s.acting
	if lease > now {
		s.acting, s.lease = true, lease
		c.wakeAt(lease)
	} else if was {
		// The lease ran out: this mastership is over, and its term
		// spent. The next claim (at the next step) gets a new one.
		*s = slot{}
		return true
	} else {
		s.lease = 0
	}
	return was != s.acting
}

// snapshot builds the snapshot of the current state.
// It fills s if given (a snapshot never published), else a new one.
func (c *core) snapshot(s *snapshot) *snapshot {
	keys := make([]keyState, len(c.ki.list))
	if s != nil && cap(s.keys) >= len(c.ki.list) {
		keys = s.keys[:len(c.ki.list)]
	}
	if s == nil {
		s = new(snapshot)
	}
	*s = snapshot{running: !c.leaving, ready: c.ready && !c.leaving && !c.resign, ki: c.ki, keys: keys}
	if !s.running {
		return s
	}
	st := c.slotState(0)
	s.master, s.masterUID, s.term, s.lease = st.master, st.uid, st.term, st.lease
	for i := range s.keys {
		s.keys[i] = c.slotState(i + 1)
	}
	return s
}

func (c *core) slotState(i int) keyState {
	sl := c.slots[i]
	key := c.slotKey(i)
	term := max(c.used[key], c.other[key])
	if sl.acting {
		return keyState{master: true, uid: c.cfg.uid, term: sl.term, lease: sl.lease}
	}
	if !c.ready {
		return keyState{term: term}
	}
	// Not master: the master this node knows of, else the one the rules
	// name.
	for _, p := range c.order {
		if h, a := c.holds(p, i); h && a {
			return keyState{uid: p.uid, term: term}
		}
	}
	uid, self := c.rightful(i)
	if self && c.resign {
		uid = ""
	}
	return keyState{uid: uid, term: term}
}

// publish builds the heartbeat this node sends from now on.
func (c *core) publish() {
	b := &beat{uid: c.cfg.uid, start: c.cfg.start, inc: c.cfg.inc, prio: c.self.prio,
		leaving: c.leaving, version: c.version, keys: c.ki.list, observer: c.cfg.observer, meta: c.meta}
	for i := range c.slots {
		k := c.slotKey(i)
		if c.slots[i].term > 0 && !c.leaving {
			if b.claims == nil {
				b.claims = make(map[string]claim)
			}
			b.claims[k] = c.slots[i].claim
		} else if t := max(c.used[k], c.other[k]); t > 0 {
			// Not claimed: the highest term known, so that a node that
			// comes later takes a term above it (fencing).
			if b.known == nil {
				b.known = make(map[string]uint64)
			}
			b.known[k] = t
		}
	}
	if len(c.votes) > 0 && !c.leaving {
		b.votes = make(map[string]vote, len(c.votes))
		for k, v := range c.votes {
			b.votes[k] = v
		}
	}
	c.out.beat = b
}

// snapshot is the published, immutable result of an election. Readers load
// it atomically; it is never modified after publication.
type snapshot struct {
	running   bool
	ready     bool
	master    bool
	masterUID string
	term      uint64
	// lease, with Quorum, is when (mono) this node's global mastership
	// ends unless renewed: past it, IsMaster is false even if the elector
	// could not run (a starved or paused process).
	lease int64
	ki    *keyIndex  // this node's keys
	keys  []keyState // by position in ki
}

// key returns the state of key, and false for a key this node lacks.
func (s *snapshot) key(k string) (keyState, bool) {
	i, ok := s.ki.idx[k]
	if !ok {
		return keyState{}, false
	}
	return s.keys[i], true
}

// state returns the mastership of key, "" for the global one; the zero
// state for a key this node lacks.
func (s *snapshot) state(k string) keyState {
	if k == "" {
		return keyState{master: s.master, uid: s.masterUID, term: s.term, lease: s.lease}
	}
	ks, _ := s.key(k)
	return ks
}

func (s *snapshot) equal(o *snapshot) bool {
	return s.running == o.running && s.ready == o.ready && s.master == o.master && s.masterUID == o.masterUID &&
		s.term == o.term && s.lease == o.lease && s.ki == o.ki && slices.Equal(s.keys, o.keys)
}

// keyState is the mastership of one key.
type keyState struct {
	master bool
	uid    string
	term   uint64
	lease  int64 // as snapshot.lease
}
