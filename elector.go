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
	conns      map[*conn]struct{} // connections that carried its heartbeats and are up
	servers    map[string]bool    // configured server ids it answered on
}

func (p *peer) live() bool { return len(p.conns) > 0 && !p.leaving }

type elector struct {
	m       *Msc
	conns   map[*conn]*peer // every connection past its handshake; nil until it heard
	peers   map[string]*peer
	keys    map[string]struct{}
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
	keys      map[string]keyState
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

func newElector(m *Msc, keys []string, servers []string) *elector {
	e := &elector{
		m:       m,
		conns:   make(map[*conn]*peer),
		peers:   make(map[string]*peer),
		keys:    make(map[string]struct{}, len(keys)),
		pending: make(map[string]bool, len(servers)),
		snap:    &snapshot{},
	}
	for _, k := range keys {
		e.keys[k] = struct{}{}
	}
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
		p = &peer{uid: b.uid, inc: b.inc, conns: make(map[*conn]struct{}), servers: make(map[string]bool)}
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
	s := &snapshot{running: !e.leaving, ready: e.ready && !e.leaving, keys: make(map[string]keyState, len(e.keys))}
	if s.running {
		selfStart, selfUID := m.start, m.cfg.UID
		e.order = e.order[:0]
		for _, p := range e.peers {
			if p.live() && less(p.start, p.uid, selfStart, selfUID) {
				e.order = append(e.order, p)
			}
		}
		sort.Slice(e.order, func(i, j int) bool {
			return less(e.order[i].start, e.order[i].uid, e.order[j].start, e.order[j].uid)
		})
		s.masterUID = selfUID
		if len(e.order) > 0 {
			s.masterUID = e.order[0].uid
		}
		s.master = s.ready && s.masterUID == selfUID
		if !s.ready {
			s.masterUID = ""
		}
		for k := range e.keys {
			ks := keyState{uid: selfUID}
			for _, p := range e.order { // only older peers can beat this node
				if _, ok := p.keys[k]; ok {
					ks.uid = p.uid
					break
				}
			}
			ks.master = s.ready && ks.uid == selfUID
			if !s.ready {
				ks.uid = ""
			}
			s.keys[k] = ks
		}
	}
	old := e.snap
	e.snap = s
	m.snap.Store(s)
	m.notifyChanges(old, s)
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
	b.keys = make([]string, 0, len(e.keys))
	for k := range e.keys {
		b.keys = append(b.keys, k)
	}
	slices.Sort(b.keys)
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
	for k, ks := range s.keys {
		st.Keys = append(st.Keys, KeyStatus{Key: k, IsMaster: ks.master, Master: ks.uid})
	}
	slices.SortFunc(st.Keys, func(a, b KeyStatus) int { return strings.Compare(a.Key, b.Key) })
	return st
}
