package msc

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// The checks, one per row of the invariants table of docs/election.md
// ("The invariants, and what they cost"). A check that is off during some
// faults says so in its name; its row says why.
//
//	docs/election.md row                         check
//	-------------------------------------------  ----------------------------------------------
//	never two nodes with IsMaster true at one    checkOneMasterQuorumExceptUnturnedSuspend
//	  instant; RunAsMaster functions never run    checkOneMasterNoQuorumOffWhileCutOrStarved
//	  at once                                     checkWritesNeverOverlapQuorumExceptUnturnedSuspend
//	                                              checkWritesNeverOverlapNoQuorumOffWhileCutOrStarved
//	                                              checkRunStartsAloneQuorum
//	every mastership's term strictly above        checkTermsUniqueQuorum (fencing)
//	  every earlier one's                         checkTermAboveHeardNoQuorum
//	                                              checkFencingAfterFaults (in checkAgreementWithin)
//	a process whose last heartbeat went out       checkStaleMasterFalseExceptUnturnedSuspend
//	  more than WaitTimeout-M/2 ago answers       checkSuspendNoticedWithinInterval
//	  false until it has heard from its peers     checkResumedDefersToNewMaster
//	once faults stop, agreement within the bound  checkAgreementWithin
//	the core's term per slot is its maps' one     checkKnownTermsCached
//	Sticky: mastership moves only when the        checkStickyQuorum
//	  master dies, leaves or loses quorum
//
// With voters and members (Options.Voters; sim.members), the same checks
// hold, with a key's rightful master named among every live holder,
// members included, and two more, of the design (internal/core,
// members.go):
//
//	the global master is a voter                 checkGlobalMasterIsVoter
//	a member that hears from no voter is master  checkMemberWithoutVoterMasterOfNothing
//	  of nothing
//
// A node resumed from a suspend (its monotonic clock stood still) or a
// snapshot restore answers from before until its elector's first turn,
// within an Interval (docs/election.md, Pauses): the
// checks marked ExceptUnturnedSuspend skip it until then, and
// checkSuspendNoticedWithinInterval bounds that time.

// simRun is one run of a RunAsMaster function: it starts when a snapshot
// shows the mastership (and the node's previous run has returned), checks
// ctx.Err() before each write (masterCtx.Err: cancelled by the elector's
// snapshot, or by the clock when the mastership no longer holds), and
// returns up to M after it learned of the cancel.
type simRun struct {
	n           *simNode
	inc         int
	k           string
	term        uint64
	cancelled   bool  // runAs cancelled its context (a snapshot without it)
	first, last int64 // its first and last write (virtual); 0: none yet
	// checked: its first write came while the overlap check was on
	// (without Quorum, a first write while the network was cut may
	// overlap an older master's).
	checked  bool
	returned bool
}

// simRunKeys bounds the keys whose RunAsMaster functions are simulated
// (the global mastership and the first keys of the pool).
const simRunKeys = 4

