package core

import "slices"

// snapshot builds the snapshot of the current state.
// It fills s if given (a snapshot never published), else a new one. After
// a partial election (partial.go), only the keys it re-decided are read
// again; the others are as in the last snapshot.
func (c *Core) snapshot(s *Snapshot, partial bool) *Snapshot {
	n := len(c.own.List)
	var keys []KeyState
	if s != nil && cap(s.Keys) >= n {
		keys = s.Keys[:n]
	} else {
		keys = make([]KeyState, n)
	}
	if s == nil {
		s = new(Snapshot)
	}
	*s = Snapshot{Running: c.started && !c.leaving, Ready: c.started && c.ready && !c.leaving && !c.resign, KI: c.own, Keys: keys}
	if !s.Running {
		return s
	}
	st := c.slotState(0)
	s.Master, s.MasterUID, s.Term, s.Lease = st.Master, st.UID, st.Term, st.Lease
	if old := c.snap; partial && old != nil && old.KI == c.own && len(old.Keys) == len(s.Keys) && old.Running {
		// The keys decided again: if none changed, nor the rest, the
		// snapshot published stands (nothing copied).
		changed := c.part.states[:0]
		for j := range s.Keys {
			if i := c.ownSlotOf(j); c.part.eval.has(i) {
				if st := c.slotState(i); st != old.Keys[j] {
					changed = append(changed, keyChange{j, st})
				}
			}
		}
		c.part.states = changed[:0]
		if len(changed) == 0 && s.Running == old.Running && s.Ready == old.Ready && s.Master == old.Master &&
			s.MasterUID == old.MasterUID && s.Term == old.Term && s.Lease == old.Lease {
			return old
		}
		copy(s.Keys, old.Keys)
		for _, ch := range changed {
			s.Keys[ch.j] = ch.st
		}
		return s
	}
	for j := range s.Keys {
		s.Keys[j] = c.slotState(c.ownSlotOf(j))
	}
	return s
}

func (c *Core) slotState(i int) KeyState {
	sl := c.slots[i]
	key := c.slotKey(i)
	term := max(c.used[key], c.other[key])
	if sl.Acting {
		return KeyState{Master: true, UID: c.cfg.UID, Term: sl.Term, Lease: sl.lease}
	}
	if !c.ready {
		return KeyState{Term: term}
	}
	// Not master: the master this node knows of, else the one the rules
	// name.
	if p := c.actingPeer(i); p != nil {
		return KeyState{UID: p.uid, Term: term}
	}
	uid, self := c.rightful(i)
	if self && c.resign {
		uid = ""
	}
	return KeyState{UID: uid, Term: term}
}

// publish builds the heartbeat this node sends from now on.
func (c *Core) publish() {
	b := &Beat{UID: c.cfg.UID, Start: c.cfg.Start, Inc: c.cfg.Inc, Prio: c.self.prio,
		Leaving: c.leaving, Version: c.version, Keys: c.own.List, Observer: c.cfg.Observer, Meta: c.meta, Table: c.table}
	// The maps sized first (a thousand keys: no rehash as they grow);
	// Known at most: the keys not claimed.
	claimed := 0
	if c.slots[0].Term > 0 {
		claimed++
	}
	for j := range c.own.List {
		if c.slots[c.ownSlotOf(j)].Term > 0 {
			claimed++
		}
	}
	if !c.leaving && claimed > 0 {
		b.Claims = make(map[string]Claim, claimed)
	}
	for j := -1; j < len(c.own.List); j++ {
		i := 0
		if j >= 0 {
			i = c.ownSlotOf(j)
		}
		k := c.slotKey(i)
		if c.slots[i].Term > 0 && !c.leaving {
			b.Claims[k] = c.slots[i].Claim
		} else if t := max(c.used[k], c.other[k]); t > 0 {
			// Not claimed: the highest term known, so that a node that
			// comes later takes a term above it (fencing).
			if b.Known == nil {
				b.Known = make(map[string]uint64, len(c.own.List)+1-claimed)
			}
			b.Known[k] = t
		}
	}
	if len(c.votes) > 0 && !c.leaving {
		b.Votes = make(map[string]Vote, len(c.votes))
		for k, v := range c.votes {
			b.Votes[k] = v
		}
	}
	c.out.Beat = b
}

// Snapshot is the published, immutable result of an election. Readers load
// it atomically; it is never modified after publication.
type Snapshot struct {
	Running bool // started and not leaving (Stop); if false, no mastership below is set
	Ready   bool // Core.Ready, and not stopping (Stop)
	Master  bool // this node is the global master (with Quorum, until Lease)
	// MasterUID is the global master's UID: this node's while Master,
	// else that of a live peer that is master, else the node the rules
	// name (perhaps this node, not master yet); "" while the node waits
	// for its servers, or if none.
	MasterUID string
	// Term is the global fencing term: of this node's claim while
	// Master, else the highest it claimed or heard of.
	Term uint64
	// Lease, with Quorum, is when (mono) this node's global mastership
	// ends unless renewed: past it, IsMaster is false even if the elector
	// could not run (a starved or paused process).
	Lease int64
	KI    *KeyIndex  // this node's keys
	Keys  []KeyState // by position in ki
}

// Key returns the state of Key, and false for a Key this node lacks.
func (s *Snapshot) Key(k string) (KeyState, bool) {
	i, ok := s.KI.Idx[k]
	if !ok {
		return KeyState{}, false
	}
	return s.Keys[i], true
}

// State returns the mastership of key, "" for the global one; the zero
// State for a key this node lacks.
func (s *Snapshot) State(k string) KeyState {
	if k == "" {
		return KeyState{Master: s.Master, UID: s.MasterUID, Term: s.Term, Lease: s.Lease}
	}
	ks, _ := s.Key(k)
	return ks
}

func (s *Snapshot) equal(o *Snapshot) bool {
	return s.Running == o.Running && s.Ready == o.Ready && s.Master == o.Master && s.MasterUID == o.MasterUID &&
		s.Term == o.Term && s.Lease == o.Lease && s.KI == o.KI && slices.Equal(s.Keys, o.Keys)
}

// KeyState is the mastership of one key.
type KeyState struct {
	Master bool   // this node is master of the key (with Quorum, until Lease)
	UID    string // the key's master, as Snapshot.MasterUID
	Term   uint64 // the key's fencing term, as Snapshot.Term
	Lease  int64  // as snapshot.lease
}
