package msc

import (
	"slices"
	"sync"
	"time"
)

// DoIfMaster runs cb now, in the caller's goroutine, if this node is
// master. Otherwise it queues cb; 2*WaitTimeout later, the queue runs in
// order if the node is master then, or is dropped. Queued callbacks run
// one at a time on a goroutine of the node; none runs after Stop.
// DoIfMaster blocks only while it runs cb now; it has no error: a
// callback queued on a stopped node is dropped.
func (m *Msc) DoIfMaster(cb func()) { m.doIf("", false, cb) }

// DoIfMasterByKey is DoIfMaster for the mastership of key; for key "" it
// is DoIfMaster (the same queue).
func (m *Msc) DoIfMasterByKey(key string, cb func()) { m.doIf(key, key != "", cb) }

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
