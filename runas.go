package msc

import (
	"context"
	"slices"
	"time"
)

// RunAsMaster runs fn each time this node becomes the global master, with
// a context that is cancelled the moment mastership is lost or the node
// stops, and the term of that mastership. The context answers from the
// clock, not only from the node's goroutines: its Err is non-nil as soon
// as IsMaster would answer false for that term (a lease run out, or a
// pause after which the peers may have elected another master), even if
// no goroutine of the node has run since; Deadline returns when the
// mastership ends unless it is renewed, and a timer closes Done then. So
// fn must check ctx.Err() before each write it makes as master, return
// soon after the cancel (within M = max(Interval, WaitTimeout/4)), and
// fence its writes with the term. It waits for fn to return before
// campaigning again, so fn never runs twice at once; if fn returns while
// the node is still master, it is not run again until the next
// mastership. RunAsMaster blocks (call it on a goroutine of its own)
// until ctx is done, returning ctx.Err(), or the node stops, returning
// ErrStopped; either after fn has returned. On a graceful
// Stop, no peer takes over until fn has returned (or WaitTimeout passed).
func (m *Msc) RunAsMaster(ctx context.Context, fn func(ctx context.Context, term uint64)) error {
	return m.runAs(ctx, "", fn)
}

// RunAsMasterByKey is RunAsMaster for the mastership of key; for key ""
// it is RunAsMaster. It blocks as RunAsMaster does, and returns as it
// does: ctx.Err() when ctx is done, ErrStopped when the node stops.
func (m *Msc) RunAsMasterByKey(ctx context.Context, key string, fn func(ctx context.Context, term uint64)) error {
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
		fctx := m.masterContext(ctx, key, term)
		done := make(chan struct{})
		m.runMu.Lock()
		if m.runs == nil {
			m.runs = make(map[chan struct{}]string)
		}
		m.runs[done] = key
		m.runMu.Unlock()
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
		fctx.end()
		<-done
		m.runMu.Lock()
		delete(m.runs, done)
		m.runMu.Unlock()
		if ctx.Err() != nil || !m.running() {
			return ended()
		}
	}
}

// waitRuns waits, at most d, for the RunAsMaster functions that are
// running to return: all of them, or those of the keys given. It reports
// whether they all returned.
func (m *Msc) waitRuns(d time.Duration, keys ...string) bool {
	m.runMu.Lock()
	var runs []chan struct{}
	for done, key := range m.runs {
		if len(keys) == 0 || slices.Contains(keys, key) {
			runs = append(runs, done)
		}
	}
	m.runMu.Unlock()
	if len(runs) == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for _, done := range runs {
		select {
		case <-done:
		case <-t.C:
			return false
		}
	}
	return true
}

func (m *Msc) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateRunning
}

// stopped reports whether Stop has been called.
func (m *Msc) stopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateStopped
}

// masterCtx is the context of one RunAsMaster run. Its parent is
// cancelled by runAs when the mastership ends as the elector sees it, and
// by a timer at the end of the mastership's validity; Err also answers
// from the clock, so that a function resumed after a pause stops before
// any other goroutine of the node has run.
type masterCtx struct {
	context.Context
	cancel context.CancelFunc
	m      *Msc
	key    string
	term   uint64
	timer  *time.Timer
}

// masterContext returns the context for a run of the mastership of key in
// term.
func (m *Msc) masterContext(parent context.Context, key string, term uint64) *masterCtx {
	c := &masterCtx{m: m, key: key, term: term}
	c.Context, c.cancel = context.WithCancel(parent)
	c.timer = time.AfterFunc(time.Hour, c.check) // armed once c.timer is set: check reads it
	c.timer.Reset(c.until())
	return c
}

// Err returns the parent's error, or context.Canceled once the mastership
// no longer holds by the clock.
func (c *masterCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !c.m.holds(c.key, c.term) {
		c.cancel()
		return c.Context.Err()
	}
	return nil
}

// Deadline returns when the mastership ends unless it is renewed (the
// lease with Quorum, else WaitTimeout-M/2 after the last heartbeat), or
// the parent's deadline if earlier. It moves on as the mastership is
// renewed.
func (c *masterCtx) Deadline() (time.Time, bool) {
	end, ok := c.m.validUntil(c.key)
	if d, has := c.Context.Deadline(); has && (!ok || d.Before(end)) {
		return d, true
	}
	return end, ok
}

// until is how long from now to the end of the mastership's validity.
func (c *masterCtx) until() time.Duration {
	end, ok := c.m.validUntil(c.key)
	if !ok {
		return 0
	}
	return time.Until(end)
}

// check is the timer: it cancels the context once the mastership no
// longer holds, or arms itself again for the renewed end.
func (c *masterCtx) check() {
	if c.Err() == nil {
		c.timer.Reset(max(c.until(), time.Millisecond))
	}
}

// end cancels the context and stops its timer (runAs, once fn is to
// stop).
func (c *masterCtx) end() {
	c.cancel()
	c.timer.Stop()
}
