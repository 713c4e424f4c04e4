package msc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnhealthy is wrapped by the errors of [Msc.Healthy].
var ErrUnhealthy = errors.New("msc: unhealthy")

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

// Term returns the global fencing term: a number that strictly increases
// each time global mastership passes to a node, agreed by the nodes that
// saw both masters. Pass it with every write a master makes to a store
// that refuses writes with a term lower than one it has seen, and a
// deposed master's late writes are refused.
func (m *Msc) Term() uint64 { return m.snap.Load().term }

// TermByKey returns the fencing term of key's mastership (0 for a key this
// node has not added).
func (m *Msc) TermByKey(key string) uint64 {
	ks, _ := m.snap.Load().key(key)
	return ks.term
}

// RunAsMaster runs fn each time this node becomes the global master, with
// a context that is cancelled the moment mastership is lost or the node
// stops, and the term of that mastership. It waits for fn to return before
// campaigning again, so fn never runs twice at once; if fn returns while
// the node is still master, it is not run again until the next
// mastership. RunAsMaster returns ctx.Err() when ctx is done and
// ErrStopped when the node stops, after fn has returned. On a graceful
// Stop, no peer takes over until fn has returned (or WaitTimeout passed).
func (m *Msc) RunAsMaster(ctx context.Context, fn func(ctx context.Context, term uint64)) error {
	return m.runAs(ctx, "", fn)
}

// RunAsMasterByKey is RunAsMaster for the mastership of key.
func (m *Msc) RunAsMasterByKey(ctx context.Context, key string, fn func(ctx context.Context, term uint64)) error {
	if key == "" {
		return fmt.Errorf("%w: empty key name", ErrInvalidOption)
	}
	return m.runAs(ctx, key, fn)
}

func (m *Msc) runAs(ctx context.Context, key string, fn func(context.Context, uint64)) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := m.Watch(wctx, key)
	ended := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrStopped
	}
	var c Change // the newest state seen: kept across turns of the loop
	for {
		// Wait to become master (or start at once if the change that
		// ended the last run made this node master again, in a new term).
		for !c.IsMaster {
			var ok bool
			if c, ok = <-ch; !ok {
				return ended()
			}
		}
		term := c.Term
		fctx, fcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		m.cbMu.Lock()
		if m.runs == nil {
			m.runs = make(map[chan struct{}]bool)
		}
		m.runs[done] = true
		m.cbMu.Unlock()
		go func() {
			defer close(done)
			fn(fctx, term)
		}()
		// Wait to lose it.
		for c.IsMaster && c.Term == term {
			var ok bool
			if c, ok = <-ch; !ok {
				break
			}
		}
		fcancel()
		<-done
		m.cbMu.Lock()
		delete(m.runs, done)
		m.cbMu.Unlock()
		if ctx.Err() != nil || !m.running() {
			return ended()
		}
	}
}

// waitRuns waits, at most d, for the RunAsMaster functions that are
// running to return.
func (m *Msc) waitRuns(d time.Duration) {
	m.cbMu.Lock()
	var runs []chan struct{}
	for done := range m.runs {
		runs = append(runs, done)
	}
	m.cbMu.Unlock()
	if len(runs) == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for _, done := range runs {
		select {
		case <-done:
		case <-t.C:
			return
		}
	}
}

func (m *Msc) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateRunning
}

// Healthy returns nil while this node's view of the cluster is fresh: it
// is running, has heard from (or failed to reach) every server since Start,
// and, with Quorum, has heard from a quorum within WaitTimeout. Otherwise
// it returns an error wrapping ErrUnhealthy that says what is stale. Use
// it for a readiness probe.
func (m *Msc) Healthy() error {
	var err error
	if !m.call(func(e *elector) { err = e.healthy(mono()) }) {
		return fmt.Errorf("%w: %w", ErrUnhealthy, ErrStopped)
	}
	return err
}

func (e *elector) healthy(now int64) error {
	if e.leaving {
		return fmt.Errorf("%w: %w", ErrUnhealthy, ErrStopped)
	}
	if !e.ready {
		var ids []string
		for id := range e.pending {
			ids = append(ids, id)
		}
		return fmt.Errorf("%w: waiting to hear from servers %s", ErrUnhealthy, strings.Join(ids, ", "))
	}
	wait := e.m.cfg.WaitTimeout
	fresh := 1
	var stale []string
	for _, p := range e.peers {
		ago := time.Duration(now - p.heard())
		if ago <= wait {
			fresh++
		} else if p.live() {
			stale = append(stale, fmt.Sprintf("%s (last heard %v ago)", p.uid, ago.Round(time.Millisecond)))
		}
	}
	if q := e.m.cfg.Quorum; q > 1 && fresh < q {
		return fmt.Errorf("%w: sees %d of the %d nodes of a quorum", ErrUnhealthy, fresh, q)
	}
	if len(stale) > 0 {
		return fmt.Errorf("%w: stale peers: %s", ErrUnhealthy, strings.Join(stale, ", "))
	}
	return nil
}
