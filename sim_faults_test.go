package msc

import (
	"math"
	"slices"
	"time"
)

// schedule plans the faults of this seed, until simFaultsEnd.
func (s *sim) schedule() {
	r := s.rng
	at := int64(time.Second) + r.Int64N(int64(time.Second))
	for at < int64(simFaultsEnd) {
		t := at
		kind := r.IntN(15)
		d := int64(r.IntN(1500)+50) * int64(time.Millisecond)
		if (kind == 4 || kind == 12) && r.IntN(4) == 0 {
			d = r.Int64N(50 * int64(time.Duration(s.cfg.Wait))) // long pauses, up to 50*WaitTimeout
		}
		i, j := r.IntN(s.n), r.IntN(s.n)
		s.push(&simEvent{at: t, kind: seFn, fn: func() { s.fault(kind, i, j, d) }})
		at += int64(r.IntN(800)+100) * int64(time.Millisecond)
	}
	s.push(&simEvent{at: int64(simFaultsEnd), kind: seFn, fn: s.healAll})
	// Restarts planned by the faults happen by simFaultsEnd+1.5s.
}

// fault injects one fault.
func (s *sim) fault(kind, i, j int, d int64) {
	if s.quiet {
		return
	}
	if s.voter != nil {
		kind, i, j = s.membersFault(kind, i, j)
	}
	if kind != 8 && kind != 10 && kind != 9 {
		s.lastFault = s.now
	}
	// Agreement is checked once this fault's effects are over (plus the
	// bound), unless another fault comes first.
	end := s.now
	switch kind {
	case 0, 1, 2, 3, 4, 7, 11, 12, 13, 14:
		end = s.now + d
	case 5, 6:
		// The restart, then a new process waits WaitTimeout to hear from
		// its servers, and with Quorum votes only WaitTimeout+M after
		// it started.
		end = s.now + max(d, int64(time.Duration(s.cfg.Wait))) + int64(time.Duration(s.cfg.Wait))
		if s.cfg.Quorum > 1 {
			end += int64(leaseMargin(time.Duration(s.cfg.Interval), time.Duration(s.cfg.Wait)))
		}
	case 8:
		end = s.now + int64(time.Duration(s.cfg.Wait)) // a key removed after up to WaitTimeout
	}
	s.settle(end)
	if kind <= 3 || kind == 7 || kind == 11 || kind == 13 || kind == 14 {
		// Without Quorum, a cut network lets each side elect, and so may
		// a starved process (some of its goroutines run late, some
		// not). The check is off until the agreement bound after; Quorum
		// is the remedy (docs/election.md, "The invariants").
		s.netUntil = max(s.netUntil, s.now+d+s.agreeBound())
	}
	n := s.nodes[i]
	if kind == 4 || kind == 5 || kind == 6 || kind == 7 || kind >= 12 {
		n.faultAt = s.now
	}
	switch kind {
	case 0, 1: // partition i from the others: hold, reset or half-open, maybe one way
		mode := 1 + s.rng.IntN(3)
		oneWay := s.rng.IntN(3)
		s.out("FAULT partition n%d mode %d oneway %d for %v", i, mode, oneWay, time.Duration(d))
		for k := range s.n {
			if k != i {
				if oneWay != 1 {
					s.setCut(i, k, mode)
				}
				if oneWay != 2 {
					s.setCut(k, i, mode)
				}
			}
		}
		s.push(&simEvent{at: s.now + d, kind: seFn, fn: func() {
			for k := range s.n {
				s.setCut(i, k, 0)
				s.setCut(k, i, 0)
			}
		}})
	case 2: // cut one link (a partial partition), maybe one way
		if i == j {
			return
		}
		if s.voter != nil && s.rng.IntN(2) == 0 {
			s.cutVoter(i, j, d)
			return
		}
		mode := 1 + s.rng.IntN(3)
		s.out("FAULT cut n%d→n%d mode %d for %v", i, j, mode, time.Duration(d))
		s.setCut(i, j, mode)
		if s.rng.IntN(2) == 0 {
			s.setCut(j, i, mode)
		}
		s.push(&simEvent{at: s.now + d, kind: seFn, fn: func() { s.setCut(i, j, 0); s.setCut(j, i, 0) }})
	case 3: // flapping link
		if i == j {
			return
		}
		s.out("FAULT flap n%d–n%d", i, j)
		for k := int64(0); k < 6; k++ {
			on := k%2 == 0
			s.push(&simEvent{at: s.now + k*d/6, kind: seFn, fn: func() {
				m := 0
				if on {
					m = 1
				}
				s.setCut(i, j, m)
				s.setCut(j, i, m)
			}})
		}
	case 4, 12: // pause (SIGSTOP, a starved process); 12: a suspend or a snapshot restore
		if !n.alive || s.now <= n.pausedTo {
			return
		}
		n.monoFrac = 1
		if kind == 12 {
			// The monotonic clock stands still (Linux suspend), or (a
			// VM restored from a snapshot) jumps by part of the time;
			// the wall clock follows the time.
			n.monoFrac = 0
			if s.rng.IntN(2) == 0 {
				n.monoFrac = s.rng.Float64()
			}
			s.out("FAULT suspend n%d for %v, its monotonic clock runs %.2f of it", i, time.Duration(d), n.monoFrac)
		} else {
			s.out("FAULT pause n%d for %v", i, time.Duration(d))
		}
		n.pausedTo, n.pauseLen = s.now+d, d
		n.pausedAt = s.now
		clear(n.deposed)
		inc, end := n.inc, n.pausedTo
		s.push(&simEvent{at: s.now + d, kind: seFn, fn: func() {
			if n.pausedTo == end { // not paused again since
				s.resume(n, inc, d)
			}
		}})
	case 5: // crash, restart later
		if !n.alive {
			return
		}
		// Now and then the peers' kernels never learn of it (the
		// machine died, or its RST was lost): their ends stay open and
		// silent until their read deadline, and what they write into
		// them is swallowed.
		halfOpen := s.rng.IntN(3) == 0
		s.out("FAULT crash n%d (half-open %v), restart after %v", i, halfOpen, time.Duration(d))
		s.crash(n, halfOpen)
		inc := n.inc
		s.push(&simEvent{at: s.now + d, kind: seFn, fn: func() { s.restart(n, inc) }})
	case 6: // graceful stop, restart later
		if !n.alive || n.stopping || s.now < n.pausedTo {
			return
		}
		s.out("FAULT stop n%d, restart after %v", i, time.Duration(d))
		s.stop(n)
		inc := n.inc
		s.push(&simEvent{at: s.now + max(d, int64(time.Duration(s.cfg.Wait))), kind: seFn, fn: func() { s.restart(n, inc) }})
	case 7: // slow process
		s.out("FAULT slow n%d for %v", i, time.Duration(d))
		n.slow = int64(s.rng.IntN(int(time.Duration(s.cfg.Interval) / 4)))
		n.lagTo = max(n.lagTo, s.now+d)
		s.push(&simEvent{at: s.now + d, kind: seFn, fn: func() { n.slow = 0 }})
	case 8: // keys added and removed
		if !n.alive || s.now < n.pausedTo {
			return
		}
		k := s.keysPool[s.rng.IntN(len(s.keysPool))]
		if slices.Contains(n.keys, k) {
			s.out("FAULT n%d removes key %q", i, k)
			n.keys = slices.DeleteFunc(slices.Clone(n.keys), func(x string) bool { return x == k })
			n.letGo[k] = math.MaxInt64
			// As RemoveKey does: give it up, wait for its work, remove it.
			s.call(n, func(e *elector, lt int64) { e.core.ResignKeys(lt, []string{k}) })
			inc := n.inc
			var remove func()
			remove = func() {
				if !n.alive || n.inc != inc || slices.Contains(n.keys, k) {
					return
				}
				if s.now < n.pausedTo { // RemoveKey goes on after the pause
					s.push(&simEvent{at: s.afterPause(n), kind: seFn, fn: remove})
					return
				}
				s.call(n, func(e *elector, lt int64) { e.core.SetKeys(lt, nil, []string{k}); n.letGo[k] = s.now })
			}
			s.push(&simEvent{at: s.now + int64(s.rng.IntN(int(time.Duration(s.cfg.Wait)))), kind: seFn, fn: remove})
		} else {
			s.out("FAULT n%d adds key %q", i, k)
			n.keys = append(slices.Clone(n.keys), k)
			delete(n.letGo, k)
			s.call(n, func(e *elector, lt int64) { e.core.SetKeys(lt, []string{k}, nil) })
		}
	case 10: // SetPriority
		if !n.alive || s.now < n.pausedTo {
			return
		}
		p := int64(s.rng.IntN(4))
		s.out("FAULT n%d sets priority %d", i, p)
		n.prioWas, n.prio = n.prio, p
		s.call(n, func(e *elector, lt int64) { e.core.SetPriority(lt, p) })
	case 11: // a group partition: a random side against the rest, hold, reset or half-open
		mode := 1 + s.rng.IntN(3)
		var side []int
		for k := range s.n {
			if s.rng.IntN(2) == 0 {
				side = append(side, k)
			}
		}
		s.out("FAULT group partition %v mode %d for %v", side, mode, time.Duration(d))
		cut := func(m int) {
			for a := range s.n {
				for b := range s.n {
					if slices.Contains(side, a) != slices.Contains(side, b) {
						s.setCut(a, b, m)
					}
				}
			}
		}
		cut(mode)
		s.push(&simEvent{at: s.now + d, kind: seFn, fn: func() { cut(0) }})
	case 13: // a starved elector: its turns and timers run late, its readers do not
		if !n.alive {
			return
		}
		n.starveTo = s.now + d
		n.starveMax = int64(1+s.rng.IntN(4)) * int64(time.Duration(s.cfg.Interval))
		if s.rng.IntN(4) == 0 {
			n.starveMax = int64(time.Duration(s.cfg.Wait)) * 3 / 2 // beyond WaitTimeout
		}
		s.out("FAULT starved elector n%d for %v, turns late by up to %v", i, time.Duration(d), time.Duration(n.starveMax))
		s.lagEnds(n, d+n.starveMax) // a turn delayed at the end of the spell
	case 14: // starved readers: frames are read late, the timers run on time
		if !n.alive {
			return
		}
		n.readTo = s.now + d
		n.readMax = 1 + s.rng.Int64N(2*int64(time.Duration(s.cfg.Interval)))
		s.out("FAULT starved readers n%d for %v, late by up to %v", i, time.Duration(d), time.Duration(n.readMax))
		s.lagEnds(n, d+n.readMax)
	case 9: // latency change on a link
		s.lat[i*s.n+j] = s.randLatency(50)
	}
}

