package msc

import (
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// The elector is the one goroutine that owns the election state: the
// peers, their liveness, key sets and claims, this node's keys, terms and
// readiness. The connections and the public methods feed it events; it
// publishes an immutable snapshot for readers and the heartbeat for the
// writers.

// Event kinds.
const (
	evUp          = iota // a connection finished its handshake
	evBeat               // a heartbeat with news (first on a connection, keys, claims, leaving)
	evDown               // a connection ended
	evUnreachable        // a configured server could not be reached
	evFunc               // run fn on the elector (public methods)
)

type event struct {
	at     int64 // when it happened, mono()
	kind   int
	c      *conn
	server string
	beat   beatInfo
	fn     func(*elector)
	done   chan struct{}
}

type beatInfo struct {
	uid        string
	start      int64
	inc        uint64
	prio       int64
	claim      bool
	term       uint64
	leaving    bool
	hasKeys    bool
	keyVersion uint64
	keys       []string
	keyTerms   []uint64
	view       []string
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

// peer is what the elector knows of another node.
type peer struct {
	rank
	inc        uint64
	leaving    bool
	claim      bool   // it says it is global master
	term       uint64 // its global term
	keys       map[string]struct{}
	claims     map[string]uint64 // keys it says it masters, with their terms
	view       []string          // the UIDs of the peers it counts live
	keyVersion uint64
	has        bitset             // keys ∩ this node's keys, over ki
	claimed    bitset             // claims ∩ this node's keys, over ki
	ki         *keyIndex          // the index has and claimed were computed on
	hash       uint64             // nodeHash(uid), for Balance
	conns      map[*conn]struct{} // connections that carried its heartbeats and are up
	servers    map[string]bool    // configured server ids it answered on
	lastHeard  int64              // mono(), as of its last connection going down
	shared     atomic.Int64       // mono() of its last frame on any connection (conn.heard)
}

// live: connected, not leaving, and its key set known (the first frame on
// a connection is short; the full one follows at once).
func (p *peer) live() bool { return len(p.conns) > 0 && !p.leaving && p.keyVersion > 0 }

func peerKey(uid string, inc uint64) string {
	return uid + "/" + strconv.FormatUint(inc, 16)
}

// forget drops the peers that have been dead for a while (restarted
// processes), once nothing can depend on them: a Quorum lease ends
// WaitTimeout+margin after a peer was last heard, and terms are kept
// apart.
func (e *elector) forget(now int64) {
	limit := now - int64(10*e.m.cfg.WaitTimeout)
	for k, p := range e.peers {
		if len(p.conns) == 0 && p.heard() < limit {
			delete(e.peers, k)
		}
	}
}

// heard returns when a valid frame from p last arrived.
func (p *peer) heard() int64 {
	last := max(p.lastHeard, p.shared.Load())
	for c := range p.conns {
		last = max(last, c.lastHeard.Load())
	}
	return last
}

type elector struct {
	m       *Msc
	self    rank
	conns   map[*conn]*peer // every connection past its handshake; nil until it heard
	peers   map[string]*peer
	keys    map[string]struct{} // this node's keys
	ki      *keyIndex           // index of keys, rebuilt when they change
	selfH   uint64              // nodeHash of this node
	keyVer  uint64              // version of the key set and key claims
	term    uint64              // highest global term known
	myTerm  uint64              // the term of this node's mastership, while master
	keyTerm []uint64            // highest term known per key, over ki
	// goneTerms keeps the terms of removed keys (at most maxGoneTerms).
	goneTerms map[string]uint64
	ready     bool
	pending   map[string]bool // servers not yet heard from or failed, since Start or a pause
	readyAt   int64           // mono(): when to stop waiting for pending servers
	since     int64           // mono(): when the wait for pending servers began
	leaving   bool            // Stop: the leave message is out
	// resigning: Stop has begun; master of nothing, but still a live
	// member, so that no peer takes over before this node's work ended.
	resigning bool
	view      []string // Quorum: the live peers' UIDs, sorted, as last sent
	snap      *snapshot
	order     []*peer       // scratch: live peers in order
	drained   chan struct{} // Stop: closed when the last connection is down
	wakeAt    int64         // mono(): when the next Quorum lease deadline passes; 0: none
}

// snapshot is the published, immutable result of an election. Readers load
// it atomically; it is never modified after publication.
type snapshot struct {
	running   bool
	ready     bool
	master    bool
	masterUID string
	term      uint64
	// lease, with Quorum, is when (mono) this node's quorum runs out
	// unless it hears from its peers again: past it, IsMaster is false
	// even if the elector could not run (a starved or paused process).
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

type keyState struct {
	master bool
	uid    string
	term   uint64
}

func newElector(m *Msc, keys map[string]struct{}, servers []string) *elector {
	e := &elector{
		m:      m,
		self:   rank{prio: int64(m.cfg.Priority), start: m.start, uid: m.cfg.UID},
		conns:  make(map[*conn]*peer),
		peers:  make(map[string]*peer),
		keys:   keys,
		snap:   &snapshot{ki: noKeys},
		selfH:  nodeHash(m.cfg.UID),
		keyVer: 1,
	}
	e.ki = newKeyIndex(e.keys)
	e.keyTerm = make([]uint64, len(e.ki.list))
	e.await(servers)
	return e
}

// await makes the node wait, before it claims anything, until it has heard
// from or failed to reach each of servers, or WaitTimeout has passed.
func (e *elector) await(servers []string) {
	e.pending = make(map[string]bool, len(servers))
	for _, s := range servers {
		e.pending[s] = true
	}
	e.setReady(len(e.pending) == 0)
	e.since = mono()
	e.readyAt = e.since + int64(e.m.cfg.WaitTimeout)
}

// setReady records whether the node has heard from its servers; while it
// has not, the read loops pass every heartbeat on (m.awaiting), not only
// those with news, so that a server already connected resolves at once.
func (e *elector) setReady(ready bool) {
	e.ready = ready
	e.m.awaiting.Store(!ready)
}

// run is the elector goroutine, started by Start and waited for by Stop.
func (e *elector) run() {
	defer e.m.wg.Done()
	m := e.m
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	lastTick := mono()
	m.lastTick.Store(lastTick)
	for {
		// One timer for the next deadline: readiness, or a Quorum lease.
		next := e.wakeAt
		if !e.ready && (next == 0 || e.readyAt < next) {
			next = e.readyAt
		}
		if next != 0 {
			wake.Reset(time.Duration(next - mono()))
		} else {
			wake.Stop()
		}
		var ev event
		var ticked, woke, got bool
		select {
		case <-m.ctx.Done():
			return
		case <-tick.C:
			ticked = true
		case <-wake.C:
			woke = true
		case ev = <-m.events:
			got = true
		}
		now := mono()
		if gap := time.Duration(now - lastTick); gap > m.cfg.WaitTimeout && !e.leaving {
			// This process was paused (SIGSTOP, a VM freeze) or starved:
			// its view of the peers is stale. Claim nothing until it has
			// heard from them again; before anything else is handled.
			m.cfg.Logger.Warn("msc: paused, re-joining", "gap", gap)
			lastTick = now
			m.lastTick.Store(now)
			e.await(m.serverIDs())
			m.wakeClients() // reconnect now, not after a backoff
			e.elect()
		}
		switch {
		case ticked:
			lastTick = now
			m.lastTick.Store(now)
			e.forget(now)
			if m.cfg.Quorum > 0 && e.snap.ready {
				e.elect()
			}
			e.kickAll()
		case woke:
			e.wakeAt = 0
			if !e.ready && mono() >= e.readyAt {
				e.setReady(true)
				m.cfg.Logger.Debug("msc: ready after WaitTimeout", "pending", len(e.pending))
			}
			e.elect()
		case got:
			e.handle(ev)
			if ev.done != nil {
				close(ev.done)
			}
		}
	}
}

func (e *elector) handle(ev event) {
	switch ev.kind {
	case evUp:
		e.conns[ev.c] = nil
	case evDown:
		p := e.conns[ev.c]
		delete(e.conns, ev.c)
		if p != nil {
			p.lastHeard = max(p.lastHeard, ev.c.lastHeard.Load())
			delete(p.conns, ev.c)
			e.designate(p)
			if len(p.conns) == 0 {
				e.m.cfg.Logger.Debug("msc: peer down", "peer", p.uid)
				e.elect()
			}
		}
		if e.drained != nil && len(e.conns) == 0 {
			close(e.drained)
			e.drained = nil
		}
	case evUnreachable:
		e.resolve(ev.server, ev.at)
	case evBeat:
		e.beat(ev.c, ev.beat, ev.at)
	case evFunc:
		ev.fn(e)
	}
}

// oneWay turns on the one-way use of connections (designate). It is off:
// with it, a single broken flow could make two nodes count each other dead
// under load (the quiet connection's grace ran out before the peer
// switched). Heartbeats go both ways on every connection.
const oneWay = false

// designate picks the one connection this node sends its heartbeats to p
// on: one it dialed, if any is up, else one p dialed; the others go quiet.
// So each connection of a pair carries heartbeats one way (as in the Node
// package), or both ways when only one connection is up.
func (e *elector) designate(p *peer) {
	var best *conn
	for c := range p.conns {
		if best == nil || c.server != "" && best.server == "" {
			best = c
		}
	}
	for c := range p.conns {
		quiet := c != best && oneWay
		if c.quiet.Swap(quiet) && !quiet {
			select { // it speaks again: send now
			case c.kick <- struct{}{}:
			default:
			}
		}
	}
}

// resolve marks a configured server as heard from or failed to reach at
// time at; what happened before the node began waiting does not count.
func (e *elector) resolve(server string, at int64) {
	if server == "" || !e.pending[server] || at < e.since {
		return
	}
	delete(e.pending, server)
	if !e.ready && len(e.pending) == 0 {
		e.setReady(true)
		e.elect()
	}
}

func (e *elector) beat(c *conn, b beatInfo, at int64) {
	m := e.m
	if _, ok := e.conns[c]; !ok {
		return // already down
	}
	if b.uid == m.cfg.UID {
		if b.inc == m.inc {
			// Connected to itself: a server list that names this node.
			m.cfg.Logger.Debug("msc: connection to self", "peer", c.server)
			e.resolve(c.server, at)
		} else {
			// Named by the UID it claims (c.name belongs to the read loop).
			m.report(&PeerError{Peer: b.uid, Err: ErrDuplicateUID})
		}
		c.close()
		return
	}
	changed := false
	// A peer is one process: its UID and incarnation. A restarted process
	// is a new peer; so is a second process given the same UID, and each
	// keeps its own connections.
	key := peerKey(b.uid, b.inc)
	p := e.peers[key]
	if p == nil {
		p = &peer{inc: b.inc, hash: nodeHash(b.uid), conns: make(map[*conn]struct{}), servers: make(map[string]bool)}
		p.uid = b.uid
		e.peers[key] = p
		changed = true
	}
	if old := e.conns[c]; old != nil && old != p {
		delete(old.conns, c)
		e.designate(old)
		changed = true
	}
	e.conns[c] = p
	if !p.live() && !b.leaving {
		changed = true
		e.m.wakeClients() // a peer is back: retry dialing it now
	}
	if _, ok := p.conns[c]; !ok {
		p.conns[c] = struct{}{}
		p.shared.Store(max(p.shared.Load(), c.lastHeard.Load()))
		c.heard.Store(&p.shared)
		e.designate(p)
	}
	if c.server != "" {
		p.servers[c.server] = true
	}
	if p.start != b.start || p.prio != b.prio || p.claim != b.claim || p.term != b.term {
		p.start, p.prio, p.claim, p.term = b.start, b.prio, b.claim, b.term
		changed = true
	}
	if b.leaving && !p.leaving {
		p.leaving = true
		changed = true
	}
	if b.hasKeys && b.keyVersion >= p.keyVersion {
		p.keyVersion = b.keyVersion
		p.keys = make(map[string]struct{}, len(b.keys))
		p.claims = make(map[string]uint64)
		for i, k := range b.keys {
			p.keys[k] = struct{}{}
			if i < len(b.keyTerms) && b.keyTerms[i] != 0 {
				p.claims[k] = b.keyTerms[i]
			}
		}
		p.view = b.view
		p.ki = nil
		changed = true
	}
	if p.keyVersion > 0 { // heard all of it: resolve its servers
		e.resolve(c.server, at)
		for id := range p.servers {
			e.resolve(id, at)
		}
	}
	if changed {
		e.elect()
	}
}

// elect recomputes the masters, publishes the snapshot and the heartbeat
// if they changed, and reports the changes.
func (e *elector) elect() {
	m := e.m
	now := mono()
	old := e.snap
	s := &snapshot{running: !e.leaving, ready: e.ready && !e.leaving && !e.resigning, ki: e.ki, keys: make([]keyState, len(e.ki.list)), term: e.term}
	e.wakeAt = 0
	if s.running {
		e.collect()
		quorum, lease := e.quorum(now)
		s.lease = lease
		// Global mastership.
		winner := e.self
		if len(e.order) > 0 && e.order[0].before(winner) {
			winner = e.order[0].rank
		}
		if m.cfg.Sticky {
			// A live master keeps mastership; among several, the first.
			if c, ok := e.firstClaimant(old.master, func(p *peer) bool { return p.claim }); ok {
				winner = c
			}
		}
		s.masterUID = winner.uid
		if winner.uid == e.self.uid {
			s.master = s.ready && quorum && e.free(now, old.master, func(p *peer) bool { return p.claim })
			if !s.master {
				s.masterUID = e.claimant(func(p *peer) bool { return p.claim })
			}
		}
		var rival uint64 // the highest term a live peer claims mastership with
		for _, p := range e.peers {
			e.term = max(e.term, p.term)
			if p.claim && p.live() {
				rival = max(rival, p.term)
			}
		}
		if s.master && (!old.master || rival >= e.myTerm) {
			// Mastership passes to this node, or another master (a healed
			// partition) has a term as high: a new, higher term, so that a
			// store fencing on it refuses the other master's writes.
			e.term++
			e.myTerm = e.term
		}
		s.term = e.term
		if s.master {
			s.term = e.myTerm
		}
		if !s.ready {
			s.masterUID = ""
		}
		// Per-key mastership.
		if s.ready {
			if m.cfg.Balance {
				e.electBalanced(s.keys)
			} else {
				e.electOldest(s.keys)
			}
			e.settleKeys(now, old, s, quorum)
		}
	}
	e.snap = s
	m.snap.Store(s)
	viewChanged := e.updateView()
	fullChanged := viewChanged || !sameClaims(old, s) // a new key index counts too
	if old.master != s.master || old.term != s.term || old.running != s.running || fullChanged {
		if fullChanged {
			e.keyVer++ // the key set, the key claims and the view travel together
		}
		e.publishBeat()
		e.kickAll()
	}
	m.notifyChanges(old, s)
}

// updateView recomputes, with Quorum, the view this node sends: the
// UIDs of the peers it counts live. It reports whether it changed.
func (e *elector) updateView() bool {
	if e.m.cfg.Quorum <= 1 {
		return false
	}
	view := make([]string, 0, len(e.order))
	if !e.leaving {
		for _, p := range e.order {
			view = append(view, p.uid)
		}
	}
	slices.Sort(view)
	view = slices.Compact(view)
	if slices.Equal(view, e.view) {
		return false
	}
	e.view = view
	return true
}

// collect fills e.order with the live peers in election order, and brings
// their key bitsets up to date.
func (e *elector) collect() {
	e.order = e.order[:0]
	for _, p := range e.peers {
		if p.live() {
			if p.ki != e.ki {
				p.has, p.claimed, p.ki = e.ki.bits(p.keys), e.ki.bits(claimSet(p.claims)), e.ki
			}
			e.order = append(e.order, p)
		}
	}
	sort.Slice(e.order, func(i, j int) bool { return e.order[i].before(e.order[j].rank) })
}

func claimSet(c map[string]uint64) map[string]struct{} {
	s := make(map[string]struct{}, len(c))
	for k := range c {
		s[k] = struct{}{}
	}
	return s
}

// quorum reports whether this node sees Quorum nodes, itself included,
// heard from within WaitTimeout minus the lease margin, and until when
// (mono; 0 without Quorum); it sets e.wakeAt to when that may change.
func (e *elector) quorum(now int64) (bool, int64) {
	q := e.m.cfg.Quorum
	if q <= 1 {
		return true, 0
	}
	ttl := int64(e.m.cfg.WaitTimeout - e.margin())
	var ends []int64
	for _, p := range e.order {
		if h := p.heard(); h+ttl > now {
			ends = append(ends, h+ttl)
			e.wake(h + ttl)
		}
	}
	if len(ends) < q-1 {
		return false, 0
	}
	slices.Sort(ends)
	return true, ends[len(ends)-(q-1)] // the (q-1)th freshest peer
}

// margin is the lease margin of Quorum: a node without quorum steps down
// WaitTimeout-margin after it last heard from its peers; a node steps up
// no earlier than WaitTimeout+margin after a vanished master was last
// heard. The two last-heard instants can be up to one Interval apart (the
// heartbeats of the two nodes are not in phase), so the gap between the
// step-down and the step-up is at least 2*margin-Interval: with margin
// max(Interval, WaitTimeout/4), at least Interval, which absorbs
// scheduling delays and clock-rate differences.
func (e *elector) margin() time.Duration {
	return max(e.m.cfg.Interval, e.m.cfg.WaitTimeout/4)
}

func (e *elector) wake(t int64) {
	if e.wakeAt == 0 || t < e.wakeAt {
		e.wakeAt = t
	}
}

// firstClaimant returns the first in order among the live peers that
// claim a mastership, and this node if it holds it now.
func (e *elector) firstClaimant(self bool, claims func(*peer) bool) (rank, bool) {
	var best rank
	found := false
	if self {
		best, found = e.self, true
	}
	for _, p := range e.order {
		if claims(p) && (!found || p.before(best)) {
			best, found = p.rank, true
		}
	}
	return best, found
}

// claimant returns the first live peer that claims a mastership, or "".
func (e *elector) claimant(claims func(*peer) bool) string {
	for _, p := range e.order {
		if claims(p) {
			return p.uid
		}
	}
	return ""
}

// free reports whether this node may take a mastership now. Without
// Quorum it always may. With Quorum, a node that does not hold it yet
// waits until no live peer claims it, and until a peer that claimed it and
// vanished without leaving was last heard WaitTimeout+margin ago: its
// lease has run out, so it has stepped down.
func (e *elector) free(now int64, holds bool, claims func(*peer) bool) bool {
	if e.m.cfg.Quorum <= 1 || holds {
		return true
	}
	// Hold while a live peer counts live a node this one has not heard
	// from: it may be a master on the far side of a healed partition,
	// whose claims this node cannot see yet, or one elected a moment ago.
	// (The price: a node that can never reach a peer that others reach —
	// one broken link, not a partition — does not take a new mastership
	// while that lasts. Safety first.)
	for _, p := range e.order {
		for _, u := range p.view {
			if u != e.self.uid && !e.isLive(u) {
				return false
			}
		}
	}
	ok := true
	for _, p := range e.peers {
		if !claims(p) || p.leaving {
			continue
		}
		if p.live() {
			ok = false
			continue
		}
		if end := p.heard() + int64(e.m.cfg.WaitTimeout+e.margin()); end > now {
			e.wake(end)
			ok = false
		}
	}
	return ok
}

// isLive reports whether a live peer has this UID.
func (e *elector) isLive(uid string) bool {
	for _, p := range e.order {
		if p.uid == uid {
			return true
		}
	}
	return false
}

// electOldest: the master of a key is the first in order among the live
// nodes holding it.
func (e *elector) electOldest(out []keyState) {
	for i := range out {
		out[i] = keyState{master: true, uid: e.self.uid}
		for _, p := range e.order {
			if !p.before(e.self) {
				break // only the peers before this node can beat it
			}
			if p.has.has(i) {
				out[i] = keyState{uid: p.uid}
				break
			}
		}
	}
}

// electBalanced: the master of a key is the live node holding it with the
// highest rendezvous weight.
func (e *elector) electBalanced(out []keyState) {
	type cand struct {
		has  bitset
		hash uint64
		uid  string
	}
	cands := make([]cand, len(e.order))
	for j, p := range e.order {
		cands[j] = cand{p.has, p.hash, p.uid}
	}
	self := e.self.uid
	for i, kh := range e.ki.hash {
		best, bestW := self, weight(kh, e.selfH)
		word, bit := i/64, uint64(1)<<(i%64)
		for j := range cands {
			c := &cands[j]
			if c.has[word]&bit != 0 {
				if w := weight(kh, c.hash); w > bestW || w == bestW && c.uid < best {
					best, bestW = c.uid, w
				}
			}
		}
		out[i] = keyState{master: best == self, uid: best}
	}
}

// settleKeys applies Sticky, Quorum and terms to the per-key winners.
func (e *elector) settleKeys(now int64, old, s *snapshot, quorum bool) {
	sticky, strict := e.m.cfg.Sticky, e.m.cfg.Quorum > 1
	var claimers []*peer // the live peers that master a key
	for _, p := range e.order {
		if len(p.claims) > 0 {
			claimers = append(claimers, p)
		}
	}
	for i := range s.keys {
		ks := &s.keys[i]
		k := e.ki.list[i]
		var o keyState
		if old.ki == s.ki {
			o = old.keys[i]
		} else {
			o, _ = old.key(k)
		}
		held := o.master
		if sticky || strict {
			claims := func(p *peer) bool { return p.has.has(i) && p.claimed.has(i) }
			if sticky {
				if c, ok := e.firstClaimant(held, claims); ok {
					*ks = keyState{master: c.uid == e.self.uid, uid: c.uid}
				}
			}
			if ks.master && (!quorum || !e.free(now, held, claims)) {
				*ks = keyState{uid: e.claimant(claims)}
			}
		}
		var rival uint64
		for _, p := range claimers {
			if p.claimed.has(i) {
				rival = max(rival, p.claims[k])
			}
		}
		e.keyTerm[i] = max(e.keyTerm[i], rival)
		if ks.master && (!held || rival >= o.term) {
			e.keyTerm[i]++ // as for the global term
		}
		ks.term = e.keyTerm[i]
	}
}

// sameClaims reports whether two snapshots claim the same keys.
func sameClaims(a, b *snapshot) bool {
	if a.ki != b.ki {
		return false
	}
	for i := range a.keys {
		if a.keys[i].master != b.keys[i].master || a.keys[i].master && a.keys[i].term != b.keys[i].term {
			return false
		}
	}
	return true
}

// kickAll asks every connection to send the current heartbeat now.
func (e *elector) kickAll() {
	for c := range e.conns {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// publishBeat encodes the heartbeat for the writers.
func (e *elector) publishBeat() {
	m := e.m
	s := e.snap
	b := &beat{uid: e.self.uid, start: e.self.start, prio: e.self.prio, inc: m.inc, leaving: e.leaving,
		keyVersion: e.keyVer, keys: e.ki.list, claim: s.master, term: e.term, view: e.view}
	claims := b.claim
	if s.ki == e.ki {
		b.keyTerms = make([]uint64, len(s.keys))
		for i, ks := range s.keys {
			if ks.master {
				b.keyTerms[i] = ks.term
				claims = true
			}
		}
	}
	full, err := encodeBeat(b, true)
	if err != nil {
		m.report(err)
		// Keep the peers' last key set: send the old full form.
		if old := m.beat.Load(); old != nil {
			full = old.full
		}
	}
	short, _ := encodeBeat(b, false)
	if full == nil {
		full = short
	}
	m.beat.Store(&outBeat{uid: b.uid, keyVersion: b.keyVersion, leaving: b.leaving, claims: claims, full: full, short: short})
}

// outBeat is the heartbeat the writers send, encoded once per change.
type outBeat struct {
	uid         string
	keyVersion  uint64
	leaving     bool
	claims      bool   // it claims a mastership, global or of a key
	full, short []byte // payloads, UID first, with and without the key set
}

// maxGoneTerms bounds the memory of removed keys' terms.
const maxGoneTerms = 100000

// setKeys changes this node's key set, re-elects and tells the peers now.
func (e *elector) setKeys(add, remove []string) {
	changed := false
	for _, k := range add {
		if _, ok := e.keys[k]; !ok {
			e.keys[k] = struct{}{}
			changed = true
		}
	}
	for _, k := range remove {
		if _, ok := e.keys[k]; ok {
			delete(e.keys, k)
			changed = true
		}
	}
	if !changed {
		return
	}
	old := e.ki
	e.ki = newKeyIndex(e.keys)
	// Remember the terms of removed keys, so that a key added again never
	// gets a term it had before.
	if e.goneTerms == nil || len(e.goneTerms) > maxGoneTerms {
		e.goneTerms = make(map[string]uint64)
	}
	for j, k := range old.list {
		if _, ok := e.ki.idx[k]; !ok && e.keyTerm[j] > 0 {
			e.goneTerms[k] = e.keyTerm[j]
		}
	}
	terms := make([]uint64, len(e.ki.list))
	for i, k := range e.ki.list {
		if j, ok := old.idx[k]; ok {
			terms[i] = e.keyTerm[j]
		} else if t, ok := e.goneTerms[k]; ok {
			terms[i] = t
			delete(e.goneTerms, k)
		}
	}
	e.keyTerm = terms
	e.elect() // the index changed: elect bumps keyVer and publishes the new key set
}
