package msc

import (
	"sync/atomic"
	"time"
)

// The elector is the goroutine that drives the election core (core.go):
// it feeds it the events of the connections, the public methods and the
// clock, and applies what the core asks: it publishes the snapshot for
// readers and the heartbeat, sets each connection's echo, sends the
// heartbeat on the connections, closes connections and reports errors. It
// decides nothing itself.

// Event kinds.
const (
	evUp          = iota // a connection finished its handshake
	evBeat               // a heartbeat arrived
	evDown               // a connection ended
	evUnreachable        // a configured server could not be reached
	evFunc               // run fn on the elector (public methods)
)

type event struct {
	at     int64 // when it happened, mono()
	kind   int
	c      *conn
	server string
	grace  bool // evDown: this end found the connection silent
	beat   beatMsg
	fn     func(*elector)
	done   chan struct{}
	taken  *atomic.Bool // evFunc: fn runs only if the elector takes it first
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

type elector struct {
	m       *Msc
	core    *core
	conns   map[connID]*conn
	drained chan struct{} // Stop: closed when the last connection is down
}

func newElector(m *Msc, keys map[string]struct{}, servers []string, now int64) *elector {
	cfg := m.cfg
	list := make([]string, 0, len(keys))
	for k := range keys {
		list = append(list, k)
	}
	cc := coreConfig{uid: cfg.UID, start: m.start, inc: m.inc, prio: int64(cfg.Priority),
		interval: cfg.Interval, wait: cfg.WaitTimeout, quorum: cfg.Quorum, sticky: cfg.Sticky, balance: cfg.Balance,
		observer:   cfg.Observer,
		voters:     voterSet(cfg.Voters),
		wallOffset: time.Now().UnixNano() - now}
	e := &elector{m: m, conns: make(map[connID]*conn)}
	e.core = newCore(cc, list, servers, now, cfg.Meta)
	m.awaiting.Store(!e.core.ready)
	e.apply()
	return e
}

// voterSet returns Options.Voters as a set; nil if unset.
func voterSet(uids []string) map[string]bool {
	if len(uids) == 0 {
		return nil
	}
	set := make(map[string]bool, len(uids))
	for _, u := range uids {
		set[u] = true
	}
	return set
}

// run is the elector goroutine, started by Start and waited for by Stop.
func (e *elector) run() {
	defer e.m.wg.Done()
	m := e.m
	tick := time.NewTimer(e.untilBeat(mono()))
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		if w := e.core.wake; w != 0 {
			wake.Reset(time.Duration(w - mono()))
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
			tick.Reset(e.untilBeat(mono()))
		case <-wake.C:
			ticked, woke = true, true
		case ev = <-m.events:
			got = true
		}
		now := mono()
		e.syncHeard()
		if e.core.paused(now) {
			// This process was paused (SIGSTOP, a VM freeze) or starved:
			// the core re-joins; reconnect now, not after a backoff. It
			// steps at once, before any event: a reply must not carry
			// the claims of the heartbeat published before the pause.
			m.cfg.Logger.Warn("msc: paused, re-joining", "since last heartbeat", time.Duration(now-e.core.sent))
			m.wakeClients()
			ticked, woke = true, false
		}
		if ticked {
			if woke {
				e.core.alarm(now)
			} else {
				e.core.tick(now)
			}
			e.apply()
		}
		if got {
			// The events that wait too, then one apply: a burst (a
			// cluster starting, news on many connections) costs one send
			// on each connection, not one per event.
			e.handle(now, ev)
			for more := maxBatch; more > 0; more-- {
				select {
				case ev = <-m.events:
					e.handle(mono(), ev)
				default:
					more = 0
				}
			}
			e.apply()
		}
	}
}

// maxBatch bounds the events the elector takes in before it applies.
const maxBatch = 256

// untilBeat is how long from now (mono) to the next heartbeat: the next
// multiple of Interval on the wall clock, read once at start. Nodes send
// in step, so that a process wakes once for its sends and its peers'
// frames rather than once for each (what an idle node costs is its
// wake-ups).
func (e *elector) untilBeat(now int64) time.Duration {
	iv := int64(e.m.cfg.Interval)
	at := (now + e.core.cfg.wallOffset) % iv
	if at < 0 {
		at += iv
	}
	return time.Duration(iv - at)
}

