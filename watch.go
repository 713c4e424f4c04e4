package msc

import (
	"context"

	"github.com/msc-go/msc/internal/core"
)

// Change is one change of mastership seen by this node.
type Change struct {
	// Key is the key whose master changed; "" for the global mastership.
	Key string
	// IsMaster tells whether this node is now master (for Key).
	IsMaster bool
	// Master is the UID of the master now, "" if none is known.
	Master string
	// Term is the fencing term (0 until terms exist).
	Term uint64
}

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
// The channel is closed when ctx is done or the node stops. Watch does
// not block; on a stopped node the channel holds the last state and is
// closed.
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
		return Change{IsMaster: s.Master, Master: s.MasterUID, Term: s.Term}
	}
	ks, _ := s.Key(key)
	return Change{Key: key, IsMaster: ks.Master, Master: ks.UID, Term: ks.Term}
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
// OnChange does not block; a nil cb is ignored.
func (m *Msc) OnChange(cb func(Change)) {
	if cb == nil {
		return
	}
	m.cbMu.Lock()
	m.onChange = append(m.onChange, cb)
	m.cbMu.Unlock()
}

// notifyChanges queues the changes between two snapshots for OnChange.
func (m *Msc) notifyChanges(old, s *core.Snapshot) {
	m.met.countChanges(old, s)
	m.cbMu.Lock()
	defer m.cbMu.Unlock()
	cbs := m.onChange
	if len(cbs) == 0 && len(m.watchers) == 0 {
		return
	}
	var changes []Change
	if old.Master != s.Master || old.MasterUID != s.MasterUID || old.Term != s.Term {
		changes = append(changes, Change{IsMaster: s.Master, Master: s.MasterUID, Term: s.Term})
	}
	if old.KI == s.KI {
		s.Diff(old, func(j int, ks, _ core.KeyState) {
			changes = append(changes, Change{Key: s.KI.List[j], IsMaster: ks.Master, Master: ks.UID, Term: ks.Term})
		})
	} else {
		for i := range s.Len() {
			ks := *s.At(i)
			if o, _ := old.Key(s.KI.List[i]); o != ks {
				changes = append(changes, Change{Key: s.KI.List[i], IsMaster: ks.Master, Master: ks.UID, Term: ks.Term})
			}
		}
		for i, k := range old.KI.List {
			if o := *old.At(i); o != (core.KeyState{}) {
				if _, ok := s.KI.Idx[k]; !ok {
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
