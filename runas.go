package msc

import (
	"context"
	"fmt"
	"slices"
	"time"
)

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
			m.runs = make(map[chan struct{}]string)
		}
		m.runs[done] = key
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
// running to return: all of them, or those of the keys given.
func (m *Msc) waitRuns(d time.Duration, keys ...string) {
	m.cbMu.Lock()
	var runs []chan struct{}
	for done, key := range m.runs {
		if len(keys) == 0 || slices.Contains(keys, key) {
			runs = append(runs, done)
		}
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
