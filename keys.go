package msc

import (
	"context"
	"slices"
	"sync"
	"time"
)

// IsMaster reports whether this node is the global master: the first in
// order of itself and its live peers. It is a lock-free read that does not
// allocate (a few ns; about 30ns on a master with Quorum, which also checks
// its lease). A node that is not running is not master. Without Quorum, a
// process resumed after a pause (SIGSTOP) may answer true for the moment,
// about a millisecond, before its elector notices the pause.
func (m *Msc) IsMaster() bool {
	s := m.snap.Load()
	return s.master && m.valid(s)
}

// IsMasterByKey reports whether this node is master for key: the oldest of
// itself and the live peers that hold key. It is false for a key this node
// has not added. It is a lock-free read that does not allocate.
func (m *Msc) IsMasterByKey(key string) bool {
	s := m.snap.Load()
	ks, _ := s.key(key)
	return ks.master && m.valid(s)
}

// valid reports whether the masterships of snapshot s still hold. Without
// Quorum: always (a few ns). With Quorum, only masters pay for reading the
// clock (about 30ns): until the lease runs out, and while the elector has
// run within WaitTimeout, so that a process resumed after a pause does not
// act as master before its elector has looked around.
func (m *Msc) valid(s *snapshot) bool {
	if s.lease == 0 {
		return true
	}
	now := mono()
	return now < s.lease && time.Duration(now-m.lastTick.Load()) <= m.cfg.WaitTimeout
}

// Master returns the UID of the node this node thinks is the global
// master. ok is false while the node is not running or has not yet heard
// from its peers after Start.
func (m *Msc) Master() (uid string, ok bool) {
	s := m.snap.Load()
	return s.masterUID, s.masterUID != ""
}

// MasterByKey returns the UID of the master for key among the nodes that
// hold it. ok is false for a key this node has not added, and when Master
// would return false.
func (m *Msc) MasterByKey(key string) (uid string, ok bool) {
	ks, _ := m.snap.Load().key(key)
	return ks.uid, ks.uid != ""
}

// AddKey makes this node compete for key. Mastership is re-elected and
// peers are told at once; when AddKey returns, IsMasterByKey reflects the
// new key. An empty key, or one longer than MaxKeyLen, is ignored and
// reported to OnError.
func (m *Msc) AddKey(key string) { m.changeKeys(true, key) }

// AddKeys adds several keys at once: one election and one message to the
// peers, where AddKey in a loop would cost one each.
func (m *Msc) AddKeys(keys ...string) { m.changeKeys(true, keys...) }

// RemoveKey stops this node competing for key; peers are told at once.
func (m *Msc) RemoveKey(key string) { m.changeKeys(false, key) }

// RemoveKeys removes several keys at once.
func (m *Msc) RemoveKeys(keys ...string) { m.changeKeys(false, keys...) }

