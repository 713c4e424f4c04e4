package msc

import (
	"slices"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// observe follows n's masterships as RunAsMaster would: one starts when a
// snapshot shows it, ends when one no longer does.
func (s *sim) observe(n *simNode, snap *core.Snapshot) {
	state := func(k string) core.KeyState {
		if !snap.Running {
			return core.KeyState{}
		}
		return snap.State(k)
	}
	for k, term := range n.fn {
		if st := state(k); !st.Master || st.Term != term {
			s.out("n%d ends mastership of %q term %d", n.i, k, term)
			delete(n.fn, k)
		}
	}
	// The keys it is master of, by this snapshot: what check looks at.
	n.masters = n.masters[:0]
	if snap.Running && snap.Master {
		n.masters = append(n.masters, "")
	}
	for i := range snap.Keys {
		if snap.Running && snap.Keys[i].Master {
			n.masters = append(n.masters, snap.KI.List[i])
		}
	}
	for _, k := range n.masters {
		st := state(k)
		if _, ok := n.fn[k]; ok {
			continue
		}
		n.fn[k] = st.Term
		s.out("n%d starts mastership of %q term %d", n.i, k, st.Term)
		if n.cfg.Observer {
			s.fail("observer n%d is master of %q", n.i, k)
		}
		// Above every term it heard of from another claim or vote, and
		// not below any term a peer knows of (that may be its own). With
		// Quorum the fencing check below is the promise; and the core
		// read here has taken in the whole batch, after the decision
		// (seed 4093: a known term heard later in the batch).
		if heard, _, _ := n.core.Terms(k); s.cfg.Quorum <= 1 && st.Term <= heard {
			s.fail("terms: n%d is master of %q with term %d, not above %d it heard of", n.i, k, st.Term, heard)
		}
		if _, known, _ := n.core.Terms(k); s.cfg.Quorum <= 1 && st.Term < known {
			s.fail("terms: n%d is master of %q with term %d, below %d it knew of", n.i, k, st.Term, known)
		}
		if s.cfg.Quorum > 1 {
			if st.Term <= s.terms[k] {
				s.fail("fencing: n%d is master of %q with term %d, not above %d used before", n.i, k, st.Term, s.terms[k])
			}
			// No other node's RunAsMaster still runs: its function's
			// context is not done, by the clock (ctx.Err answers from the
			// clock: a node resumed a moment ago whose elector has not run
			// yet has a stale snapshot, but its lease is over; seed
			// 2073254).
			for _, m := range s.nodes {
				if m != n && m.alive && s.now >= m.pausedTo {
					if t, ok := m.fn[k]; ok && s.isMaster(m, k) {
						s.fail("quorum: n%d starts %q (term %d) while n%d still runs it (term %d)", n.i, k, st.Term, m.i, t)
					}
				}
			}
		}
		s.terms[k] = max(s.terms[k], st.Term)
	}
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
				s.out("agreement check, %v after the faults' effects", time.Duration(s.now-end))
				s.checkAgreement(false)
			}
		}})
	}
}

// agreeBound is the README's bound on agreement once faults stop:
// WaitTimeout + 2*Interval plus the longest latency (plus M with Quorum).
func (s *sim) agreeBound() int64 {
	b := time.Duration(s.cfg.Wait) + 2*time.Duration(s.cfg.Interval) + 70*time.Millisecond
	if s.cfg.Quorum > 1 {
		b += leaseMargin(time.Duration(s.cfg.Interval), time.Duration(s.cfg.Wait))
	}
	return int64(b)
}

// check verifies that no two nodes are master of anything at this instant
// (with Quorum always; without it, except while the network is cut and
// for the agreement bound after: netUntil).
func (s *sim) check() {
	if s.cfg.Quorum <= 1 && s.now <= s.netUntil {
		return
	}
	// Only the keys each node's snapshot says it is master of can answer
	// true (IsMaster also checks the lease and the last send).
	clear(s.owner)
	for _, n := range s.nodes {
		if !n.alive || s.now < n.pausedTo {
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

// checkAgreement: after the faults, every live node agrees on one master,
// globally and per key, the one the rules name.
func (s *sim) checkAgreement(conns bool) {
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
			if conns := n.core.PeerConns(m.cfg.UID, m.cfg.Inc); conns != 1 {
				s.fail("n%d has %d connections to n%d, want 1", n.i, conns, m.i)
				return
			}
		}
	}
	for _, k := range append([]string{""}, s.keysPool...) {
		var holders, competing []*simNode
		for _, n := range live {
			if k == "" || slices.Contains(n.keys, k) {
				holders = append(holders, n)
				if !n.cfg.Observer {
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
			var uid string
			if k == "" {
				uid = n.core.Snap().MasterUID
			} else {
				st, _ := n.core.Snap().Key(k)
				uid = st.UID
			}
			uids[uid] = true
		}
		if s.cfg.Quorum > 1 && voters(live) < s.cfg.Quorum {
			if len(masters) != 0 {
				s.fail("%q: masters %v with fewer than a quorum of voters up", k, masters)
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
				s.out("n%d: ready %v slot %+v vote %+v maxVote %d other %d used %d live %d", n.i, in.Ready, sl,
					in.Vote, in.MaxVote.Term, in.Other, in.Used, in.Live)
				for _, p := range in.Peers {
					s.out("   peer %s/%d live %v current %v (%d/%d) prio %d claims %+v votes %+v echo %d", p.UID, p.Inc, p.Live, p.Current, p.Version, p.Newest, p.Prio, p.Claim, p.Vote, p.Echo)
				}
			}
			s.fail("no agreement on %q after the faults: masters %v, named %v", k, masters, uids)
			return
		}
		// Fencing after the faults: the master's term is the highest ever
		// used for the key, so a store fencing on terms takes its writes
		// and refuses every earlier master's.
		if m := s.nodes[masters[0]]; true {
			var term uint64
			if k == "" {
				term = m.core.Snap().Term
			} else {
				st, _ := m.core.Snap().Key(k)
				term = st.Term
			}
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

		if !s.cfg.Sticky {
			want := s.rightful(competing, k)
			if masters[0] != want {
				s.fail("%q: master n%d, the rules name n%d", k, masters[0], want)
			}
		}
	}
}

func voters(nodes []*simNode) int {
	n := 0
	for _, x := range nodes {
		if !x.cfg.Observer {
			n++
		}
	}
	return n
}

// rightful is the node the README's rules name among holders.
func (s *sim) rightful(holders []*simNode, k string) int {
	best := holders[0]
	for _, n := range holders[1:] {
		if k != "" && s.cfg.Balance {
			kh := core.KeyHash(k)
			w, bw := core.Weight(kh, core.NodeHash(n.cfg.UID)), core.Weight(kh, core.NodeHash(best.cfg.UID))
			if w > bw || w == bw && n.cfg.UID < best.cfg.UID {
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