// membersFault adapts a fault to voters and members: two members keep
// no connection, so a cut or a flapping link between two is one between
// a member and a voter; a key change on a voter, in a seed where the
// voters hold no keys, is one on a member.
func (s *sim) membersFault(kind, i, j int) (int, int, int) {
	voters := s.votersList()
	var members []int
	for x := range s.n {
		if s.member(x) {
			members = append(members, x)
		}
	}
	switch {
	case (kind == 2 || kind == 3) && s.member(i) && s.member(j):
		j = voters[s.rng.IntN(len(voters))]
	case kind == 8 && s.voter[i] && !s.voterKeys:
		i = members[s.rng.IntN(len(members))]
	}
	return kind, i, j
}

// votersList returns the voters' nodes.
func (s *sim) votersList() []int {
	var v []int
	for x := range s.n {
		if s.voter[x] {
			v = append(v, x)
		}
	}
	return v
}

// cutVoter cuts a voter (i, or j, or any) from some of the members, hold,
// reset or half-open, maybe one way, for d.
func (s *sim) cutVoter(i, j int, d int64) {
	v := i
	if !s.voter[v] {
		v = j
	}
	if !s.voter[v] {
		voters := s.votersList()
		v = voters[s.rng.IntN(len(voters))]
	}
	mode := 1 + s.rng.IntN(3)
	oneWay := s.rng.IntN(3)
	var side []int
	for x := range s.n {
		if s.member(x) && s.rng.IntN(2) == 0 {
			side = append(side, x)
		}
	}
	s.out("FAULT cut voter n%d from members %v mode %d oneway %d for %v", v, side, mode, oneWay, time.Duration(d))
	cut := func(m int) {
		for _, x := range side {
			if oneWay != 1 || m == 0 {
				s.setCut(v, x, m)
			}
			if oneWay != 2 || m == 0 {
				s.setCut(x, v, m)
			}
		}
	}
	cut(mode)
	s.push(&simEvent{at: s.now + d, kind: seFn, fn: func() { cut(0) }})
}

