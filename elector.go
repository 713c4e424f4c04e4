package msc

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// The elector drives the election core (internal/core): it feeds it the events
// of the connections, the public methods and the clock, and applies what
// the core asks: it publishes the snapshot for readers and the heartbeat,
// sets each connection's echo, sends the heartbeat on the connections,
// closes connections and reports errors. Every decision outside the core
// is in its turn (one turn of the loop: what woke it, the events waiting)
// and in the connections' shared writer and reader state (frame.go). The
// simulator (sim_test.go) runs the same elector, turn for turn, over
// simulated connections and clocks: only run, the loop that waits on the
// timers and the event channel, is the process's own.

// link is a connection as the elector sees it: a *conn, or the
// simulator's end of a simulated connection.
type link interface {
	linkID() core.ConnID
	linkServer() string // the configured server id; "" for inbound
	linkTag() uint64    // the same at both ends
	// sendBeat sends the current heartbeat now (fresh: the elector has
	// just run); it never blocks. sendConcerned sends it for member alone,
	// the peer (writer.plan).
	sendBeat(fresh bool)
	sendConcerned(member string)
	close()
	setEcho(echo int64)
	setLinked()
	setReply()
	// setNamedOnly: this end, a member, asks the voter for only the
	// entries of its table that name it (core.NamedOnly), or stops
	// asking (it reports whether it asked until now); namedOnly: the
	// peer, a member, asked so in its last frame.
	setNamedOnly(on bool) (was bool)
	namedOnly() bool
	// takeHeard returns when the read loop last kept a frame that
	// brought nothing new, if that is later than the last call saw.
	takeHeard() (int64, bool)
}

// host is what the elector acts on besides the connections: the node
// (*Msc), or a simulated one.
type host interface {
	publishSnap(s *core.Snapshot) // for the readers; changes for OnChange and Watch
	publishBeat(b *outBeat)       // the heartbeat the connections send
	setSent(at int64)             // core.sent, after the snapshot (IsMaster)
	report(err error)
	wakeClient(server string)
	wakeClients()
	// keepApart: server leads to a member this node keeps no connection
	// to (Options.Voters); its client stops dialing it.
	keepApart(server string)
	pausedFor(gap time.Duration) // a pause noticed
}

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
	l      link
	server string
	grace  bool // evDown: this end found the connection silent
	beat   core.Msg
	fn     func(*elector)
	done   chan struct{}
	taken  *atomic.Bool // evFunc: fn runs only if the elector takes it first
}

type elector struct {
	core    *core.Core
	host    host
	links   map[core.ConnID]link
	beat    *outBeat // the heartbeat published last
	scratch []link   // sorted
	// sentAll is the heartbeat last sent on every connection (a Kick):
	// the next ones carry a delta from it too (outBeat.bulk).
	sentAll *outBeat
	drained chan struct{} // Stop: closed when the last connection is down
	// tickDue is when (mono) the Interval timer that wakes the next turn
	// was due (0: none): the core hears how late it ran (NoteLate).
	tickDue int64
	m       *Msc // the process's node; nil in the simulator
	voter   bool // Options.Voters lists this node: its heartbeats keep deltas from older versions
	// leftOut is minLeftOut; the simulator, whose tables hold a few keys,
	// sets 1 so that its voters send members frames for them alone.
	leftOut int
}

// newElector makes the elector of a node's core, and publishes the first
// snapshot.
func newElector(h host, c *core.Core) *elector {
	cfg := c.Config()
	e := &elector{host: h, core: c, links: make(map[core.ConnID]link), voter: cfg.Voters[cfg.UID], leftOut: minLeftOut}
	e.apply()
	return e
}

