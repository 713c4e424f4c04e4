//go:build unix

package main

import (
	"slices"
	"time"
)

// The timeline holds, in time order, everything that decides how many
// masters the cluster has: a worker incarnation joining or leaving the set
// of running workers (stamped by check when it sends the signal or starts
// the process) and each global mastership change (stamped by the worker
// itself). All processes share one machine clock.

type tlKind uint8

const (
	tlJoin   tlKind = iota // the incarnation counts from now on
	tlLeave                // it no longer counts (killed, paused, stopping)
	tlChange               // it reported a global mastership change
	tlMark                 // a fault that changes no membership
)

// inc names one incarnation of a worker: its index and start number.
type inc struct{ w, gen int }

type tlEvent struct {
	ts     int64 // Unix nanoseconds
	seq    uint64
	kind   tlKind
	who    inc
	master bool // tlChange: now master
	fault  int  // tlJoin, tlLeave, tlMark: the fault (user action) that caused it, 0 if none
}

type timeline struct {
	ev   []tlEvent // sorted by ts, then seq
	seq  uint64
	live *liveAnalyzer // if set, told about events inserted behind it
}

// add inserts e in time order. An event older than what the live analyzer
// has processed is applied to it at once.
func (t *timeline) add(e tlEvent) {
	t.seq++
	e.seq = t.seq
	i := len(t.ev)
	for i > 0 && t.ev[i-1].ts > e.ts {
		i--
	}
	t.ev = slices.Insert(t.ev, i, e)
	if t.live != nil && i < t.live.cursor {
		t.live.cursor++
		t.live.late(e)
	}
}

// tlState is the membership and mastership of every incarnation.
type tlState struct {
	member map[inc]bool
	master map[inc]bool
}

func newState() *tlState {
	return &tlState{member: make(map[inc]bool), master: make(map[inc]bool)}
}

func (s *tlState) apply(e tlEvent) {
	switch e.kind {
	case tlJoin:
		// Master from its next report on: what a process resumed by
		// SIGCONT answered before its first report after the continue
		// is not seen here (resume_proc_test.go polls it), and its last
		// report, from before the pause, no longer says what it answers.
		s.member[e.who] = true
		s.master[e.who] = false
	case tlLeave:
		delete(s.member, e.who)
	case tlChange:
		s.master[e.who] = e.master
	}
}

// masters returns how many members are master and, if any, the first.
func (s *tlState) masters() (n int, who inc) {
	for m := range s.member {
		if s.master[m] {
			if n == 0 || m.w < who.w {
				who = m
			}
			n++
		}
	}
	return n, who
}

// mastersList returns the members that are master.
func (s *tlState) mastersList() []inc {
	var out []inc
	for m := range s.member {
		if s.master[m] {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b inc) int { return a.w - b.w })
	return out
}

// window is what happened between two instants.
type window struct {
	// Last is when the final stretch of exactly one master began, if the
	// window ends with one master (at the start of the window if it held
	// all along); -1 if the window ends without exactly one master.
	Last       int64
	LastMaster inc
	// None and Multi are the time with no master and with two or more.
	None, Multi time.Duration
	// Changes counts the global mastership changes the workers reported.
	Changes int
}

// window replays the timeline and describes [from, to].
func (t *timeline) window(from, to int64) window {
	st := newState()
	i := 0
	for ; i < len(t.ev) && t.ev[i].ts <= from; i++ {
		st.apply(t.ev[i])
	}
	w := window{Last: -1}
	n, who := st.masters()
	if n == 1 {
		w.Last, w.LastMaster = from, who
	}
	last := from
	for i < len(t.ev) && t.ev[i].ts <= to {
		ts := t.ev[i].ts
		w.account(n, ts-last)
		last = ts
		for ; i < len(t.ev) && t.ev[i].ts == ts; i++ {
			st.apply(t.ev[i])
			if t.ev[i].kind == tlChange {
				w.Changes++
			}
		}
		n2, who2 := st.masters()
		switch {
		case n2 != 1:
			w.Last = -1
		case n != 1 || who2 != who:
			w.Last, w.LastMaster = ts, who2
		}
		n, who = n2, who2
	}
	w.account(n, to-last)
	return w
}

func (w *window) account(n int, d int64) {
	switch {
	case d <= 0:
	case n == 0:
		w.None += time.Duration(d)
	case n >= 2:
		w.Multi += time.Duration(d)
	}
}