// observe follows n's masterships as RunAsMaster would: one starts when a
// snapshot shows it, ends when one no longer does.
func (s *sim) observe(n *simNode, snap *core.Snapshot) {
	state := func(k string) core.KeyState {
		if !snap.Running {
			return core.KeyState{}
		}
		return snap.State(k)
	}
	for _, k := range slices.Sorted(maps.Keys(n.fn)) { // in order: the trace replays
		term := n.fn[k]
		if st := state(k); !st.Master || st.Term != term {
			s.out("n%d ends mastership of %q term %d", n.i, k, term)
			n.ended = append(n.ended, k)
			s.changedAt = s.now
			delete(n.fn, k)
			if r := n.runs[k]; r != nil && r.term == term {
				r.cancelled = true
			}
		}
	}
	// The keys it is master of, by this snapshot: what check looks at.
	n.masters = n.masters[:0]
	if snap.Running && snap.Master {
		n.masters = append(n.masters, "")
	}
	for i := range snap.Len() {
		if snap.Running && snap.At(i).Master {
			n.masters = append(n.masters, snap.KI.List[i])
		}
	}
	for _, k := range n.masters {
		st := state(k)
		if _, ok := n.fn[k]; ok {
			continue
		}
		n.fn[k] = st.Term
		s.changedAt = s.now
		s.out("n%d starts mastership of %q term %d", n.i, k, st.Term)
		s.startRun(n, k)
		for _, m := range s.nodes {
			if m != n && m.alive && s.now < m.pausedTo {
				m.deposed[k] = n.i // checkResumedDefersToNewMaster
			}
		}
		if n.cfg.Observer {
			s.fail("observer n%d is master of %q", n.i, k)
		}
		if k == "" {
			s.checkGlobalMasterIsVoter(n)
		}
		// Above every term it heard of from another claim or vote, and
		// not below any term a peer knows of (that may be its own). With
		// Quorum the fencing check below is the promise; and the core
		// read here has taken in the whole batch, after the decision
		// (seed 4093: a known term heard later in the batch).
		if s.cfg.Quorum <= 1 {
			s.checkTermAboveHeardNoQuorum(n, k, st.Term)
		} else {
			s.checkTermsUniqueQuorum(n, k, st.Term)
			s.checkRunStartsAloneQuorum(n, k, st.Term)
		}
		s.terms[k] = max(s.terms[k], st.Term)
	}
}

// checkGlobalMasterIsVoter (Options.Voters): a member never is the
// global master.
func (s *sim) checkGlobalMasterIsVoter(n *simNode) {
	if s.member(n.i) {
		s.fail("member n%d is the global master", n.i)
	}
}

// checkTermAboveHeardNoQuorum (invariants row 2, without Quorum): a new
// master's term is above every term it heard of from another claim or
// vote, and not below any term a peer knows of (that may be its own). The
// core read here has taken in the whole batch, after the decision (seed
// 4093: a known term heard later in the batch).
func (s *sim) checkTermAboveHeardNoQuorum(n *simNode, k string, term uint64) {
	if heard, _, _ := n.core.Terms(k); term <= heard {
		s.fail("terms: n%d is master of %q with term %d, not above %d it heard of", n.i, k, term, heard)
	}
	if _, known, _ := n.core.Terms(k); term < known {
		s.fail("terms: n%d is master of %q with term %d, below %d it knew of", n.i, k, term, known)
	}
}

// checkTermsUniqueQuorum (invariants row 2, with Quorum): every mastership's
// term is above every term used before for the key (fencing).
func (s *sim) checkTermsUniqueQuorum(n *simNode, k string, term uint64) {
	if term <= s.terms[k] {
		s.fail("fencing: n%d is master of %q with term %d, not above %d used before", n.i, k, term, s.terms[k])
	}
}

// checkRunStartsAloneQuorum (invariants row 1, with Quorum): when a
// mastership starts, no other node's mastership of the key still holds by
// its clock, as its RunAsMaster context's Err answers (a node resumed a
// moment ago whose elector has not run yet has a stale snapshot, but its
// lease is over; seed 2073254). A node resumed from a suspend before its
// elector's first turn is not looked at (docs/election.md, Pauses).
func (s *sim) checkRunStartsAloneQuorum(n *simNode, k string, term uint64) {
	for _, m := range s.nodes {
		if m != n && m.alive && s.now >= m.pausedTo && m.unturned == 0 {
			if t, ok := m.fn[k]; ok && s.isMaster(m, k) {
				s.fail("quorum: n%d starts %q (term %d) while n%d still runs it (term %d)", n.i, k, term, m.i, t)
			}
		}
	}
}

// startRun starts n's RunAsMaster function for k if the snapshot shows
// the mastership and the previous run has returned (runAs waits for it);
// otherwise the run starts when it returns.
func (s *sim) startRun(n *simNode, k string) {
	if k != "" && slices.Index(s.keysPool, k) >= simRunKeys-1 {
		return
	}
	if r := n.runs[k]; r != nil {
		n.again[k] = true
		return
	}
	term, ok := n.fn[k]
	if !ok {
		return
	}
	r := &simRun{n: n, inc: n.inc, k: k, term: term}
	n.runs[k] = r
	s.out("n%d runs %q term %d", n.i, k, term)
	s.push(&simEvent{at: s.now + s.rng.Int64N(int64(time.Millisecond)), kind: seFn, fn: func() { s.write(r) }})
}