// handle takes in one event; the caller applies what the core asks.
func (e *elector) handle(now int64, ev event) {
	switch ev.kind {
	case evUp:
		e.conns[ev.c.id] = ev.c
		e.core.up(now, ev.c.id, ev.c.server, ev.c.tag)
	case evDown:
		delete(e.conns, ev.c.id)
		e.core.down(now, ev.c.id, ev.grace)
		if e.drained != nil && len(e.conns) == 0 {
			close(e.drained)
			e.drained = nil
		}
	case evUnreachable:
		e.core.unreachable(now, ev.at, ev.server)
	case evBeat:
		live := len(e.core.order)
		e.core.recv(now, ev.at, ev.c.id, &ev.beat)
		if len(e.core.order) > live {
			e.m.wakeClients() // a peer is back: retry dialing the others now
		}
	case evFunc:
		// What the events before it in the batch changed is published
		// first: fn sees (Status) what IsMaster answers. fn applies,
		// before its caller is told it is done.
		e.apply()
		if ev.taken == nil || ev.taken.CompareAndSwap(false, true) {
			ev.fn(e)
		}
		if ev.done != nil {
			close(ev.done)
		}
	}
}

// apply carries out what the core asked for in its last step.
func (e *elector) apply() {
	m := e.m
	o := &e.core.out
	m.awaiting.Store(!e.core.ready)
	for _, err := range o.errs {
		m.report(err)
	}
	for _, id := range o.close {
		if c := e.conns[id]; c != nil {
			c.close()
		}
	}
	for _, id := range o.wake {
		m.wakeClient(id)
	}
	for _, id := range o.attach {
		if c := e.conns[id]; c != nil {
			c.linked.Store(true)
		}
	}
	for _, ec := range o.echo {
		if c := e.conns[ec.id]; c != nil {
			c.echo.Store(ec.echo)
		}
	}
	// The snapshot first: a node that steps down stops answering master
	// before any frame can tell a peer it did.
	if o.snap != nil {
		old := m.snap.Load()
		m.snap.Store(o.snap)
		m.notifyChanges(old, o.snap)
	}
	if o.beat != nil {
		e.publishBeat(o.beat)
	}
	// Send: to the claimants answered (flagged as replies), and on every
	// connection if the core asks.
	for _, id := range o.reply {
		if c := e.conns[id]; c != nil {
			c.reply.Store(true)
			if !o.kick {
				c.sendBeat(true)
			}
		}
	}
	if o.kick {
		for _, c := range e.conns {
			c.sendBeat(true)
		}
	}
	// Last, after the snapshot: a reader that sees this send time sees
	// the snapshot decided with it. Until the core has sent after a pause,
	// IsMaster answers false and a first frame sent by a new connection
	// holds back the stale claims of the heartbeat published before.
	m.lastSent.Store(e.core.sent)
	e.core.out.reset()
}

// syncHeard tells the core when each connection last carried a frame the
// read loop kept (nothing new), before the core decides anything.
func (e *elector) syncHeard() {
	for id, c := range e.conns {
		if r := c.lastRead.Load(); r > c.synced {
			c.synced = r
			e.core.heard(id, r)
		}
	}
}

// publishBeat encodes the heartbeat for the connections.
func (e *elector) publishBeat(b *beat) {
	m := e.m
	full, err := encodeBeat(b, true)
	if err != nil {
		m.report(err)
		// Keep the peers' last state: send the old full form.
		if old := m.beat.Load(); old != nil {
			full = old.full
		}
	}
	short, _ := encodeBeat(b, false)
	if full == nil {
		full = short
	}
	claims := false
	for _, c := range b.claims {
		claims = claims || c.acting
	}
	m.beat.Store(&outBeat{uid: b.uid, version: b.version, leaving: b.leaving, claims: claims, full: full, short: short})
}

// outBeat is the heartbeat the connections send, encoded once per change.
type outBeat struct {
	uid         string
	version     uint64
	leaving     bool
	claims      bool   // it is master of something, global or of a key
	full, short []byte // payloads, UID first, with and without the state
}

// setKeys changes this node's key set, re-elects and tells the peers now.
func (e *elector) setKeys(add, remove []string) {
	e.core.setKeys(mono(), add, remove)
	e.apply()
}

// resolveNow counts a server as heard from or failed to reach now.
func (e *elector) resolveNow(id string) {
	now := mono()
	e.core.begin(now)
	e.core.resolve(now, now, id)
	e.apply()
}