// coreConfig returns the core's configuration of node m; now is the
// monotonic clock, read with the wall clock.
func (m *Msc) coreConfig(now int64) core.Config {
	cfg := m.cfg
	return core.Config{UID: cfg.UID, Start: m.start, Inc: m.inc, Prio: int64(cfg.Priority),
		Interval: core.Duration(cfg.Interval), Wait: core.Duration(cfg.WaitTimeout), Quorum: cfg.Quorum, Sticky: cfg.Sticky, Balance: cfg.Balance,
		Observer:   cfg.Observer,
		Voters:     voterSet(cfg.Voters),
		WallOffset: time.Now().UnixNano() - now}
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
	m := e.m
	defer m.wg.Done()
	now := mono()
	tickAt := now + int64(e.untilBeat(now)) // when tick is due (mono)
	tick := time.NewTimer(time.Duration(tickAt - now))
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	next := func() (event, int64, bool) {
		select {
		case ev := <-m.events:
			return ev, mono(), true
		default:
			return event{}, 0, false
		}
	}
	for {
		if w := e.core.Wake(); w != 0 {
			wake.Reset(time.Duration(w - mono()))
		} else {
			wake.Stop()
		}
		var ev event
		woke, got := wokeEvent, false
		select {
		case <-m.ctx.Done():
			return
		case <-tick.C:
			woke = wokeTick
			now := mono()
			m.ranLate(now, time.Duration(now-tickAt)) // overload.go
			e.tickDue = tickAt
			tickAt = now + int64(e.untilBeat(now))
			tick.Reset(time.Duration(tickAt - now))
		case <-wake.C:
			woke = wokeAlarm
		case ev = <-m.events:
			got = true
			if ev.at != 0 {
				now := mono()
				m.ranLate(now, time.Duration(now-ev.at)) // overload.go
			}
		}
		var first *event
		if got {
			first = &ev
		}
		now, wall := clocks()
		e.turn(now, wall, woke, first, next)
	}
}

// What woke the elector for a turn.
const (
	wokeEvent = iota // an event, no timer
	wokeTick         // the Interval timer: the heartbeat goes out
	wokeAlarm        // the wake-up the core asked for (core.wake)
)

// clocks reads the monotonic clock (mono, within a microsecond: epoch and
// epochNano were read one after the other) and the wall clock (Unix ns)
// for the elector's turn, from one time.Now: read apart, a goroutine
// preempted between them would show a jump of the wall clock.
func clocks() (now, wall int64) {
	t := time.Now()
	return int64(t.Sub(epoch)), t.UnixNano()
}

// turn is one turn of the elector's loop, at now (mono) and wall (the
// wall clock, Unix ns: a suspend stops only the monotonic clock), woken
// by a timer or by the event first; next returns the events waiting after it, with the
// clock when each is taken (false: none). The events are taken in, up to
// maxBatch, then applied once: a burst (a cluster starting, news on many
// connections) costs one send on each connection, not one per event.
func (e *elector) turn(now, wall int64, woke int, first *event, next func() (event, int64, bool)) {
	e.syncHeard()
	gap := time.Duration(now - e.core.Sent())
	due := e.tickDue
	e.tickDue = 0
	paused := e.core.WallClock(now, wall) || e.core.Paused(now)
	if paused {
		// This process was paused (SIGSTOP, a VM freeze), starved, or its
		// clock stood still: the core re-joins; reconnect now, not after
		// a backoff. It steps at once, before any event: a reply must not
		// carry the claims of the heartbeat published before the pause.
		e.host.pausedFor(gap) // by the monotonic clock: small after a suspend
		e.host.wakeClients()
		woke = wokeTick
	}
	switch woke {
	case wokeTick:
		if due != 0 && !paused {
			e.core.NoteLate(now, now-due) // overloaded, not paused
		}
		e.core.Tick(now)
		e.apply()
	case wokeAlarm:
		e.core.Alarm(now)
		e.apply()
	}
	if first == nil {
		return
	}
	e.handle(now, *first)
	for more := maxBatch; more > 0; more-- {
		ev, at, ok := next()
		if !ok {
			break
		}
		e.handle(at, ev)
	}
	e.apply()
}

// maxBatch bounds the events the elector takes in before it applies.
const maxBatch = 256

// untilBeat is how long from now (mono) to the next heartbeat: the next
// multiple of Interval on the wall clock, read once at start. Nodes send
// in step, so that a process wakes once for its sends and its peers'
// frames rather than once for each (what an idle node costs is its
// wake-ups).
func (e *elector) untilBeat(now int64) time.Duration {
	cfg := e.core.Config()
	iv := int64(cfg.Interval)
	at := (now + cfg.WallOffset) % iv
	if at < 0 {
		at += iv
	}
	return time.Duration(iv - at)
}