// write is one step of run r: it checks ctx.Err() and writes, or
// returns up to M later.
func (s *sim) write(r *simRun) {
	n := r.n
	if r.returned || !n.alive || n.inc != r.inc {
		return
	}
	if s.now < n.pausedTo { // the process is stopped: so is the function
		s.push(&simEvent{at: s.afterPause(n), kind: seFn, fn: func() { s.write(r) }})
		return
	}
	if r.cancelled || !s.holds(n, r.k, r.term) {
		m := int64(leaseMargin(time.Duration(s.cfg.Interval), time.Duration(s.cfg.Wait)))
		s.push(&simEvent{at: s.now + s.rng.Int64N(m+1), kind: seFn, fn: func() {
			r.returned = true
			if n.runs[r.k] == r {
				delete(n.runs, r.k)
			}
			s.out("n%d's function of %q term %d returns", n.i, r.k, r.term)
			if n.alive && n.inc == r.inc && n.again[r.k] {
				n.again[r.k] = false
				s.startRun(n, r.k)
			}
		}})
		return
	}
	if r.first == 0 {
		r.first = s.now
		r.checked = r.n.unturned == 0 && (s.cfg.Quorum > 1 || s.now > s.netUntil)
		s.wrote[r.k] = append(s.wrote[r.k], r)
	}
	r.last = s.now
	if s.cfg.Quorum > 1 {
		s.checkWritesNeverOverlapQuorumExceptUnturnedSuspend(r)
	} else {
		s.checkWritesNeverOverlapNoQuorumOffWhileCutOrStarved(r)
	}
	iv := int64(time.Duration(s.cfg.Interval))
	s.push(&simEvent{at: s.now + iv/10 + s.rng.Int64N(iv/2), kind: seFn, fn: func() { s.write(r) }})
}

// checkWritesNeverOverlapQuorumExceptUnturnedSuspend (invariants row 1, with
// Quorum): a function writes only while no newer function of the key has
// written: a deposed master's write after a newer master's first write
// fails. A node resumed from a suspend before its elector's first turn is
// not looked at (docs/election.md, Pauses).
func (s *sim) checkWritesNeverOverlapQuorumExceptUnturnedSuspend(r *simRun) {
	if r.n.unturned != 0 {
		return
	}
	s.writesOverlap(r)
}

// checkWritesNeverOverlapNoQuorumOffWhileCutOrStarved (invariants row 1,
// without Quorum): as with Quorum, except while the network is cut or a
// process starved, and for the agreement bound after (each side may
// elect: netUntil).
func (s *sim) checkWritesNeverOverlapNoQuorumOffWhileCutOrStarved(r *simRun) {
	if r.n.unturned != 0 || s.now <= s.netUntil {
		return
	}
	s.writesOverlap(r)
}

// writesOverlap fails if another run of r's key wrote first after r did.
func (s *sim) writesOverlap(r *simRun) {
	runs := s.wrote[r.k]
	for i := len(runs) - 1; i >= 0; i-- {
		q := runs[i]
		if q == r {
			break
		}
		if q.first > r.first && q.checked {
			s.fail("RunAsMaster: n%d (inc %d) writes %q with term %d after n%d's function (term %d) wrote first %v ago",
				r.n.i, r.inc, r.k, r.term, q.n.i, q.term, time.Duration(s.now-q.first))
			return
		}
	}
}

// holds is masterCtx's m.holds: n is master of k in term now, as
// IsMaster answers.
func (s *sim) holds(n *simNode, k string, term uint64) bool {
	return n.core.Snap().State(k).Term == term && s.isMaster(n, k)
}