// liveAnalyzer follows the timeline as it grows, up to a watermark before
// which every event has arrived, and reports what a person watching wants
// to know: each fault's failover, episodes with no master or several, and
// changes of master nobody caused. A master counts once it has been the
// only one for the hold time, so that a blip is not taken for the end of
// a failover; the failover ends when that stretch began.
type liveAnalyzer struct {
	tl     *timeline
	hold   int64
	cursor int
	st     *tlState
	at     int64 // processed up to this instant
	n      int   // masters now
	who    inc   // the master now, if n == 1
	since  int64 // n == 1 with this master since then
	done   bool  // this stretch was confirmed
	last   inc   // the last confirmed master
	known  bool  // last is set

	pending []*pendingFault
	// Since the last confirmed master: time with none or several.
	epNone, epMulti time.Duration
	epMasters       []inc
	epStart         int64
}

type pendingFault struct {
	id          int
	at          int64
	none, multi time.Duration
}

// finding is one thing the live analyzer found.
type finding struct {
	kind  findingKind
	ts    int64
	fault int           // fFault: the fault's id
	took  time.Duration // fFault: fault to one master; fEpisode: length
	none  time.Duration
	multi time.Duration
	// master is the sole master now (fFault, fChange); from is the one
	// before, if known.
	master, from inc
	known        bool // from is set
	masters      []inc
}

type findingKind uint8

const (
	fFault   findingKind = iota // a fault resolved: exactly one master again
	fEpisode                    // no master or several, not during a fault
	fChange                     // the master changed with no fault
)

func newLiveAnalyzer(tl *timeline, start int64, hold time.Duration) *liveAnalyzer {
	la := &liveAnalyzer{tl: tl, st: newState(), at: start, epStart: start, hold: int64(hold), since: -1}
	tl.live = la
	return la
}

// advance processes every event up to the watermark wm.
func (la *liveAnalyzer) advance(wm int64) []finding {
	var out []finding
	ev := la.tl.ev
	for la.cursor < len(ev) && ev[la.cursor].ts <= wm {
		ts := ev[la.cursor].ts
		out = la.account(ts, out)
		for ; la.cursor < len(ev) && ev[la.cursor].ts == ts; la.cursor++ {
			la.apply(ev[la.cursor])
		}
		la.evaluate(ts)
	}
	return la.account(wm, out)
}

// late applies an event that arrived after the watermark passed it.
func (la *liveAnalyzer) late(e tlEvent) {
	la.apply(e)
	la.evaluate(la.at)
}

func (la *liveAnalyzer) apply(e tlEvent) {
	la.st.apply(e)
	if e.fault > 0 && e.kind != tlChange {
		la.pending = append(la.pending, &pendingFault{id: e.fault, at: e.ts})
		la.done = false
		if la.n == 1 && e.kind == tlJoin {
			// A worker that joins (started, or resumed by SIGCONT) may
			// take over in the next milliseconds, as part of this fault:
			// the master must hold from the join on. Another fault that
			// leaves the master in place resolves at once.
			la.since = e.ts
		}
	}
}

// account moves time on to t, confirming the master once it has held.
func (la *liveAnalyzer) account(t int64, out []finding) []finding {
	if la.n == 1 && !la.done && t-la.since >= la.hold {
		out = la.confirm(out)
	}
	if t <= la.at {
		return out
	}
	d := time.Duration(t - la.at)
	la.at = t
	switch {
	case la.n == 0:
		la.epNone += d
		for _, p := range la.pending {
			p.none += d
		}
	case la.n >= 2:
		la.epMulti += d
		for _, p := range la.pending {
			p.multi += d
		}
	}
	return out
}

func (la *liveAnalyzer) evaluate(ts int64) {
	n, who := la.st.masters()
	if n >= 2 {
		for _, m := range la.st.mastersList() {
			if !slices.Contains(la.epMasters, m) {
				la.epMasters = append(la.epMasters, m)
			}
		}
	}
	if n == 1 && (la.n != 1 || who != la.who) {
		la.since, la.done = ts, false
	}
	if n != 1 {
		if la.done {
			la.epStart = ts
		}
		la.since, la.done = -1, false
	}
	la.n, la.who = n, who
}

// confirm reports what led to the master that has now held.
func (la *liveAnalyzer) confirm(out []finding) []finding {
	la.done = true
	for _, p := range la.pending {
		out = append(out, finding{kind: fFault, ts: max(la.since, p.at), fault: p.id, took: time.Duration(max(la.since-p.at, 0)),
			none: p.none, multi: p.multi, master: la.who, from: la.last, known: la.known})
	}
	if len(la.pending) == 0 {
		if la.epNone > 0 || la.epMulti > 0 {
			out = append(out, finding{kind: fEpisode, ts: la.since, took: time.Duration(la.since - la.epStart),
				none: la.epNone, multi: la.epMulti, masters: la.epMasters})
		}
		if la.known && la.who != la.last {
			out = append(out, finding{kind: fChange, ts: la.since, master: la.who, from: la.last, known: true})
		}
	}
	la.pending = la.pending[:0]
	la.last, la.known = la.who, true
	la.epNone, la.epMulti, la.epMasters = 0, 0, nil
	return out
}
