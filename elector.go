package msc

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// The elector is the one goroutine that owns the election state: the
// peers, their liveness and key sets, this node's keys, readiness. The
// connections and the public methods feed it events; it publishes an
// immutable snapshot for readers and the heartbeat for the writers.

// Event kinds.
const (
	evUp          = iota // a connection finished its handshake
	evBeat               // a heartbeat with news (first on a connection, keys, leaving)
	evDown               // a connection ended
	evUnreachable        // a configured server could not be reached
	evFunc               // run fn on the elector (public methods)
)

type event struct {
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
	leaving    bool
	hasKeys    bool
	keyVersion uint64
	keys       []string
}

// peer is what the elector knows of another node.
type peer struct {
	uid        string
	start      int64
	inc        uint64
	leaving    bool
	keys       map[string]struct{}
	keyVersion uint64
	has        bitset             // keys ∩ this node's keys, over ki
	ki         *keyIndex          // the index has was computed on
	hash       uint64             // nodeHash(uid), for Balance
	conns      map[*conn]struct{} // connections that carried its heartbeats and are up
	servers    map[string]bool    // configured server ids it answered on
}

func (p *peer) live() bool { return len(p.conns) > 0 && !p.leaving }

type elector struct {
	m       *Msc
	conns   map[*conn]*peer // every connection past its handshake; nil until it heard
	peers   map[string]*peer
	keys    map[string]struct{} // this node's keys
	ki      *keyIndex           // index of keys, rebuilt when they change
	selfH   uint64              // nodeHash of this node
	keyVer  uint64
	ready   bool
	pending map[string]bool // servers not yet heard from or failed, at start
	leaving bool
	snap    *snapshot
	order   []*peer       // scratch: live peers in order
	drained chan struct{} // Stop: closed when the last connection is down
}

// snapshot is the published, immutable result of an election. Readers load
// it atomically; it is never modified after publication.
type snapshot struct {
	running   bool
	ready     bool
	master    bool
	masterUID string
	ki        *keyIndex  // this node's keys
	keys      []keyState // by position in ki
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
}

// less orders nodes: earlier start time first, then the smaller UID.
func less(startA int64, uidA string, startB int64, uidB string) bool {
	if startA != startB {
		return startA < startB
	}
	return uidA < uidB
}

func newElector(m *Msc, keys map[string]struct{}, servers []string) *elector {
	e := &elector{
		m:       m,
		conns:   make(map[*conn]*peer),
		peers:   make(map[string]*peer),
		keys:    keys,
		pending: make(map[string]bool, len(servers)),
		snap:    &snapshot{ki: noKeys},
		selfH:   nodeHash(m.cfg.UID),
	}
	e.ki = newKeyIndex(e.keys)
	for _, s := range servers {
		e.pending[s] = true
	}
	e.ready = len(e.pending) == 0
	e.keyVer = 1
	return e
}

// run is the elector goroutine, started by Start and waited for by Stop.
func (e *elector) run() {
	defer e.m.wg.Done()
	m := e.m
	e.publishBeat()
	e.elect()
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	var readyC <-chan time.Time
	if !e.ready {
		t := time.NewTimer(m.cfg.WaitTimeout)
		defer t.Stop()
		readyC = t.C
	}
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-tick.C:
			e.kickAll()
		case <-readyC:
			readyC = nil
			if !e.ready {
				e.ready = true
				e.m.cfg.Logger.Debug("msc: ready after WaitTimeout", "pending", len(e.pending))
				e.elect()
			}
		case ev := <-m.events:
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
			delete(p.conns, ev.c)
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
		e.resolve(ev.server)
	case evBeat:
		e.beat(ev.c, ev.beat)
	case evFunc:
		ev.fn(e)
	}
}

// resolve marks a configured server as heard from or failed to reach.
func (e *elector) resolve(server string) {
	if server == "" || !e.pending[server] {
		return
	}
	delete(e.pending, server)
	if !e.ready && len(e.pending) == 0 {
		e.ready = true
		e.elect()
	}
}

func (e *elector) beat(c *conn, b beatInfo) {
	m := e.m
	if _, ok := e.conns[c]; !ok {
		return // already down
	}
	if b.uid == m.cfg.UID {
		if b.inc == m.inc {
			// Connected to itself: a server list that names this node.
			m.cfg.Logger.Debug("msc: connection to self", "peer", c.server)
			e.resolve(c.server)
		} else {
			m.report(&PeerError{Peer: c.name, Err: ErrDuplicateUID})
		}
		c.close()
		return
	}
	changed := false
	p := e.peers[b.uid]
	if p == nil || p.inc != b.inc {
		if p != nil {
			for oc := range p.conns {
				e.conns[oc] = nil
			}
		}
		p = &peer{uid: b.uid, inc: b.inc, hash: nodeHash(b.uid), conns: make(map[*conn]struct{}), servers: make(map[string]bool)}
		e.peers[b.uid] = p
		changed = true
	}
	if old := e.conns[c]; old != nil && old != p {
		delete(old.conns, c)
		changed = true
	}
	e.conns[c] = p
	if !p.live() && !b.leaving {
		changed = true
		e.m.wakeClients() // a peer is back: retry dialing it now
	}
	p.conns[c] = struct{}{}
	if c.server != "" {
		p.servers[c.server] = true
	}
	if p.start != b.start {
		p.start = b.start
		changed = true
	}
	if b.leaving && !p.leaving {
		p.leaving = true
		changed = true
	}
	if b.hasKeys && b.keyVersion >= p.keyVersion {
		if p.keyVersion != b.keyVersion || !sameKeys(p.keys, b.keys) {
			changed = true
		}
		p.keyVersion = b.keyVersion
		p.keys = make(map[string]struct{}, len(b.keys))
		for _, k := range b.keys {
			p.keys[k] = struct{}{}
		}
		p.ki = nil
	}
	e.resolve(c.server)
	if changed {
		e.elect()
	}
}