// isMaster is IsMaster(ByKey) of n at the current instant.
func (s *sim) isMaster(n *simNode, k string) bool {
	if !n.alive || s.now < n.pausedTo {
		return false
	}
	snap := n.core.Snap()
	var st core.KeyState
	if k == "" {
		st = core.KeyState{Master: snap.Master, Lease: snap.Lease}
	} else {
		st, _ = snap.Key(k)
	}
	return st.Master && core.ValidAt(s.local(n, s.now), st.Lease, n.sent, core.FreshFor(s.cfg.Interval, s.cfg.Wait))
}

// settle notes that the effects of a fault last until end: then, after
// the agreement bound, every live node must agree (checkAgreement),
// unless another fault came meanwhile.
func (s *sim) settle(end int64) {
	s.busyUntil = max(s.busyUntil, end)
	s.agreeGen++
	gen, end := s.agreeGen, s.busyUntil
	at := end + s.agreeBound()
	if at < int64(simLength) {
		s.push(&simEvent{at: at, kind: seFn, fn: func() {
			if gen == s.agreeGen {
				if p := s.patientUntil(); p > end {
					// A node that ran late is patient with silent peers
					// until then (core, overload.go): the faults'
					// effects last as long.
					s.out("agreement check deferred: a node is patient until %v", time.Duration(p))
					s.settle(p)
					return
				}
				s.out("agreement check, %v after the faults' effects", time.Duration(s.now-end))
				s.checkAgreementWithin(false)
				if s.err == nil {
					// Measured: the last mastership that started or
					// ended, against the bound.
					took := max(0, s.changedAt-end)
					s.out("agreement: the last change of masters came %v after the faults' effects (bound %v)", time.Duration(took), time.Duration(s.agreeBound()))
					simAgreeWorst.note(took*1000/s.agreeBound(), s.seed)
				}
			}
		}})
	}
}

// patientUntil returns when (simulated time) the last live node's
// patience with silent peers ends (core.PatientUntil); 0 if none is
// patient.
func (s *sim) patientUntil() int64 {
	var until int64
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		if p := n.core.PatientUntil(); p != 0 {
			lt := s.local(n, s.now)
			until = max(until, s.now+int64(float64(p-lt)/n.rate)+1)
		}
	}
	return until
}

// agreeBound is docs/election.md's bound on agreement once faults stop:
// WaitTimeout + 2*Interval plus the longest latency (plus M with Quorum).
func (s *sim) agreeBound() int64 {
	b := time.Duration(s.cfg.Wait) + 2*time.Duration(s.cfg.Interval) + 70*time.Millisecond
	if s.cfg.Quorum > 1 {
		b += leaseMargin(time.Duration(s.cfg.Interval), time.Duration(s.cfg.Wait))
	}
	return int64(b)
}

// check runs the checks of every instant.
func (s *sim) check() {
	if s.cfg.Quorum > 1 {
		s.checkOneMasterQuorumExceptUnturnedSuspend()
	} else {
		s.checkOneMasterNoQuorumOffWhileCutOrStarved()
	}
	s.checkResumedDefersToNewMaster()
	if s.voter != nil {
		s.checkMemberWithoutVoterMasterOfNothing()
	}
	for _, n := range s.nodes {
		if n.alive && s.now >= n.pausedTo && len(n.masters) > 0 {
			s.checkStaleMasterFalseExceptUnturnedSuspend(n)
		}
	}
}

// checkKnownTermsCached (the core's own consistency): the term the core
// keeps per slot for its snapshots and heartbeats is the one its maps of
// terms used and heard of give (core.CheckKnown). It runs after each of
// n's steps: only a step changes its core.
func (s *sim) checkKnownTermsCached(n *simNode) {
	if ok, k, known, want := n.core.CheckKnown(); !ok {
		s.fail("core n%d: known term of %q is %d, the maps say %d", n.i, k, known, want)
	}
}

