//go:build unix

package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// spread is, in balance mode, how the masters of the keys are spread over
// the running workers, from their latest reports.
type spread struct {
	keys     int           // how many keys there are
	counts   []workerCount // the running workers', by index
	total    int           // keys mastered, all running workers together
	min, max int
	newest   int64  // the newest of the reports, Unix nanoseconds
	view     uint64 // the workers' ViewSum, if they agree
	// why says why the keys are not settled: some key has no master or
	// several among the running workers, or the workers do not all see
	// the same masters. "" if they are settled.
	why string
}

// workerCount is how many keys worker w masters.
type workerCount struct{ w, n int }

// spreadLocked adds up the latest reports of the running workers run,
// which must all be newer than the instant since; c.mu is held.
func (c *cluster) spreadLocked(run []*worker, since int64) spread {
	s := spread{keys: c.cfg.keys}
	var sum uint64
	for i, w := range run {
		r := w.proc.rep
		s.counts = append(s.counts, workerCount{w.idx, r.Mastered})
		s.total += r.Mastered
		sum += r.MasteredSum
		s.newest = max(s.newest, r.TS)
		if i == 0 {
			s.min, s.max = r.Mastered, r.Mastered
		}
		s.min, s.max = min(s.min, r.Mastered), max(s.max, r.Mastered)
	}
	s.why = c.spreadWhy(run, since, s.total, sum)
	if s.why == "" {
		s.view = run[0].proc.rep.ViewSum
	}
	return s
}

// spreadWhy returns why the reports of run do not show the keys settled,
// given their total count and the sum of their MasteredSum; "" if they do.
func (c *cluster) spreadWhy(run []*worker, since int64, total int, sum uint64) string {
	if len(run) == 0 {
		return "no worker running"
	}
	for _, w := range run {
		r := w.proc.rep
		switch {
		case r.TS <= since:
			return fmt.Sprintf("no report from worker %d yet", w.idx)
		case !r.Ready:
			return fmt.Sprintf("worker %d is not ready", w.idx)
		case r.Held != c.cfg.keys:
			return fmt.Sprintf("worker %d holds %d keys, want %d", w.idx, r.Held, c.cfg.keys)
		case r.Peers != len(run)-1:
			return fmt.Sprintf("worker %d sees %d peers, want %d", w.idx, r.Peers, len(run)-1)
		}
	}
	if total != c.cfg.keys {
		return fmt.Sprintf("%d keys mastered, want %d", total, c.cfg.keys)
	}
	if sum != c.wantSum {
		return "some key has two masters, another none"
	}
	first := run[0]
	for _, w := range run[1:] {
		if w.proc.rep.ViewSum != first.proc.rep.ViewSum {
			return fmt.Sprintf("workers %d and %d see different masters", first.idx, w.idx)
		}
	}
	return ""
}

// countsText lists how many keys each running worker masters.
func (s spread) countsText() string {
	var parts []string
	for _, wc := range s.counts {
		parts = append(parts, "w"+strconv.Itoa(wc.w)+" "+strconv.Itoa(wc.n))
	}
	return strings.Join(parts, " · ")
}

// text describes the spread in one line.
func (s spread) text() string {
	head := fmt.Sprintf("%s = %d of %d keys mastered (min %d, max %d)", s.countsText(), s.total, s.keys, s.min, s.max)
	if s.why != "" {
		return head + " · settling: " + s.why
	}
	return head + ", one master each, every worker agrees"
}

// spread returns the spread now.
func (c *cluster) spread() spread {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spreadLocked(c.running(), 0)
}

// keyWatch follows, in balance mode, whether every key has exactly one
// master among the running workers, for the event log: each return to
// that state after a fault is logged with the spread once it has held
// for the hold time; keys that moved with no fault, and a state that
// stays wrong beyond the cluster's bound, are logged as warnings. A blip
// with no fault that ends with the same spread is not logged.
type keyWatch struct {
	fault    int64  // the latest fault since the last settled state was logged; 0 if none
	okSince  int64  // the current settled stretch began then; 0 if not settled
	logged   bool   // the current settled stretch was confirmed
	last     string // the counts and view of the last confirmed stretch
	badSince int64  // not settled since then; 0 if settled
	warned   bool   // this unsettled stretch was warned about
}

// keysFault tells the key watch of a fault at the instant at; c.mu is held.
func (c *cluster) keysFault(at int64) {
	c.kw.fault = at
	c.kw.okSince, c.kw.logged = 0, false
}

// watchKeys updates the key watch at the instant now; c.mu is held.
func (c *cluster) watchKeys(now int64) {
	kw := &c.kw
	run := c.running()
	s := c.spreadLocked(run, kw.fault)
	if s.why != "" {
		kw.okSince, kw.logged = 0, false
		if kw.badSince == 0 {
			kw.badSince, kw.warned = now, false
		}
		if bound := c.cfg.bound(); !kw.warned && len(run) > 0 && time.Duration(now-kw.badSince) > bound {
			kw.warned = true
			c.logf(true, "⚠ keys not settled for %v: %s", bound, s.text())
		}
		return
	}
	kw.badSince = 0
	if kw.logged {
		return
	}
	if kw.okSince == 0 {
		kw.okSince = max(s.newest, kw.fault)
	}
	if time.Duration(now-kw.okSince) < c.cfg.wait {
		return // not held yet: it may be a blip in the middle of a move
	}
	kw.logged = true
	counts := fmt.Sprintf("%s %x", s.countsText(), s.view)
	switch {
	case kw.fault > 0:
		c.logAt(time.Unix(0, kw.okSince), false, "keys ✓ after %s: %s", ms(time.Duration(kw.okSince-kw.fault)), s.text())
	case counts != kw.last:
		c.logAt(time.Unix(0, kw.okSince), true, "⚠ keys moved with no fault: %s", s.text())
	}
	kw.fault, kw.last = 0, counts
}