// lagEnds notes that the effects of n's starved spell last for d from
// now (the last event it delays runs then): agreement after, and without
// Quorum no two-master check until the bound after.
func (s *sim) lagEnds(n *simNode, d int64) {
	n.lagTo = max(n.lagTo, s.now+d)
	s.settle(s.now + d)
	s.netUntil = max(s.netUntil, s.now+d+s.agreeBound())
}

// setCut sets the link from i to j: 0 up (held frames go out in order), 1
// hold, 2 reset (every connection between them ends), 3 half-open (one end
// of each ends, the other never learns; what crosses is lost).
func (s *sim) setCut(i, j, mode int) {
	if i == j {
		return
	}
	was := s.cut[i*s.n+j]
	s.cut[i*s.n+j] = mode
	if mode != was {
		s.linkAt[i*s.n+j] = s.now
	}
	if mode == 3 {
		// Half-open: one end of each connection is reset (its kernel got
		// an RST, or a middlebox dropped its state); the other end never
		// learns of it and stays open, silent, until its read deadline.
		for _, n := range []*simNode{s.nodes[i], s.nodes[j]} {
			for _, c := range sortedConns(n) {
				if c.node[0] == i && c.node[1] == j || c.node[0] == j && c.node[1] == i {
					if c.up[0] && c.up[1] {
						end := s.rng.IntN(2)
						c.held[1-end] = nil
						s.quietClose = true
						s.closeConn(c, end, true)
						s.quietClose = false
					}
				}
			}
		}
	}
	if mode == 2 {
		for _, n := range []*simNode{s.nodes[i], s.nodes[j]} {
			for _, c := range sortedConns(n) {
				if c.node[0] == i && c.node[1] == j || c.node[0] == j && c.node[1] == i {
					for end := range 2 {
						c.held[end] = nil
						s.closeConn(c, end, true)
					}
				}
			}
		}
	}
	if mode == 0 && (was == 1 || was == 3) {
		// Deliver what was held, in order, on every connection from i to j.
		for _, n := range []*simNode{s.nodes[j]} {
			for _, c := range sortedConns(n) {
				for end := range 2 {
					if c.node[end] == j && c.node[1-end] == i {
						held := c.held[end]
						c.held[end] = nil
						for _, e := range held {
							s.route(c, i, j, end, e)
						}
					}
				}
			}
		}
	}
}