// checkMemberWithoutVoterMasterOfNothing (Options.Voters): a member that
// has received no frame from any voter for longer than WaitTimeout+M is
// master of nothing. Its voters count dead WaitTimeout after it last heard
// from them (its clock up to M/(4*WaitTimeout) slow), once the silence of
// a connection still up is confirmed (Interval/20); with none live it
// names no master (core.tables). With Quorum its lease ends WaitTimeout
// after the send time its voters last echoed, whatever its elector does.
// Without, its elector must run: the time counts from the end of its
// last slow or starved spell, and a pause does not count (a peer still
// connected stays live for an Interval after the elector's first turn,
// core.begin). A node resumed from a suspend is looked at from its
// elector's first turn (docs/election.md, Pauses).
func (s *sim) checkMemberWithoutVoterMasterOfNothing() {
	bound := int64(time.Duration(s.cfg.Wait) + leaseMargin(time.Duration(s.cfg.Interval), time.Duration(s.cfg.Wait)))
	for _, n := range s.nodes {
		if !s.member(n.i) || len(n.masters) == 0 || !n.alive || s.now < n.pausedTo || n.unturned != 0 {
			continue
		}
		from := n.voterAt
		silent := s.now - from
		if s.cfg.Quorum <= 1 {
			from = max(from, n.lagTo)
			silent = s.now - from
			for _, p := range n.pauses {
				silent -= max(0, p[1]-max(p[0], from))
			}
		}
		for _, k := range n.masters {
			if !s.isMaster(n, k) {
				continue
			}
			simMemberWorst.note(max(0, silent)*1000/bound, s.seed)
			if silent > bound {
				s.fail("member n%d is master of %q, %v after it last heard from a voter", n.i, k, time.Duration(s.now-n.voterAt))
				return
			}
		}
	}
}

// checkOneMasterQuorumExceptUnturnedSuspend (invariants row 1, with Quorum):
// no two nodes answer IsMaster(ByKey) true at one instant, under every
// fault; a node resumed from a suspend is looked at from its elector's
// first turn (docs/election.md, Pauses).
func (s *sim) checkOneMasterQuorumExceptUnturnedSuspend() { s.oneMaster() }

// checkOneMasterNoQuorumOffWhileCutOrStarved (invariants row 1, without
// Quorum): as with Quorum, except while the network is cut or a process
// starved, and for the agreement bound after (netUntil): each side may
// elect.
func (s *sim) checkOneMasterNoQuorumOffWhileCutOrStarved() {
	if s.now <= s.netUntil {
		return
	}
	s.oneMaster()
}

func (s *sim) oneMaster() {
	// Only the keys each node's snapshot says it is master of can answer
	// true (IsMaster also checks the lease and the last send).
	clear(s.owner)
	for _, n := range s.nodes {
		if !n.alive || s.now < n.pausedTo || n.unturned != 0 {
			continue
		}
		for _, k := range n.masters {
			if !s.isMaster(n, k) {
				continue
			}
			if j, ok := s.owner[k]; ok {
				s.fail("two masters of %q: [%d %d]", k, j, n.i)
			}
			s.owner[k] = n.i
		}
	}
}

// checkStaleMasterFalseExceptUnturnedSuspend (invariants row 3): a process
// whose last heartbeat went out more than WaitTimeout ago, in real time
// (paused, starved), answers IsMaster false, before its elector has run:
// its peers counted it dead WaitTimeout after they received that frame,
// and its clock, up to M/(2*WaitTimeout) slow, shows at least
// WaitTimeout-M/2 = FreshFor. A suspend (the monotonic clock stood still)
// is noticed only at the elector's first turn (docs/election.md, Pauses): that
// bound is checkSuspendNoticedWithinInterval.
func (s *sim) checkStaleMasterFalseExceptUnturnedSuspend(n *simNode) {
	if n.unturned != 0 || s.now-n.sentAt <= int64(time.Duration(s.cfg.Wait)) {
		return
	}
	for _, k := range n.masters {
		if s.isMaster(n, k) {
			s.fail("stale master: n%d answers IsMaster(%q) %v after its last heartbeat", n.i, k, time.Duration(s.now-n.sentAt))
		}
	}
}