// handle takes in one event; the caller applies what the core asks.
func (e *elector) handle(now int64, ev event) {
	switch ev.kind {
	case evUp:
		id := ev.l.linkID()
		e.links[id] = ev.l
		e.core.Up(now, id, ev.l.linkServer(), ev.l.linkTag())
	case evDown:
		id := ev.l.linkID()
		delete(e.links, id)
		e.core.Down(now, id, ev.grace)
		if e.drained != nil && len(e.links) == 0 {
			close(e.drained)
			e.drained = nil
		}
	case evUnreachable:
		e.core.Unreachable(now, ev.at, ev.server)
	case evBeat:
		if e.core.Recv(now, ev.at, ev.l.linkID(), &ev.beat) {
			e.host.wakeClients() // a peer is back: retry dialing the others now
		}
		recycleTable(&ev.beat)
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

// apply carries out what the core asked for in its last steps.
func (e *elector) apply() {
	o := e.core.Out()
	for _, f := range o.Errs {
		if f.Peer != "" {
			e.host.report(&PeerError{Peer: f.Peer, Err: f.Err})
		} else {
			e.host.report(f.Err)
		}
	}
	// Before the closes: the client of a member's server learns it is
	// not to dial again when its connection ends.
	for _, id := range o.Members {
		e.host.keepApart(id)
	}
	for _, id := range o.Close {
		if l := e.links[id]; l != nil {
			l.close()
		}
	}
	for _, id := range o.Wake {
		e.host.wakeClient(id)
	}
	for _, id := range o.Attach {
		if l := e.links[id]; l != nil {
			l.setLinked()
		}
	}
	for _, ec := range o.Echoes {
		if l := e.links[ec.ID]; l != nil {
			l.setEcho(ec.Echo)
		}
	}
	// The snapshot first: a node that steps down stops answering master
	// before any frame can tell a peer it did.
	if o.Snap != nil {
		e.host.publishSnap(o.Snap)
	}
	if e.m != nil && !e.m.meshWarned.Load() && e.core.Config().Voters == nil {
		if n := e.core.LiveCount(); n > meshWarnPeers {
			e.m.warnMesh(n, "live peers")
		}
	}
	if o.Beat != nil {
		e.publishBeat(o.Beat)
	}
	// Send: to the connections the core names first (Out.First: a voter's
	// to the other voters and the members concerned), to the claimants
	// answered (flagged as replies), and on every other connection if the
	// core asks (Kick; without, a voter's new table reaches the others a
	// little later: core kickSome).
	for _, id := range o.Reply {
		if l := e.links[id]; l != nil {
			l.setReply()
		}
	}
	// A member asks every voter but the one it reads the keys' masters
	// from for only the entries of its table that name it. The voter it
	// reads them from now, asked until now, hears at once that it no
	// longer is (its read loop then sends the entries it left out).
	if e.core.Member() {
		for _, l := range e.sorted() {
			on := e.core.NamedOnly(l.linkID())
			if l.setNamedOnly(on) && !on {
				l.sendBeat(true)
			}
		}
	}
	// Without Kick, a voter's frames to members carry only the entries of
	// its table that concern them (writer.plan, outBeat.concerning); the
	// others go with the next Kick. With Kick too to a member that asked
	// for those alone.
	send := func(l link) {
		if member := e.core.MemberOn(l.linkID()); member != "" && (!o.Kick || l.namedOnly()) {
			l.sendConcerned(member)
		} else {
			l.sendBeat(true)
		}
	}
	for _, id := range o.First {
		if l := e.links[id]; l != nil {
			send(l)
		}
	}
	switch {
	case o.Kick:
		for _, l := range e.sorted() {
			if _, first := slices.BinarySearch(o.First, l.linkID()); !first {
				send(l)
			}
		}
		// Every connection carried this version: a later one travels as
		// a delta from it to those that skip the versions between
		// (kickSome).
		e.sentAll = e.beat
	default:
		for _, id := range o.Reply {
			if _, first := slices.BinarySearch(o.First, id); !first {
				if l := e.links[id]; l != nil {
					send(l)
				}
			}
		}
	}
	// Last, after the snapshot: a reader that sees this send time sees
	// the snapshot decided with it. Until the core has sent after a pause,
	// IsMaster answers false and a first frame sent by a new connection
	// holds back the stale claims of the heartbeat published before.
	e.host.setSent(e.core.Sent())
	o.Reset()
}

// sorted returns the links in the order of their ids: the same order
// every time (a simulated schedule replays).
func (e *elector) sorted() []link {
	ls := e.scratch[:0]
	for _, l := range e.links {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b link) int { return cmp.Compare(a.linkID(), b.linkID()) })
	e.scratch = ls
	return ls
}

// syncHeard tells the core when each connection last carried a frame the
// read loop kept (nothing new), before the core decides anything.
func (e *elector) syncHeard() {
	for id, l := range e.links {
		if r, ok := l.takeHeard(); ok {
			e.core.Heard(id, r)
		}
	}
}

// publishBeat encodes the heartbeat for the connections: the short form,
// and the delta from the version before; the full form when a connection
// first needs it (fullForm), which with deltas is seldom.
func (e *elector) publishBeat(b *core.Beat) {
	hb := &outBeat{uid: b.UID, version: b.Version, leaving: b.Leaving, state: b, leftOut: e.leftOut}
	for _, c := range b.Claims {
		hb.claims = hb.claims || c.Acting
	}
	hb.short, _ = encodeBeat(b, false)
	if prev := e.beat; prev != nil && deltaable(b, prev.state) && fits(b) == nil {
		// The state travels as a delta on the connections that carried
		// the previous version (writer.plan): the claims, known terms
		// and relay table that changed, not the whole state, which
		// grows with the keys. A term that moves then costs each peer a
		// few bytes, not every key. encodeDelta checks the state as
		// encodeBeat does, and fits its size: the full form, for a
		// connection that needs it, will encode (fullForm).
		if d, err := encodeDelta(b, prev.state, prev.version); err == nil {
			hb.delta, hb.deltaBase = d, prev.version
			if old := e.sentAll; old != nil && old != prev && deltaable(b, old.state) {
				// The connections a relay's new table skipped (kickSome)
				// still carry the version sent to all: a delta from it,
				// encoded when one needs it (bulkDelta).
				hb.bulkOld, hb.bulkBase = old.state, old.version
			}
			if e.voter {
				// A voter's connections may carry any of its recent
				// versions (a reply between two kickSomes): deltas from
				// those too, rather than the whole table.
				// And, of a longer run of versions, which table
				// entries changed at each (changedSince).
				if b.Table != nil {
					hb.changed, hb.chained = tableChanged(b, prev.state), true
				}
				hb.older = make([]olderState, 0, min(maxOlder, 1+len(prev.older)))
				hb.older = append(hb.older, olderState{version: prev.version, state: prev.state, changed: prev.changed, chained: prev.chained})
				for _, o := range prev.older {
					if len(hb.older) == maxOlder {
						break
					}
					if o.state != nil && (len(hb.older) >= maxOlderStates || !deltaable(b, o.state)) {
						o.state = nil // no delta from it: the whole state
					}
					hb.older = append(hb.older, o)
				}
				hb.olderDeltas = make([]olderDelta, len(hb.older))
			}
			e.beat = hb
			e.host.publishBeat(hb)
			return
		}
	}
	// No delta: every connection needs the full form now.
	full, err := encodeBeat(b, true)
	if err != nil {
		e.host.report(err)
		// Keep the peers' last state: send the old full form, and no
		// delta from it.
		hb.state = nil
		full = hb.short
		if e.beat != nil {
			full = e.beat.fullForm()
		}
	}
	hb.setFull(full)
	e.beat = hb
	e.host.publishBeat(hb)
}

// deltaable reports whether b can travel as a delta from old (encodeDelta):
// the same keys, and a table in both or in neither.
func deltaable(b, old *core.Beat) bool {
	return old != nil && slices.Equal(b.Keys, old.Keys) && (b.Table == nil) == (old.Table == nil)
}

// outBeat is the heartbeat the connections send, encoded once per change.
type outBeat struct {
	uid     string
	version uint64
	leaving bool
	claims  bool   // it is master of something, global or of a key
	short   []byte // payload, UID first, without the state
	// delta is the full form with only what changed since version
	// deltaBase (the one published before); nil: none.
	delta     []byte
	deltaBase uint64
	// bulkBase is the version last sent on every connection, if not 0 and
	// not deltaBase; bulkOld its state: those that skipped the versions
	// since get the delta from it (bulkDelta).
	bulkBase uint64
	bulkOld  *core.Beat
	bulkOnce sync.Once
	bulk     []byte
	// older are, on a voter, its last versions before this one (at most
	// maxOlder, newest first; not whole heartbeats, which would keep
	// every version before alive), and olderDeltas the deltas from each,
	// encoded when a connection needs one (deltaFrom).
	older       []olderState
	olderDeltas []olderDelta
	// changed, if chained, are the keys of the table entries that
	// changed since the version before (older[0]).
	changed []string
	chained bool
	leftOut int // elector.leftOut (concerning)
	// mu guards concerns and since: on a voter, per version a member's
	// connection last sent, what a frame for it alone carries
	// (concerning), and per version such frames left entries out since,
	// the entries changed since (changedSince).
	mu       sync.Mutex
	concerns map[uint64]*concern
	since    map[uint64]*tableEntries
	state    *core.Beat // the state of this version, which the full form carries; nil if not

	fullOnce sync.Once
	full     []byte // the payload with the whole state: fullForm
}

// fullForm returns the payload with the whole state, UID first, encoded
// the first time a connection needs it. Safe for concurrent use.
func (hb *outBeat) fullForm() []byte {
	hb.fullOnce.Do(func() {
		var err error
		if hb.full, err = encodeBeat(hb.state, true); err != nil {
			// publishBeat checked that it encodes (encodeDelta, fits).
			panic(fmt.Sprintf("msc: a heartbeat checked at publish does not encode: %v", err))
		}
	})
	return hb.full
}

// maxOlderStates is how many of a voter's versions before the newest
// its heartbeat keeps deltas from (outBeat.older), and maxOlder of how
// many it knows which table entries changed (changedSince).
const (
	maxOlderStates = 32
	maxOlder       = 128
)

// olderState is a version of a node's state and the state (nil past
// maxOlderStates); changed, if chained, are the keys of the table entries
// that changed since the version before it.
type olderState struct {
	version uint64
	state   *core.Beat
	changed []string
	chained bool
}

// tableChanged returns the keys of b's table entries that differ from
// old's, removed ones included.
func tableChanged(b, old *core.Beat) []string {
	var keys []string
	for k, e := range b.Table {
		if o, ok := old.Table[k]; !ok || o != e {
			keys = append(keys, k)
		}
	}
	for k := range old.Table {
		if _, ok := b.Table[k]; !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// olderDelta is the delta from one of outBeat.older, made once.
type olderDelta struct {
	once sync.Once
	d    []byte
}

// deltaFrom returns the payload that brings a connection that last sent
// version v to this one: the delta from v, if there is one (the version
// before, the one last sent on every connection, or on a voter one of
// its recent ones); nil: none, the full form.
func (hb *outBeat) deltaFrom(v uint64) []byte {
	if hb.delta != nil && v == hb.deltaBase {
		return hb.delta
	}
	if v == hb.bulkBase {
		if d := hb.bulkDelta(); d != nil {
			return d
		}
	}
	for i := range hb.older {
		if o := &hb.older[i]; o.version == v && o.state != nil {
			od := &hb.olderDeltas[i]
			od.once.Do(func() {
				if d, err := encodeDelta(hb.state, o.state, o.version); err == nil {
					od.d = d
				}
			})
			return od.d
		}
	}
	return nil
}

// bulkDelta returns the delta from version bulkBase, encoded the first
// time a connection needs it; nil if there is none. Safe for concurrent
// use.
func (hb *outBeat) bulkDelta() []byte {
	if hb.bulkBase == 0 {
		return nil
	}
	hb.bulkOnce.Do(func() {
		if d, err := encodeDelta(hb.state, hb.bulkOld, hb.bulkBase); err == nil {
			hb.bulk = d
		}
	})
	return hb.bulk
}

// stateAt returns the state of version v, if the heartbeat keeps it (its
// own, the one last sent on every connection, or on a voter one of its
// recent ones); nil if not.
func (hb *outBeat) stateAt(v uint64) *core.Beat {
	if v == hb.version {
		return hb.state
	}
	if v == hb.bulkBase {
		return hb.bulkOld
	}
	for i := range hb.older {
		if hb.older[i].version == v {
			return hb.older[i].state
		}
	}
	return nil
}

// changedSince returns the entries of the table, as they stand, whose
// keys changed in any version after v up to this one (a removed one as
// the zero entry), encoded; nil if the heartbeat does not know them all.
func (hb *outBeat) changedSince(v uint64) *tableEntries {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if te, ok := hb.since[v]; ok {
		return te
	}
	var t map[string]core.TableEntry
	if hb.chained && hb.state != nil && hb.state.Table != nil {
		t = make(map[string]core.TableEntry, len(hb.changed))
		add := func(keys []string) {
			for _, k := range keys {
				t[k] = hb.state.Table[k]
			}
		}
		add(hb.changed)
		found := false
		for _, o := range hb.older {
			if found = o.version == v; found || !o.chained {
				break
			}
			add(o.changed)
		}
		if !found {
			t = nil
		}
	}
	var te *tableEntries
	if t != nil {
		e := encodeEntries(t)
		te = &e
	}
	if hb.since == nil {
		hb.since = make(map[uint64]*tableEntries)
	}
	hb.since[v] = te
	return te
}

// A voter's new table goes at once to the members one of its changed
// entries names (core.Out.First), and to the voters that answered one of
// its frames (Out.Reply); during a convergence each change names a few of
// them, yet each such frame carried every entry changed since the
// connection's last one: 400 members holding 1,000 keys each took in
// about 4,000 entries per voter to converge, 1,000 in the whole table and
// the three changes of each key's naming (named, settled, master). Such a
// frame to a member now carries, of the table, only the entries that
// named it before or name it now (concerning); the others follow with
// the next frame sent on every connection (a kick: the Interval's
// heartbeat, a change that concerns all, or the relay's held-back change,
// core kickSome), from the first version they were held back at
// (completeFor). A member never holds a stale entry that names it, and
// always holds the entries that do: it becomes master of a key only once
// every live voter's entry names it (core tables), and those are
// current. A stale entry that names another node, or none, may delay a
// claim, or start a candidacy the next frame for all ends, as a table
// the relay held back did before; and what the member answers of other
// keys' masters lags until that frame.

// minLeftOut is how many of a new table's entries a frame for a member
// alone must leave out to be worth encoding for it alone (concerning):
// such a frame is encoded per connection, and the frame that completes
// it sends again what it carried. With none, at 300 members holding 100
// keys, where a change moves a few entries, the voters spent more than
// the members saved.
const minLeftOut = 32

// concern is, for one base version, the table entries that changed
// since, and the keys of those that name each UID (Rightful or Acting,
// before or after).
type concern struct {
	changed map[string]core.TableEntry
	byUID   map[string][]string
}

// concerning returns the payload that brings a member's connection that
// last sent version v to this one, with of the table only the entries
// that changed since and name member, before or after; held reports that
// others were left out. nil: none (v's state is not kept), the caller
// sends the whole change.
func (hb *outBeat) concerning(v uint64, member string) (payload []byte, held bool) {
	old := hb.stateAt(v)
	if old == nil || hb.state == nil || hb.state.Table == nil || !deltaable(hb.state, old) {
		return nil, false
	}
	hb.mu.Lock()
	cc := hb.concerns[v]
	if cc == nil {
		cc = &concern{changed: tableDelta(hb.state, old), byUID: make(map[string][]string)}
		for k, e := range cc.changed {
			o := old.Table[k]
			names := [4]string{e.Rightful, e.Acting, o.Rightful, o.Acting}
			for j, u := range names {
				if u != "" && !slices.Contains(names[:j], u) {
					cc.byUID[u] = append(cc.byUID[u], k)
				}
			}
		}
		if hb.concerns == nil {
			hb.concerns = make(map[uint64]*concern)
		}
		hb.concerns[v] = cc
	}
	hb.mu.Unlock()
	keys := cc.byUID[member]
	if len(cc.changed)-len(keys) < max(hb.leftOut, 1) {
		// Little to leave out: the delta every such connection shares,
		// encoded once, rather than one for this member alone.
		return hb.deltaFrom(v), false
	}
	table := make(map[string]core.TableEntry, len(keys))
	for _, k := range keys {
		table[k] = cc.changed[k]
	}
	te := encodeEntries(table)
	p, err := encodeWith(hb.state, true, old, v, &te)
	if err != nil {
		return nil, false
	}
	return p, true
}

// completeFor returns the payload that brings a member's connection
// that last sent version sent, and left entries out since version held
// (concerning), to this state whole: the delta from sent with, of the
// table, every entry whose key changed since held, as it stands (the
// member holds the others as they stood at held, or at sent); nil if
// the heartbeat does not keep what that takes.
func (hb *outBeat) completeFor(sent, held uint64) []byte {
	te := hb.changedSince(held)
	old := hb.stateAt(sent)
	if te == nil || old == nil || !deltaable(hb.state, old) {
		return nil
	}
	p, err := encodeWith(hb.state, true, old, sent, te)
	if err != nil {
		return nil
	}
	return p
}

// setFull sets the full form, before the heartbeat is published.
func (hb *outBeat) setFull(p []byte) { hb.fullOnce.Do(func() { hb.full = p }) }

// setKeys changes this node's key set, re-elects and tells the peers now.
func (e *elector) setKeys(add, remove []string) {
	e.core.SetKeys(mono(), add, remove)
	e.apply()
}

// resolveNow counts a server as heard from or failed to reach now.
func (e *elector) resolveNow(id string) {
	e.core.ResolveNow(mono(), id)
	e.apply()
}

// The node is the elector's host.

func (m *Msc) publishSnap(s *core.Snapshot) {
	old := m.snap.Load()
	m.snap.Store(s)
	if old.Master && !s.Master {
		// Read after the store: not master from this instant on.
		m.downAt.Store(time.Now().UnixNano())
	}
	m.notifyChanges(old, s)
}

func (m *Msc) publishBeat(b *outBeat) { m.beat.Store(b) }

func (m *Msc) setSent(at int64) { m.lastSent.Store(at) }

// meshWarnPeers is the size of a full mesh past which a node logs, once,
// that Options.Voters would serve it better: every node dials every
// other, N·(N−1) frames per Interval (README, "Large clusters").
const meshWarnPeers = 64

// warnMesh logs, once per node, that a full mesh of n peers (what) is
// large.
func (m *Msc) warnMesh(n int, what string) {
	if m.meshWarned.CompareAndSwap(false, true) {
		m.cfg.Logger.Warn("msc: a full mesh of more than 64 peers costs N·(N−1) frames per Interval: set Options.Voters (3 or 5 voters, the others members; README \"Large clusters\")", what, n)
	}
}

func (m *Msc) pausedFor(gap time.Duration) {
	m.cfg.Logger.Warn("msc: paused, re-joining", "since last heartbeat", gap)
}

// Update re-elects now and sends a heartbeat to every peer at once,
// without waiting for the next Interval; it waits for the elector, which
// takes microseconds. Before Start there is nothing to elect or send: it
// only checks keys.
//
// Every key is re-elected, whatever keys names: a key's master depends
// only on what this node has heard, not on which other keys are elected
// with it, so electing only the named keys would give them the same
// masters and save only microseconds. keys names the keys the caller
// expects this node to hold ("" is the global mastership, always held):
// if it does not hold some, Update re-elects all the same and returns an
// error wrapping ErrUnknownKey that names them, so that a misspelt or
// removed key does not go unnoticed. It returns ErrStopped after Stop.
func (m *Msc) Update(keys ...string) error {
	started := m.started.Load()
	var unknown []string
	if !m.call(func(e *elector) {
		for _, k := range keys {
			if k != "" && !e.core.HasKey(k) {
				unknown = append(unknown, k)
			}
		}
		if started {
			e.core.Tick(mono())
			e.apply()
		}
	}) {
		return ErrStopped
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: Update(%q)", ErrUnknownKey, unknown)
	}
	return nil
}