func (s *sim) resume(n *simNode, inc int, d int64) {
	if !n.alive || n.inc != inc {
		return
	}
	n.pausedTo = 0
	n.resumedAt = s.now
	n.pauses = append(n.pauses, [2]int64{n.pausedAt, s.now})
	clear(n.reheard)
	frozen := n.monoFrac < 1
	var tickIn int64 // frozen: the Interval timer's time left, local
	if frozen {
		// The monotonic clock ran only monoFrac of the pause; the wall
		// clock all of it. The timers, on the monotonic clock, fire that
		// much later.
		tickIn = n.tickDue - s.local(n, n.pausedAt) - int64(float64(d)*n.monoFrac*n.rate)
		// Not quite all: a process runs for a moment after its last send
		// before the suspend, and before its elector's turn after it; a
		// frame sent at the very instant of the suspend would otherwise
		// carry the same monotonic time as the turn that notices it
		// (seed 21084777: a peer's answer to it counted as an answer to
		// the re-join's frame).
		lost := max(0, int64(float64(d)*(1-n.monoFrac)*n.rate)-int64(time.Microsecond))
		n.off -= lost // (the wall clock went on: wallOf)
		n.monoFrac = 1
		n.armed = 0
	}
	if frozen || n.unturned != 0 {
		// Its elector has not run since a suspend: the bound counts
		// from this resume.
		n.unturned = s.now
	}
	s.out("n%d resumes", n.i)
	pending := n.pending
	n.pending = nil
	// The goroutines of a resumed process run in any order: the timers
	// first (the elector notices the pause), or the readers first (their
	// events wait for the elector's turn, which notices the pause before
	// it takes them). The events its readers posted before the pause
	// keep their times, as in the process: they are stale (seed
	// 21084777: a failed dial posted before a suspend, stamped with the
	// resume's time, counted as the server failing since, and the node
	// claimed beside the new master).
	n.tickGen++
	tick := &simEvent{at: s.now, kind: seTick, node: n.i, inc: n.inc, wake: n.tickGen}
	if frozen {
		if tickIn > 0 {
			tick.at += int64(float64(tickIn)/n.rate) + 1
		}
		n.tickDue = s.local(n, tick.at)
	}
	readsFirst := s.rng.IntN(2) == 0
	if !readsFirst {
		s.push(tick)
	}
	for _, e := range pending {
		if e.kind != seTick && e.kind != seRun {
			e.at = s.now
			s.push(e)
		}
	}
	if len(n.inbox) > 0 && !n.running {
		n.running = true
		s.push(&simEvent{at: s.now, kind: seRun, node: n.i, inc: n.inc})
	}
	if readsFirst {
		s.push(tick)
	}
	s.arm(n)
}

