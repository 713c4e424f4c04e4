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

// ConnID names a connection to the core.
type ConnID uint64

// Config is what the core needs of the options.
type Config struct {
	UID      string
	Start    int64 // StartTime, Unix ns
	Inc      uint64
	Prio     int64
	Interval time.Duration
	Wait     time.Duration
	Quorum   int
	Sticky   bool
	Balance  bool
	Observer bool // never claims, does not vote
	// Voters, if set, are the UIDs whose votes count (Options.Voters);
	// nil: every node that is not an observer.
	Voters map[string]bool
	// WallOffset is the wall clock minus the monotonic clock, in ns, at
	// creation. With Quorum, new terms are at least the wall clock in
	// microseconds, so that a term stays above those of masterships
	// whose voters have all restarted since (and forgotten them).
	WallOffset int64
}

// Claim is a node's Claim of a mastership.
type Claim struct {
	Term   uint64
	Acting bool // acknowledged by a quorum (or no Quorum): master
}

// Vote is a node's acknowledgement of a claim.
type Vote struct {
	UID  string
	Inc  uint64
	Term uint64
}

// slot is this node's claim of one mastership.
type slot struct {
	Claim
	lease int64 // with Quorum, while acting: master until then (mono)
	since int64 // when the claim was made (mono)
}