// checkSuspendNoticedWithinInterval (invariants row 3 and Pauses): a node
// resumed from a suspend or a snapshot restore (its monotonic clock stood
// still for part of the time) has its elector's first turn within an
// Interval of its clock (its timer, or a peer's frame), unless the process
// or its elector is starved (lagTo).
func (s *sim) checkSuspendNoticedWithinInterval(n *simNode) {
	bound := int64(float64(time.Duration(s.cfg.Interval))/n.rate) + 2
	if d := s.now - n.unturned; d > bound && n.lagTo+int64(time.Duration(s.cfg.Interval)) < n.unturned {
		s.fail("suspend: n%d's elector first ran %v after its resume, above an Interval", n.i, time.Duration(d))
	}
}

// checkResumedDefersToNewMaster (invariants row 3, "until it has heard from
// its peers"): a node that another node became master of a key while it
// was paused (or suspended) does not answer IsMaster true for that key
// while that master still is one, until it has received a frame that
// master sent after the resume. Not looked at: before a suspended node's
// first turn (docs/election.md, Pauses), once that master or the link between them
// saw a fault since the resume (or that master was paused or starved at
// it), and without Quorum while the network is
// cut or a process starved (netUntil: invariants row 1). Two members keep no
// connection: a member hears of the other through the voters (reheard).
func (s *sim) checkResumedDefersToNewMaster() {
	if s.cfg.Quorum <= 1 && s.now <= s.netUntil {
		return
	}
	for _, n := range s.nodes {
		if len(n.deposed) == 0 || !n.alive || s.now < n.pausedTo || n.unturned != 0 {
			continue
		}
		for _, k := range n.masters {
			x, ok := n.deposed[k]
			if !ok || s.reheard(n, x) || !s.isMaster(n, k) {
				continue
			}
			m := s.nodes[x]
			if m.faultAt >= n.resumedAt || m.resumedAt >= n.resumedAt || m.lagTo >= n.resumedAt || s.linkAt[n.i*s.n+x] >= n.resumedAt || s.linkAt[x*s.n+n.i] >= n.resumedAt ||
				s.cut[n.i*s.n+x] != 0 || s.cut[x*s.n+n.i] != 0 || !s.isMaster(m, k) {
				continue
			}
			s.fail("resumed: n%d answers IsMaster(%q) while n%d, master since its pause, is, before hearing from it", n.i, k, x)
		}
	}
}

// reheard reports whether n has received a frame that x sent after n's
// resume; for two members, which keep no connection, a frame any voter
// sent after it (n hears of x through the voters).
func (s *sim) reheard(n *simNode, x int) bool {
	if !s.member(n.i) || !s.member(x) {
		return n.reheard[x]
	}
	for v := range s.n {
		if s.voter[v] && n.reheard[v] {
			return true
		}
	}
	return false
}

// checkStickyQuorum (invariants row 5, with Quorum and Sticky): a master
// gives up its mastership to another live node only when it dies, leaves
// or loses quorum: the core never yields. A member, which sees neither
// the holders nor their priorities, counts every mastership a voter named
// another node for (core.yielded): it yields only to a higher priority
// (without Balance; outranked).
func (s *sim) checkStickyQuorum(n *simNode) {
	if !s.cfg.Sticky || s.cfg.Quorum <= 1 || s.member(n.i) && s.outranked(n) {
		return
	}
	s.fail("sticky: n%d gave up a mastership to another live node", n.i)
}