// restart starts incarnation inc of n again, unless that happened
// already.
func (s *sim) restart(n *simNode, inc int) {
	if n.inc != inc {
		return
	}
	if n.alive {
		s.crash(n, false)
	}
	s.boot(n)
}

// crash ends n's process; its kernel closes its connections (halfOpen:
// the peers never learn of it).
func (s *sim) crash(n *simNode, halfOpen bool) {
	for _, c := range sortedConns(n) {
		for end := range 2 {
			if c.node[end] == n.i {
				c.up[end] = false
				if halfOpen {
					continue
				}
				e := &simEvent{kind: seDown, node: c.node[1-end], inc: c.inc[1-end], conn: c, dir: 1 - end}
				e.at = s.now + s.latency(n.i, c.node[1-end])
				s.push(e)
			}
		}
	}
	n.alive = false
	n.goneAt = s.now
	n.conns = nil
	n.fn, n.masters = map[string]uint64{}, nil
	for _, r := range n.runs {
		r.returned = true // the function dies with the process
	}
	n.pending = nil
}

// stop is Msc.Stop: resign, wait (WaitTimeout at most) for the
// RunAsMaster functions to return, leave; the process ends WaitTimeout
// after.
func (s *sim) stop(n *simNode) {
	n.stopping = true
	s.call(n, func(e *elector, lt int64) { e.core.SetResign(lt) })
	inc, until := n.inc, s.now+int64(time.Duration(s.cfg.Wait))
	var leave func()
	leave = func() {
		if n.inc != inc || !n.alive {
			return
		}
		if s.now < n.pausedTo || len(n.runs) > 0 && s.now < until {
			at := s.now + int64(time.Millisecond)
			if s.now < n.pausedTo {
				at = s.afterPause(n)
			}
			s.push(&simEvent{at: at, kind: seFn, fn: leave})
			return
		}
		s.call(n, func(e *elector, lt int64) { e.core.SetLeave(lt) })
		s.push(&simEvent{at: s.now + int64(time.Duration(s.cfg.Wait)), kind: seFn, fn: func() {
			if n.inc == inc && n.alive {
				s.crash(n, false)
			}
		}})
	}
	leave()
}

func (s *sim) healAll() {
	s.out("faults end: heal everything")
	for i := range s.n {
		for j := range s.n {
			s.setCut(i, j, 0)
		}
		n := s.nodes[i]
		n.slow, n.starveTo, n.readTo = 0, 0, 0
		if n.alive && s.now < n.pausedTo {
			d := s.now - (n.pausedTo - n.pauseLen)
			n.pausedTo = 0
			s.resume(n, n.inc, d)
		}
	}
	s.quiet = true
	s.settle(s.now)
}