func sameKeys(have map[string]struct{}, keys []string) bool {
	if len(have) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := have[k]; !ok {
			return false
		}
	}
	return true
}

// elect recomputes the masters, publishes the snapshot and reports the
// changes.
func (e *elector) elect() {
	m := e.m
	s := &snapshot{running: !e.leaving, ready: e.ready && !e.leaving, ki: e.ki, keys: make([]keyState, len(e.ki.list))}
	if s.running {
		selfStart, selfUID := m.start, m.cfg.UID
		// e.order: the live peers, oldest first; older: how many of them
		// are older than this node.
		e.order = e.order[:0]
		for _, p := range e.peers {
			if p.live() {
				if p.ki != e.ki {
					p.has, p.ki = e.ki.bits(p.keys), e.ki
				}
				e.order = append(e.order, p)
			}
		}
		sort.Slice(e.order, func(i, j int) bool {
			return less(e.order[i].start, e.order[i].uid, e.order[j].start, e.order[j].uid)
		})
		older := sort.Search(len(e.order), func(i int) bool {
			return !less(e.order[i].start, e.order[i].uid, selfStart, selfUID)
		})
		s.masterUID = selfUID
		if older > 0 {
			s.masterUID = e.order[0].uid
		}
		s.master = s.ready && s.masterUID == selfUID
		if !s.ready {
			s.masterUID = ""
		}
		if s.ready {
			if m.cfg.Balance {
				e.electBalanced(s.keys)
			} else {
				e.electOldest(s.keys, e.order[:older])
			}
		}
	}
	old := e.snap
	e.snap = s
	m.snap.Store(s)
	m.notifyChanges(old, s)
}

// electOldest: the master of a key is the oldest live node holding it.
// Only the peers older than this node can beat it.
func (e *elector) electOldest(out []keyState, older []*peer) {
	self := e.m.cfg.UID
	for i := range out {
		out[i] = keyState{master: true, uid: self}
		for _, p := range older {
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
	self := e.m.cfg.UID
	for i, kh := range e.ki.hash {
		best, bestW := self, weight(kh, e.selfH)
		for _, p := range e.order {
			if p.has.has(i) {
				if w := weight(kh, p.hash); w > bestW || w == bestW && p.uid < best {
					best, bestW = p.uid, w
				}
			}
		}
		out[i] = keyState{master: best == self, uid: best}
	}
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
	b := &beat{uid: m.cfg.UID, start: m.start, inc: m.inc, leaving: e.leaving, keyVersion: e.keyVer}
	b.keys = e.ki.list
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
	m.beat.Store(&outBeat{uid: b.uid, keyVersion: b.keyVersion, leaving: b.leaving, full: full, short: short})
}

// outBeat is the heartbeat the writers send, encoded once per change.
type outBeat struct {
	uid         string
	keyVersion  uint64
	leaving     bool
	full, short []byte // payloads, UID first, with and without the key set
}

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
	e.ki = newKeyIndex(e.keys)
	e.keyVer++
	e.publishBeat()
	e.elect()
	e.kickAll()
}

// status builds a Status; it runs on the elector.
func (e *elector) status() Status {
	m := e.m
	s := e.snap
	st := Status{
		UID:       m.cfg.UID,
		StartTime: time.Unix(0, m.start),
		Running:   s.running,
		Ready:     s.ready,
		IsMaster:  s.master,
		Master:    s.masterUID,
	}
	if a := m.Addr(); a != nil {
		st.Addr = a.String()
	}
	for _, p := range e.peers {
		ps := PeerStatus{UID: p.uid, StartTime: time.Unix(0, p.start), Live: p.live(), Leaving: p.leaving, Conns: len(p.conns)}
		var last int64
		for c := range p.conns {
			last = max(last, c.lastHeard.Load())
		}
		if last > 0 {
			ps.LastHeard = time.Unix(0, last)
		}
		for k := range p.keys {
			ps.Keys = append(ps.Keys, k)
		}
		slices.Sort(ps.Keys)
		for id := range p.servers {
			ps.Servers = append(ps.Servers, id)
		}
		slices.Sort(ps.Servers)
		st.Peers = append(st.Peers, ps)
	}
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int {
		if c := a.StartTime.Compare(b.StartTime); c != 0 {
			return c
		}
		return strings.Compare(a.UID, b.UID)
	})
	for i, ks := range s.keys {
		st.Keys = append(st.Keys, KeyStatus{Key: s.ki.list[i], IsMaster: ks.master, Master: ks.uid})
	}
	return st
}