// outranked reports, without Balance, whether a key whose mastership
// member n ended in this step has a holder of higher priority, as the
// voters may still see it: a priority as it stood before or after its
// last change, a holder that removes the key (it holds it until then) or
// crashed less than the agreement bound ago, or while a voter that
// resumed less than the bound ago was paused (seed 42091456: a voter
// read a crashed holder's frames, held in its socket while it was
// stopped, and named that holder of higher priority until it counted it
// dead).
func (s *sim) outranked(n *simNode) bool {
	if s.cfg.Balance {
		return false
	}
	recent := func(t int64) bool { return s.now-t <= s.agreeBound() }
	seenLive := func(m *simNode) bool {
		if m.alive || recent(m.goneAt) {
			return true
		}
		for _, v := range s.nodes {
			if s.voter[v.i] && v.resumedAt != 0 && recent(v.resumedAt) && m.goneAt >= v.pausedAt {
				return true
			}
		}
		return false
	}
	for _, k := range n.ended {
		for _, m := range s.nodes {
			if m == n || m.cfg.Observer || !seenLive(m) {
				continue
			}
			if t, ok := m.letGo[k]; (slices.Contains(m.keys, k) || ok && recent(t)) && max(m.prio, m.prioWas) > min(n.prio, n.prioWas) {
				return true
			}
		}
	}
	return false
}