// cpeer is what the core knows of another node (one process: UID and
// incarnation).
type cpeer struct {
	rank
	inc      uint64
	hash     uint64 // nodeHash(uid), for Balance
	conns    map[ConnID]struct{}
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
	claims   map[string]Claim
	votes    map[string]Vote
	// Bitsets over the core's key index, rebuilt when either changes.
	ki     *KeyIndex
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
		if quorum || !cl.Acting {
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

// Msg is a decoded heartbeat, as the core takes it. Keys, claims and
// votes are set only in the full form (full).
type Msg struct {
	UID      string
	Start    int64
	Inc      uint64
	Prio     int64
	Sent     int64 // the sender's clock at sending
	Echo     int64 // the receiver's clock: send time of its newest frame the sender had processed
	Version  uint64
	Leaving  bool
	Full     bool
	Reply    bool // sent at once in answer to a frame of this node
	Linked   bool // the sender has identified this node on the connection
	Redial   bool // the sender closes the connection as silent, and redials
	Observer bool
	Meta     map[string]string
	Keys     []string
	Claims   map[string]Claim
	Known    map[string]uint64
	Votes    map[string]Vote
}

// Out is what the drivers must do after a step. The outputs of
// several steps accumulate until the driver takes them (reset): a driver
// may take in a burst of events, then apply once.
type Out struct {
	Snap   *Snapshot // the snapshot to publish; nil: unchanged
	Beat   *Beat     // the heartbeat to send from now on; nil: unchanged
	Kick   bool      // send the heartbeat on every connection now
	Close  []ConnID  // connections to close
	Wake   []string  // servers to dial again now
	Attach []ConnID  // connections now known to lead to a peer (beatLinked from now on)
	Reply  []ConnID  // connections to send the heartbeat on now, as a reply
	Echoes   []ConnEcho
	Errs   []error
}

// Reset empties the outputs, keeping their storage: a steady heartbeat
// allocates nothing.
func (o *Out) Reset() {
	o.Snap, o.Beat, o.Kick = nil, nil, false
	o.Close, o.Wake, o.Attach, o.Reply = o.Close[:0], o.Wake[:0], o.Attach[:0], o.Reply[:0]
	o.Echoes, o.Errs = o.Echoes[:0], o.Errs[:0]
}

// ConnEcho is the echo to send on a connection from now on.
type ConnEcho struct {
	ID   ConnID
	Echo int64
}

type Core struct {
	cfg   Config
	self  rank
	selfH uint64
	conns map[ConnID]*connState
	peers map[string]*cpeer
	keys  map[string]struct{}
	meta  map[string]string
	ki    *KeyIndex
	// slots[0] is the global mastership, slots[i+1] that of ki.list[i].
	slots []slot
	// used is the highest term this node claimed, per key; other the
	// highest term heard of from the others (claims, votes for anyone but
	// this node, and terms they only know of), per key; rival the highest
	// of their claims and votes alone (what outbids this node's claim).
	used, other, rival map[string]uint64
	// votes is this node's acknowledgement per key (Quorum); maxVote the
	// claim of highest term it ever acknowledged per key.
	votes   map[string]Vote
	maxVote map[string]Vote
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

	snap   *Snapshot
	spare  *Snapshot // built and found equal to snap: reused by the next election
	order  []*cpeer  // scratch: live peers in election order
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
}

func newCore(cfg Config, keys []string, servers []string, now int64, meta map[string]string) *Core {
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
		servers: make(map[string]bool, len(servers)),
		snap:    &Snapshot{KI: NoKeys},
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
	c.slots = make([]slot, 1+len(c.ki.List))
	c.sent, c.lastStep, c.born, c.rankAt = now, now, now, now
	c.await(now)
	c.dirty = true
	c.Elect(now)
	return c
}

// margin is the lease margin M = max(Interval, WaitTimeout/4).
func (c *Core) margin() time.Duration { return LeaseMargin(c.cfg.Interval, c.cfg.Wait) }

func LeaseMargin(interval, wait time.Duration) time.Duration { return max(interval, wait/4) }

// SilentAfter is how long a connection may carry nothing before its
// reader closes it: (WaitTimeout+Interval)/2, so that a broken flow is
// redialed before the peer counts dead at WaitTimeout.
func SilentAfter(interval, wait time.Duration) time.Duration { return (wait + interval) / 2 }

// FreshFor is how long after this node last sent its heartbeat a
// mastership still holds (IsMaster): WaitTimeout-M/2. Its peers count it
// dead WaitTimeout after they received that heartbeat, which is later; a
// process paused (or starved) past it answers false when it resumes,
// before its elector has run, even if its clock ran up to
// M/(2*WaitTimeout) slow. It is measured from the last send, not from the
// elector's last step: a node that stepped just before a pause (on a
// peer's frame) sent its last heartbeat up to an Interval earlier.
func FreshFor(interval, wait time.Duration) time.Duration {
	return wait - LeaseMargin(interval, wait)/2
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

// begin starts a step: it notices a pause.
func (c *Core) begin(now int64) {
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

// Paused reports whether a step at now would notice a pause: this node has
// not sent its heartbeat for longer than freshFor, so its peers may have
// counted it dead.
func (c *Core) Paused(now int64) bool {
	return time.Duration(now-c.sent) > FreshFor(c.cfg.Interval, c.cfg.Wait) && !c.leaving
}

// kick asks for the heartbeat on every connection now.
func (c *Core) kick(now int64) {
	c.out.Kick = true
	c.sent = now
}

// Tick is called every Interval: it re-elects and sends the heartbeat.
func (c *Core) Tick(now int64) {
	c.Alarm(now)
	c.kick(now)
}

// Alarm: the time the core asked for (wake) has come. It re-elects, and
// the heartbeat goes out only if that changed something: the wake-ups of
// a node that hears from many peers at scattered times cost no traffic.
func (c *Core) Alarm(now int64) {
	c.begin(now)
	if !c.ready && now >= c.readyAt {
		c.ready, c.rejoin = true, false
	}
	limit := now - int64(10*c.cfg.Wait)
	for k, p := range c.peers {
		if len(p.conns) == 0 && p.heard < limit {
			delete(c.peers, k)
		}
	}
	c.Elect(now)
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
	if p := cs.peer; p != nil {
		delete(p.conns, id)
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
			c.Elect(now)
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
	for id := range p.conns {
		if id != keepID {
			c.dropConn(id, c.conns[id])
		}
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
	if !c.ready && len(c.pending) == 0 {
		c.ready, c.rejoin = true, false
		c.Elect(now)
	}
}

// AddServer and removeServer change the configured servers.
func (c *Core) AddServer(now int64, id string) {
	c.begin(now)
	c.servers[id] = true
}

func (c *Core) RemoveServer(now int64, id string) {
	c.begin(now)
	delete(c.servers, id)
	c.resolve(now, now, id)
}

// Recv: a heartbeat read from connection id at time at is handled at now.
func (c *Core) Recv(now, at int64, id ConnID, b *Msg) {
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
			c.out.Errs = append(c.out.Errs, &PeerError{Peer: b.UID, Err: ErrDuplicateUID})
		}
		c.dropConn(id, cs)
		return
	}
	changed := false
	p := cs.peer
	if p == nil || p.uid != b.UID || p.inc != b.Inc {
		p = c.peers[peerKey(b.UID, b.Inc)]
	}
	if p == nil {
		p = &cpeer{inc: b.Inc, hash: NodeHash(b.UID), conns: make(map[ConnID]struct{}), servers: make(map[string]bool)}
		p.uid = b.UID
		c.peers[peerKey(b.UID, b.Inc)] = p
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
	wasLive := p.live(now, c.cfg.Wait)
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
	}
	if b.Full && b.Version > p.version {
		// Newer state: applied even if it came on a slower connection
		// than a short frame of the same version.
		p.version = b.Version
		p.keys = make(map[string]struct{}, len(b.Keys))
		for _, k := range b.Keys {
			p.keys[k] = struct{}{}
		}
		p.claims, p.votes, p.meta = b.Claims, b.Votes, b.Meta
		for k, cl := range p.claims {
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
		p.ki = nil
		changed = true
	}
	if b.Sent > p.sent && b.Version == p.version {
		// The newest frame of the state known: its echo is current.
		p.sent = b.Sent
		if b.Echo > p.echo {
			p.echo = b.Echo
			if c.quorum() && now-c.refresh >= int64(c.cfg.Interval/4) || !c.quorum() && c.waiting {
				changed = true // renew the leases, or a claim may be a mastership now
			}
		}
		if p.start != b.Start || p.prio != b.Prio {
			p.start, p.prio = b.Start, b.Prio
			changed = true
		}
		for cid := range p.conns {
			c.out.Echoes = append(c.out.Echoes, ConnEcho{cid, p.sent})
		}
		if !b.Reply && p.candidate(c.quorum()) {
			// Echo it back at once. With Quorum: the claimant's lease is
			// anchored at the send time of its frame this echo names, so
			// a prompt echo keeps the lease fresh whatever the latency.
			// Without: a claimant waits for every peer's answer.
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
		c.Elect(now)
	}
}

// learn records a term heard of for key: of a claim or a vote (rival),
// or only known to a peer, perhaps this node's own term passed on. A
// higher one for a mastership this node competes for is passed on in
// turn (the state it sends changes).
func (c *Core) learn(key string, term uint64, rival bool) {
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
	for _, k := range add {
		delete(c.resigned, k)
	}
	if !changed {
		return
	}
	old, oldSlots := c.ki, c.slots
	c.rankAt = now
	c.ki = newKeyIndex(c.keys)
	c.slots = make([]slot, 1+len(c.ki.List))
	c.slots[0] = oldSlots[0]
	for i, k := range c.ki.List {
		if j, ok := old.Idx[k]; ok {
			c.slots[i+1] = oldSlots[j+1]
		}
	}
	c.dirty = true
	c.Elect(now)
}

// ResignKeys gives up the masterships of keys but keeps holding them,
// until setKeys removes them.
func (c *Core) ResignKeys(now int64, keys []string) {
	c.begin(now)
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
	c.wake = 0
	c.waiting = false
	if !c.ready && !c.leaving {
		c.wakeAt(c.readyAt)
	}
	c.collect(now)
	for _, p := range c.order {
		// A live peer silent for WaitTimeout is dead then, not at the
		// next tick.
		c.wakeAt(p.heard + int64(c.cfg.Wait) + 1)
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
		c.out.Snap = s
	} else {
		c.spare = s // unpublished: reused by the next election
	}
}

func (c *Core) wakeAt(t int64) {
	if c.wake == 0 || t < c.wake {
		c.wake = t
	}
}

// collect fills c.order with the live peers in election order and brings
// their bitsets up to date.
func (c *Core) collect(now int64) {
	c.order = c.order[:0]
	for _, p := range c.peers {
		if !p.live(now, c.cfg.Wait) {
			continue
		}
		if p.ki != c.ki {
			p.ki = c.ki
			n := (len(c.ki.List) + 63) / 64
			p.has, p.acting = make(bitset, n), make(bitset, n)
			for k := range p.keys {
				if i, ok := c.ki.Idx[k]; ok {
					p.has.set(int(i))
				}
			}
			for k, cl := range p.claims {
				if i, ok := c.ki.Idx[k]; ok && cl.Term > 0 && cl.Acting {
					p.acting.set(int(i))
				}
			}
		}
		c.order = append(c.order, p)
	}
	sort.Slice(c.order, func(i, j int) bool { return c.order[i].before(c.order[j].rank) })
}

// slotKey is the key of slot i ("" for the global mastership).
func (c *Core) slotKey(i int) string {
	if i == 0 {
		return ""
	}
	return c.ki.List[i-1]
}

// holds reports whether live peer p competes for slot i, and whether it
// is master of it as far as this node knows (see cpeer.current).
func (c *Core) holds(p *cpeer, i int) (holds, acting bool) {
	if p.observer {
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
func (c *Core) rightful(i int) (uid string, self bool) {
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
		if uid, self, ok := c.first(i, true); ok && (c.prioOf(uid) >= top || i > 0 && c.cfg.Balance) {
			return uid, self
		}
	}
	uid, self, _ = c.first(i, false)
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
	if !c.cfg.Observer {
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
	for _, p := range c.order {
		if p.uid == uid {
			return p.prio
		}
	}
	return math.MinInt64
}

// first returns the first by the rules among this node and the live
// peers that compete for slot i (only the masters of it, with masters).
func (c *Core) first(i int, masters bool) (uid string, self, ok bool) {
	if !c.cfg.Observer && (!masters || c.slots[i].Acting) {
		uid, self, ok = c.cfg.UID, true, true
	}
	if i > 0 && c.cfg.Balance {
		kh := c.ki.hash[i-1]
		var bestW uint64
		if ok {
			bestW = Weight(kh, c.selfH)
		}
		for _, p := range c.order {
			if h, a := c.holds(p, i); !h || masters && (!a || !p.current()) {
				continue
			}
			if w := Weight(kh, p.hash); !ok || w > bestW || w == bestW && p.uid < uid {
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
func (c *Core) claimSlot(now int64, i int) bool {
	s := &c.slots[i]
	old := s.Claim
	_, mine := c.rightful(i)
	if !mine || !c.ready || c.resign || c.leaving || c.cfg.Observer || i > 0 && c.resigned[c.ki.List[i-1]] {
		if s.Acting && !mine && c.ready && !c.resign && !c.leaving && c.maxPrio(i) <= c.self.prio {
			c.yields++
		}
		*s = slot{}
		return old != s.Claim
	}
	key := c.slotKey(i)
	if s.Term == 0 || !s.Acting && (c.rival[key] >= s.Term || c.other[key] > s.Term || now-s.since > int64(c.cfg.Wait+c.margin())) {
		// A new claim, a candidate outbid, or one that gathered no
		// quorum for WaitTimeout+M (its voters may have moved on): a
		// term above every term heard of.
		t := max(c.other[key], c.used[key], c.maxVote[key].Term) + 1
		if c.quorum() {
			t = max(t, uint64((now+c.cfg.WallOffset)/1000))
		}
		*s = slot{Claim: Claim{Term: t}, since: now}
		c.used[key] = t
	}
	if !c.quorum() && s.Acting && (c.rival[key] >= s.Term || c.other[key] > s.Term) {
		// Another master has a term as high (a healed partition): a new
		// term, above it, so that a store fencing on terms refuses the
		// other master's writes.
		s.Term = max(c.other[key], c.used[key]) + 1
		c.used[key] = s.Term
	}
	if !c.quorum() && s.Acting {
		// A competing peer whose connections closed to be redialed (live
		// by grace) may have lost this node's frames in flight: it counts
		// this node dead WaitTimeout after it received the last frame it
		// read, whose send time it echoed. Master until freshFor after
		// that send time; past it, as after a pause, the claim waits for
		// the peer's answer to a frame sent from now on.
		s.lease = c.graceLease(now, i)
		if s.lease != 0 && now >= s.lease {
			s.Acting, s.lease = false, 0
			c.rankAt = now
		} else if s.lease != 0 {
			c.wakeAt(s.lease)
		}
	}
	if !c.quorum() && !s.Acting {
		// A master once no live peer competing for it is master of it,
		// and every one has taken in this node's place in the order as
		// it stands (echoed a frame sent since it last changed: at start,
		// SetPriority, a key change): a master steps down when it hears
		// of a node before it, before it answers (no overlap on a
		// handoff). Peers answer a claim at once.
		s.Acting = !c.unknownPeer(now)
		c.waiting = c.waiting || !s.Acting
		for _, p := range c.order {
			if h, a := c.holds(p, i); h && (a || !p.current() || p.echo < c.rankAt) {
				s.Acting = false
				c.waiting = true
				break
			}
		}
	}
	return old != s.Claim
}

// graceLease returns, without Quorum, when this node's mastership of
// slot i ends for want of an answer from a competing peer whose
// connections closed to be redialed (see claimSlot); 0: none such.
func (c *Core) graceLease(now int64, i int) int64 {
	var end int64
	for _, p := range c.order {
		if len(p.conns) > 0 || now > p.grace {
			continue
		}
		if h, _ := c.holds(p, i); h {
			if e := p.echo + int64(FreshFor(c.cfg.Interval, c.cfg.Wait)); end == 0 || e < end {
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
func (c *Core) unknownPeer(now int64) bool {
	for _, cs := range c.conns {
		if (cs.peer == nil || cs.peer.version == 0) && now < cs.upAt+int64(c.cfg.Wait) {
			c.wakeAt(cs.upAt + int64(c.cfg.Wait))
			return true
		}
	}
	return false
}

// castVotes updates this node's votes. It reports whether they changed.
func (c *Core) castVotes(now int64) bool {
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
		if c.slots[i].Term > 0 {
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
func (c *Core) vote(now int64, key string) bool {
	if !c.voter(c.cfg.UID, c.cfg.Observer) {
		return false // it does not count toward Quorum
	}
	if now < c.born+int64(c.cfg.Wait+c.margin()) {
		// A process that may have restarted does not know what its
		// previous incarnation promised: it votes once every such
		// promise has run out.
		c.wakeAt(c.born + int64(c.cfg.Wait+c.margin()))
		return false
	}
	cur, has := c.votes[key]
	if has && !c.released(now, key, cur) {
		return false
	}
	// The best claim above every term voted for: a master first, then
	// the first in order (or of highest weight, with Balance).
	var best Vote
	var bestRank rank
	bestActing, found := false, false
	floor := c.maxVote[key]
	kh := KeyHash(key)
	consider := func(uid string, inc uint64, r rank, h uint64, cl Claim) {
		// Never a term at or below one voted for before, but the same
		// claim again (after its promise was released) is the same
		// candidacy.
		if cl.Term < floor.Term || cl.Term == floor.Term && (uid != floor.UID || inc != floor.Inc) {
			return
		}
		better := !found || cl.Acting && !bestActing
		if found && cl.Acting == bestActing {
			if key != "" && c.cfg.Balance {
				w, bw := Weight(kh, h), Weight(kh, NodeHash(best.UID))
				better = w > bw || w == bw && uid < best.UID
			} else {
				better = r.before(bestRank)
			}
		}
		if better {
			best, bestRank, bestActing, found = Vote{UID: uid, Inc: inc, Term: cl.Term}, r, cl.Acting, true
		}
	}
	if i, ok := c.slotIndex(key); ok && c.slots[i].Term > 0 {
		consider(c.cfg.UID, c.cfg.Inc, c.self, c.selfH, c.slots[i].Claim)
	}
	for _, p := range c.order {
		if cl, ok := p.claims[key]; ok && cl.Term > 0 {
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
func (c *Core) liveVoters(now int64) (n int, dup string) {
	if c.voterSeen == nil {
		c.voterSeen = make(map[string]bool)
	}
	seen := c.voterSeen
	clear(seen)
	if c.voter(c.cfg.UID, c.cfg.Observer) {
		seen[c.cfg.UID] = true
	}
	for _, p := range c.peers {
		if !p.live(now, c.cfg.Wait) || !c.voter(p.uid, p.observer) {
			continue
		}
		if seen[p.uid] && p.uid != c.cfg.UID {
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
func (c *Core) checkQuorum(now int64) {
	if c.quorumWarned != 0 && now-c.quorumWarned < int64(quorumWarnEvery) || now-c.quorumChecked < int64(c.cfg.Interval) {
		return
	}
	c.quorumChecked = now
	n, dup := c.liveVoters(now)
	var err error
	switch {
	case dup != "":
		err = fmt.Errorf("%w: two live processes use voter UID %s: two masters are possible", ErrQuorum, dup)
	case n > 2*c.cfg.Quorum-1:
		err = fmt.Errorf("%w: %d live voters, more than 2*Quorum-1 = %d: two disjoint quorums of %d are possible; set Options.Voters", ErrQuorum, n, 2*c.cfg.Quorum-1, c.cfg.Quorum)
	default:
		return
	}
	c.quorumWarned = now
	c.out.Errs = append(c.out.Errs, err)
}

// voter reports whether the node uid votes: not an observer, and named
// in Options.Voters if that is set.
func (c *Core) voter(uid string, observer bool) bool {
	return !observer && (c.cfg.Voters == nil || c.cfg.Voters[uid])
}

// uidEcho is a voter's freshest echo of this node's frames (settle).
type uidEcho struct {
	uid  string
	echo int64
}

// slotIndex returns the slot of key, if this node competes for it.
func (c *Core) slotIndex(key string) (int, bool) {
	if key == "" {
		return 0, true
	}
	i, ok := c.ki.Idx[key]
	return int(i) + 1, ok
}

// released reports whether this node's promise to claim v of key is over:
// the claimant withdrew it, left, or has not been heard from for
// WaitTimeout+M.
func (c *Core) released(now int64, key string, v Vote) bool {
	if v.UID == c.cfg.UID && v.Inc == c.cfg.Inc {
		i, ok := c.slotIndex(key)
		return !ok || c.slots[i].Term != v.Term
	}
	p := c.peers[peerKey(v.UID, v.Inc)]
	if p == nil || p.leaving || p.claims[key].Term != v.Term {
		return true
	}
	end := p.heard + int64(c.cfg.Wait+c.margin())
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
func (c *Core) settle(now int64, i int) bool {
	s := &c.slots[i]
	if s.Term == 0 {
		return false
	}
	key := c.slotKey(i)
	me := Vote{UID: c.cfg.UID, Inc: c.cfg.Inc, Term: s.Term}
	var lease int64
	need, mine := c.cfg.Quorum, true
	if c.voter(c.cfg.UID, c.cfg.Observer) {
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
			lease = echoes[len(echoes)-need].echo + int64(c.cfg.Wait)
		}
	}
	was := s.Acting
	if lease > now {
		s.Acting, s.lease = true, lease
		c.wakeAt(lease)
	} else if was {
		// The lease ran out: this mastership is over, and its term
		// spent. The next claim (at the next step) gets a new one.
		*s = slot{}
		return true
	} else {
		s.lease = 0
	}
	return was != s.Acting
}

// snapshot builds the snapshot of the current state.
// It fills s if given (a snapshot never published), else a new one.
func (c *Core) snapshot(s *Snapshot) *Snapshot {
	keys := make([]KeyState, len(c.ki.List))
	if s != nil && cap(s.Keys) >= len(c.ki.List) {
		keys = s.Keys[:len(c.ki.List)]
	}
	if s == nil {
		s = new(Snapshot)
	}
	*s = Snapshot{Running: !c.leaving, Ready: c.ready && !c.leaving && !c.resign, KI: c.ki, Keys: keys}
	if !s.Running {
		return s
	}
	st := c.slotState(0)
	s.Master, s.MasterUID, s.Term, s.Lease = st.Master, st.UID, st.Term, st.Lease
	for i := range s.Keys {
		s.Keys[i] = c.slotState(i + 1)
	}
	return s
}

func (c *Core) slotState(i int) KeyState {
	sl := c.slots[i]
	key := c.slotKey(i)
	term := max(c.used[key], c.other[key])
	if sl.Acting {
		return KeyState{Master: true, UID: c.cfg.UID, Term: sl.Term, Lease: sl.lease}
	}
	if !c.ready {
		return KeyState{Term: term}
	}
	// Not master: the master this node knows of, else the one the rules
	// name.
	for _, p := range c.order {
		if h, a := c.holds(p, i); h && a {
			return KeyState{UID: p.uid, Term: term}
		}
	}
	uid, self := c.rightful(i)
	if self && c.resign {
		uid = ""
	}
	return KeyState{UID: uid, Term: term}
}

// publish builds the heartbeat this node sends from now on.
func (c *Core) publish() {
	b := &Beat{UID: c.cfg.UID, Start: c.cfg.Start, Inc: c.cfg.Inc, Prio: c.self.prio,
		Leaving: c.leaving, Version: c.version, Keys: c.ki.List, Observer: c.cfg.Observer, Meta: c.meta}
	for i := range c.slots {
		k := c.slotKey(i)
		if c.slots[i].Term > 0 && !c.leaving {
			if b.Claims == nil {
				b.Claims = make(map[string]Claim)
			}
			b.Claims[k] = c.slots[i].Claim
		} else if t := max(c.used[k], c.other[k]); t > 0 {
			// Not claimed: the highest term known, so that a node that
			// comes later takes a term above it (fencing).
			if b.Known == nil {
				b.Known = make(map[string]uint64)
			}
			b.Known[k] = t
		}
	}
	if len(c.votes) > 0 && !c.leaving {
		b.Votes = make(map[string]Vote, len(c.votes))
		for k, v := range c.votes {
			b.Votes[k] = v
		}
	}
	c.out.Beat = b
}

// Snapshot is the published, immutable result of an election. Readers load
// it atomically; it is never modified after publication.
type Snapshot struct {
	Running   bool
	Ready     bool
	Master    bool
	MasterUID string
	Term      uint64
	// Lease, with Quorum, is when (mono) this node's global mastership
	// ends unless renewed: past it, IsMaster is false even if the elector
	// could not run (a starved or paused process).
	Lease int64
	KI    *KeyIndex  // this node's keys
	Keys  []KeyState // by position in ki
}

// Key returns the state of Key, and false for a Key this node lacks.
func (s *Snapshot) Key(k string) (KeyState, bool) {
	i, ok := s.KI.Idx[k]
	if !ok {
		return KeyState{}, false
	}
	return s.Keys[i], true
}

// State returns the mastership of key, "" for the global one; the zero
// State for a key this node lacks.
func (s *Snapshot) State(k string) KeyState {
	if k == "" {
		return KeyState{Master: s.Master, UID: s.MasterUID, Term: s.Term, Lease: s.Lease}
	}
	ks, _ := s.Key(k)
	return ks
}

func (s *Snapshot) equal(o *Snapshot) bool {
	return s.Running == o.Running && s.Ready == o.Ready && s.Master == o.Master && s.MasterUID == o.MasterUID &&
		s.Term == o.Term && s.Lease == o.Lease && s.KI == o.KI && slices.Equal(s.Keys, o.Keys)
}

// KeyState is the mastership of one key.
type KeyState struct {
	Master bool
	UID    string
	Term   uint64
	Lease  int64 // as snapshot.lease
}