func (m *Msc) changeKeys(add bool, keys ...string) {
	if add {
		valid := keys[:0:0]
		for _, k := range keys {
			if err := checkKey(k); err != nil {
				m.report(err)
				continue
			}
			valid = append(valid, k)
		}
		keys = valid
	}
	if len(keys) == 0 {
		return
	}
	m.mu.Lock()
	switch m.state {
	case stateNew:
		for _, key := range keys {
			if add {
				m.keys[key] = struct{}{}
			} else {
				delete(m.keys, key)
			}
		}
		m.mu.Unlock()
		return
	case stateStopped:
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.call(func(e *elector) {
		if add {
			e.setKeys(keys, nil)
		} else {
			e.setKeys(nil, keys)
		}
	})
}

// MasterKeys returns the keys this node is master of, sorted.
func (m *Msc) MasterKeys() []string {
	s := m.snap.Load()
	var out []string
	for i, ks := range s.keys {
		if ks.master {
			out = append(out, s.ki.list[i])
		}
	}
	return out
}

// Keys returns the keys this node competes for, sorted.
func (m *Msc) Keys() []string {
	m.mu.Lock()
	if m.state != stateRunning {
		keys := make([]string, 0, len(m.keys))
		for k := range m.keys {
			keys = append(keys, k)
		}
		m.mu.Unlock()
		slices.Sort(keys)
		return keys
	}
	m.mu.Unlock()
	var keys []string
	m.call(func(e *elector) {
		for k := range e.keys {
			keys = append(keys, k)
		}
	})
	slices.Sort(keys)
	return keys
}

// Update re-elects now and sends a heartbeat to every peer at once,
// without waiting for the next Interval. With keys, it names the keys the
// caller cares about; every key is re-elected either way, since an
// election costs microseconds.
func (m *Msc) Update(keys ...string) {
	m.call(func(e *elector) {
		e.elect()
		e.kickAll()
	})
}

// AddServer adds a peer to dial, under an id of the caller's choosing; it
// may be called before or after Start. It returns ErrServerExists for an id
// already added, ErrStopped after Stop, and an error for a bad config.
func (m *Msc) AddServer(id string, c ServerConfig) error {
	inherit := c.Key == "" && (c.Algorithm == "" || c.Algorithm == m.cfg.Algorithm)
	c, err := c.fill(m.cfg)
	if err != nil {
		return err
	}
	var s *suite // nil: the node's own, which SetKey may change
	if !inherit {
		if s, err = newSuite(c.Algorithm, c.Key); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == stateStopped {
		return ErrStopped
	}
	if _, ok := m.clients[id]; ok {
		return ErrServerExists
	}
	cl := &client{id: id, cfg: c, suite: s, wake: make(chan struct{}, 1)}
	m.clients[id] = cl
	if m.state == stateRunning {
		m.startClient(cl)
	}
	return nil
}

// startClient starts a client's goroutine; m.mu is held.
func (m *Msc) startClient(cl *client) {
	cl.ctx, cl.cancel = context.WithCancel(m.ctx)
	m.wg.Add(1)
	go m.runClient(cl)
}

// RemoveServer stops dialing the server with this id and closes the
// connection to it. The peer stays live if it keeps dialing this node:
// remove a node from a cluster by removing it everywhere, or stopping it.
// It returns ErrUnknownServer for an id never added.
func (m *Msc) RemoveServer(id string) error {
	m.mu.Lock()
	cl, ok := m.clients[id]
	if !ok {
		st := m.state
		m.mu.Unlock()
		if st == stateStopped {
			return ErrStopped
		}
		return ErrUnknownServer
	}
	delete(m.clients, id)
	running := m.state == stateRunning
	m.mu.Unlock()
	if running {
		cl.cancel()
		m.call(func(e *elector) { e.resolve(id, mono()) })
	}
	return nil
}

// Status is a snapshot of what a node knows, for display and debugging.
type Status struct {
	UID       string
	StartTime time.Time
	Priority  int
	Term      uint64 // the global fencing term
	Addr      string // listening address, "" before Start
	Running   bool   // started and not stopped
	Ready     bool   // heard from or failed to reach every server since Start
	IsMaster  bool
	Master    string       // global master's UID, "" if unknown
	Peers     []PeerStatus // in election order, oldest first
	Keys      []KeyStatus  // this node's keys, sorted
	Servers   []string     // configured server ids, sorted

	// Traffic since New: heartbeat frames and their bytes, both ways.
	FramesSent, FramesReceived, BytesSent, BytesReceived uint64
}

// PeerStatus is what a node knows of one peer.
type PeerStatus struct {
	UID       string
	StartTime time.Time
	Priority  int
	Master    bool // it says it is the global master
	Live      bool
	Leaving   bool
	LastHeard time.Time
	Conns     int      // connections up that carried its heartbeats
	Keys      []string // the keys it advertises, sorted
	Servers   []string // the configured server ids it answered on
}

// KeyStatus is the mastership of one key.
type KeyStatus struct {
	Key      string
	IsMaster bool
	Master   string // UID, "" if unknown
	Term     uint64
}

// Status returns a snapshot of this node's view.
func (m *Msc) Status() Status {
	var st Status
	if !m.call(func(e *elector) { st = e.status() }) {
		st = Status{UID: m.cfg.UID, StartTime: time.Unix(0, m.start)}
		st.Keys = nil
		for _, k := range m.Keys() {
			st.Keys = append(st.Keys, KeyStatus{Key: k})
		}
	}
	m.mu.Lock()
	for id := range m.clients {
		st.Servers = append(st.Servers, id)
	}
	m.mu.Unlock()
	st.FramesSent, st.FramesReceived = m.framesOut.Load(), m.framesIn.Load()
	st.BytesSent, st.BytesReceived = m.bytesOut.Load(), m.bytesIn.Load()
	slices.Sort(st.Servers)
	return st
}

// DoIfMaster runs cb now, in the caller's goroutine, if this node is
// master. Otherwise it queues cb; 2*WaitTimeout later, the queue runs in
// order if the node is master then, or is dropped. Queued callbacks run
// one at a time on a goroutine of the node; none runs after Stop.
func (m *Msc) DoIfMaster(cb func()) { m.doIf("", false, cb) }

// DoIfMasterByKey is DoIfMaster for the mastership of key.
func (m *Msc) DoIfMasterByKey(key string, cb func()) { m.doIf(key, true, cb) }

func (m *Msc) doIf(key string, byKey bool, cb func()) {
	if cb == nil {
		return
	}
	is := m.IsMaster
	if byKey {
		is = func() bool { return m.IsMasterByKey(key) }
	}
	if is() {
		cb()
		return
	}
	m.queues.add(queueKey{key, byKey}, cb, is)
}

// queues holds the DoIfMaster callbacks waiting for their deadline.
// A queue per key ("" is global); each callback has its own deadline,
// 2*WaitTimeout after it was queued, and the queue runs in order.
type queues struct {
	m *Msc

	mu      sync.Mutex
	stopped bool
	q       map[queueKey]*queue
}

type queueKey struct {
	key   string
	byKey bool
}

type queue struct {
	items []queued
	timer *time.Timer
	is    func() bool
}

type queued struct {
	due time.Time
	fn  func()
}

func (qs *queues) init(m *Msc) {
	qs.m = m
	qs.q = make(map[queueKey]*queue)
}

func (qs *queues) add(key queueKey, fn func(), is func() bool) {
	wait := 2 * qs.m.cfg.WaitTimeout
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.stopped {
		return
	}
	q := qs.q[key]
	if q == nil {
		q = &queue{is: is}
		qs.q[key] = q
	}
	q.items = append(q.items, queued{due: time.Now().Add(wait), fn: fn})
	if q.timer == nil {
		q.timer = time.AfterFunc(wait, func() { qs.fire(key) })
	}
}

// fire takes the callbacks that are due and hands them to the dispatcher,
// which runs them if the node is master by then.
func (qs *queues) fire(key queueKey) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q := qs.q[key]
	if qs.stopped || q == nil {
		return
	}
	now := time.Now()
	n := 0
	for n < len(q.items) && !q.items[n].due.After(now) {
		n++
	}
	due := slices.Clone(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) > 0 {
		q.timer = time.AfterFunc(q.items[0].due.Sub(now), func() { qs.fire(key) })
	} else {
		delete(qs.q, key)
	}
	if len(due) == 0 {
		return
	}
	is := q.is
	qs.m.disp.push(func() {
		for _, it := range due {
			if !is() {
				return
			}
			it.fn()
		}
	})
}

func (qs *queues) stop() {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	qs.stopped = true
	for _, q := range qs.q {
		q.timer.Stop()
	}
	clear(qs.q)
}