// checkAgreementWithin (invariants row 4): once the faults' effects end,
// within docs/election.md's bound (settle, agreeBound), every live node agrees
// on one master, globally and per key, the one the rules name; with
// Quorum, only while a quorum of voters is up (none is master otherwise).
// It runs at the bound after each fault's effects (unless another fault
// came first) and at the end of the schedule.
func (s *sim) checkAgreementWithin(conns bool) {
	var live []*simNode
	for _, n := range s.nodes {
		if n.alive && !n.stopping {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		return
	}
	// One connection per pair (at the end: a parked client may wait
	// longer than the bound to redial).
	for _, n := range live {
		if !conns {
			break
		}
		for _, m := range live {
			if m == n {
				continue
			}
			want := 1
			if s.member(n.i) && s.member(m.i) {
				want = -1 // two members: never peers
			}
			if conns := n.core.PeerConns(m.cfg.UID, m.cfg.Inc); conns != want {
				for _, x := range []*simNode{n, m} { // the trace shows both ends
					for _, c := range sortedConns(x) {
						s.out("n%d: conn %d n%d→n%d up %v heard %v linked %v", x.i, c.tag%1000, c.node[0], c.node[1], c.up, c.heard, c.linked)
					}
				}
				s.fail("n%d has %d connections to n%d, want %d", n.i, conns, m.i, want)
				return
			}
		}
	}
	for _, k := range append([]string{""}, s.keysPool...) {
		// With members, the global master is a voter; a key's, the holder
		// the rules name among all, members included.
		var holders, competing []*simNode
		for _, n := range live {
			if k == "" || slices.Contains(n.keys, k) {
				holders = append(holders, n)
				if !n.cfg.Observer && (k != "" || !s.member(n.i)) {
					competing = append(competing, n)
				}
			}
		}
		if len(competing) == 0 {
			continue
		}
		if len(holders) == 0 {
			continue
		}
		var masters []int
		uids := map[string]bool{}
		for _, n := range holders {
			if s.isMaster(n, k) {
				masters = append(masters, n.i)
			}
			uids[n.core.Snap().State(k).UID] = true
		}
		if s.cfg.Quorum > 1 && s.voters(live) < s.cfg.Quorum {
			if len(masters) != 0 {
				s.fail("%q: masters %v with fewer than a quorum of voters up", k, masters)
			}
			continue
		}
		if s.voter != nil && s.voters(live) == 0 {
			// Members that hear from no voter are master of nothing.
			if len(masters) != 0 {
				s.fail("%q: masters %v with no voter up", k, masters)
			}
			continue
		}
		if len(masters) != 1 || len(uids) != 1 {
			for _, n := range live {
				in := n.core.Inspect(s.local(n, s.now), k)
				var sl core.SlotView
				if in.Held {
					sl = in.Slot
				}
				if in.Held {
					s.out("n%d: rightful %s %v resigned %v keys %v prio %d maxPrio %d", n.i, in.Rightful, in.RightfulSelf, in.Resigned, in.Keys, in.Prio, in.MaxPrio)
				}
				s.out("n%d: ready %v slot %+v vote %+v maxVote %d other %d used %d live %d rankAt %d", n.i, in.Ready, sl,
					in.Vote, in.MaxVote.Term, in.Other, in.Used, in.Live, in.RankAt)
				if in.Naming != "" || in.Own != (core.TableEntry{}) {
					s.out("n%d: names %s since %d; table %+v", n.i, in.Naming, in.NamingSince, in.Own)
				}
				for _, p := range in.Peers {
					s.out("   peer %s/%d live %v current %v (%d/%d) prio %d claims %+v votes %+v echo %d table %+v", p.UID, p.Inc, p.Live, p.Current, p.Version, p.Newest, p.Prio, p.Claim, p.Vote, p.Echo, p.Table)
				}
			}
			s.fail("no agreement on %q after the faults: masters %v, named %v", k, masters, uids)
			return
		}
		s.checkFencingAfterFaults(live, s.nodes[masters[0]], k)

		if !s.cfg.Sticky {
			want := s.rightful(competing, k)
			if masters[0] != want {
				s.fail("%q: master n%d, the rules name n%d", k, masters[0], want)
			}
		}
	}
}

// checkFencingAfterFaults (invariants row 2, and "Fencing terms"): after the
// faults, the master's term is the highest ever used for the key, so a
// store fencing on terms takes its writes and refuses every earlier
// master's.
func (s *sim) checkFencingAfterFaults(live []*simNode, m *simNode, k string) {
	term := m.core.Snap().State(k).Term
	// With Quorum: the highest term ever used. Without: the
	// highest any live process holding the key knows of (one that
	// crashed, or removed the key, keeps what only it knew).
	want := s.terms[k]
	if s.cfg.Quorum <= 1 {
		want = 0
		for _, n := range live {
			if in := n.core.Inspect(s.local(n, s.now), k); in.Held {
				want = max(want, in.Used, in.Other)
			}
		}
	}
	if term < want {
		for _, n := range live {
			in := n.core.Inspect(s.local(n, s.now), k)
			s.out("n%d: slot %+v used %d other %d version %d", n.i, in.Slot, in.Used, in.Other, in.Version)
			for _, p := range in.Peers {
				s.out("   peer %s/%d live %v v %d/%d claim %+v", p.UID, p.Inc, p.Live, p.Version, p.Newest, p.Claim)
			}
		}
		s.fail("%q: master n%d has term %d, below %d used before", k, m.i, term, want)
	}
}

// voters counts the voters among nodes: not observers, and listed in
// Options.Voters if set.
func (s *sim) voters(nodes []*simNode) int {
	n := 0
	for _, x := range nodes {
		if !x.cfg.Observer && !s.member(x.i) {
			n++
		}
	}
	return n
}

// rightful is the node the election rules (docs/election.md) name among
// holders.
func (s *sim) rightful(holders []*simNode, k string) int {
	best := holders[0]
	for _, n := range holders[1:] {
		if k != "" && s.cfg.Balance {
			if core.Outranks(k, n.cfg.UID, best.cfg.UID) {
				best = n
			}
			continue
		}
		if core.Before(n.prio, n.start, n.cfg.UID, best.prio, best.start, best.cfg.UID) {
			best = n
		}
	}
	return best.i
}

// simWorst keeps the largest value noted by the seeds run, and its seed.
type simWorst struct {
	mu        sync.Mutex
	val, seed uint64
	set       bool
}

func (w *simWorst) note(v int64, seed uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.set || uint64(v) > w.val {
		w.val, w.seed, w.set = uint64(v), seed, true
	}
}

// simAgreeWorst: of the agreement checks that passed, the longest time
// from the end of the faults' effects to the last change of masters, in
// thousandths of docs/election.md's bound (checkAgreementWithin).
var simAgreeWorst simWorst

// simMemberWorst: the longest a member was master after it last heard
// from a voter (the time that counts: checkMemberWithoutVoterMasterOfNothing),
// in thousandths of the bound, WaitTimeout+M.
var simMemberWorst simWorst
