package msc

import (
	"context"
)

// watcher is a channel registered by Watch. Its value is replaced, never
// queued: it always holds the newest state, and the node never blocks on it.
type watcher struct {
	key string
	ch  chan Change
}

// send replaces the channel's value with c; cbMu is held.
func (w *watcher) send(c Change) {
	select {
	case <-w.ch:
	default:
	}
	w.ch <- c
}

// Watch returns a channel that first holds the current mastership of key
// ("" for the global one), then the newest change: a reader that falls
// behind sees the latest state, not every step, and never slows the node.
// The channel is closed when ctx is done or the node stops.
func (m *Msc) Watch(ctx context.Context, key string) <-chan Change {
	w := &watcher{key: key, ch: make(chan Change, 1)}
	m.cbMu.Lock()
	defer m.cbMu.Unlock()
	w.send(m.current(key))
	if m.watchers == nil || ctx.Err() != nil {
		close(w.ch) // stopped, or cancelled already
		return w.ch
	}
	m.watchers[w] = struct{}{}
	context.AfterFunc(ctx, func() {
		m.cbMu.Lock()
		defer m.cbMu.Unlock()
		if _, ok := m.watchers[w]; ok {
			delete(m.watchers, w)
			close(w.ch)
		}
	})
	return w.ch
}

// current returns the state of key as a Change.
func (m *Msc) current(key string) Change {
	s := m.snap.Load()
	if key == "" {
		return Change{IsMaster: s.master, Master: s.masterUID, Term: s.term}
	}
	ks, _ := s.key(key)
	return Change{Key: key, IsMaster: ks.master, Master: ks.uid, Term: ks.term}
}

// closeWatchers closes every Watch channel after the last state: Stop.
func (m *Msc) closeWatchers() {
	m.cbMu.Lock()
	defer m.cbMu.Unlock()
	for w := range m.watchers {
		w.send(m.current(w.key))
		close(w.ch)
	}
	m.watchers = nil
}

// OnChange registers a callback for changes of mastership seen by this
// node, global (Key "") and per key, in the order they happen. Callbacks
// run one at a time on a goroutine of the node, never after Stop returns.
func (m *Msc) OnChange(cb func(Change)) {
	if cb == nil {
		return
	}
	m.cbMu.Lock()
	m.onChange = append(m.onChange, cb)
	m.cbMu.Unlock()
}

// notifyChanges queues the changes between two snapshots for OnChange.
func (m *Msc) notifyChanges(old, s *snapshot) {
	m.met.countChanges(old, s)
	m.cbMu.Lock()
	defer m.cbMu.Unlock()
	cbs := m.onChange
	if len(cbs) == 0 && len(m.watchers) == 0 {
		return
	}
	var changes []Change
	if old.master != s.master || old.masterUID != s.masterUID || old.term != s.term {
		changes = append(changes, Change{IsMaster: s.master, Master: s.masterUID, Term: s.term})
	}
	for i, ks := range s.keys {
		var o keyState
		if old.ki == s.ki {
			o = old.keys[i]
		} else {
			o, _ = old.key(s.ki.list[i])
		}
		if o != ks {
			changes = append(changes, Change{Key: s.ki.list[i], IsMaster: ks.master, Master: ks.uid, Term: ks.term})
		}
	}
	if old.ki != s.ki {
		for i, k := range old.ki.list {
			if o := old.keys[i]; o != (keyState{}) {
				if _, ok := s.ki.idx[k]; !ok {
					changes = append(changes, Change{Key: k})
				}
			}
		}
	}
	if len(changes) == 0 {
		return
	}
	for w := range m.watchers {
		for _, ch := range changes {
			if ch.Key == w.key {
				w.send(ch)
			}
		}
	}
	if len(cbs) == 0 {
		return
	}
	m.disp.push(func() {
		for _, ch := range changes {
			for _, cb := range cbs {
				cb(ch)
			}
		}
	})
}
