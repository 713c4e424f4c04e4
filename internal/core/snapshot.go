package core

import "slices"

// snapshot builds the snapshot of the current state, or returns the one
// published if nothing changed. After a partial election (partial.go),
// only the keys it re-decided are read again; the others are as in the
// last snapshot. A new snapshot shares with the last one every chunk of
// key states none of whose keys changed: a member of a thousand keys
// whose voter changed one entry copies 64 states, not a thousand
// (BenchmarkElectMember).
func (c *Core) snapshot(partial bool) *Snapshot {
	old := c.snap
	s := &Snapshot{Running: c.started && !c.leaving, Ready: c.started && c.ready && !c.leaving && !c.resign, KI: c.own}
	if s.Running {
		st := c.slotState(0)
		s.Master, s.MasterUID, s.Term, s.Lease = st.Master, st.UID, st.Term, st.Lease
	}
	// The base the changes apply to: the last snapshot's states if it
	// had the same keys and was running, and this one runs; else all
	// zero (a node that leaves names no master of any key).
	base := old.chunks
	if old.KI != c.own || !old.Running || !s.Running {
		base, partial = zeroChunks(len(c.own.List)), false
	}
	changed := c.part.states[:0]
	if s.Running {
		for j := range c.own.List {
			i := c.ownSlotOf(j)
			if partial && !c.part.eval.has(i) {
				continue
			}
			if st := c.slotState(i); st != base[j>>chunkBits][j&chunkMask] {
				changed = append(changed, keyChange{j, st})
			}
		}
	}
	c.part.states = changed[:0]
	s.chunks = base
	if len(changed) > 0 {
		s.chunks = slices.Clone(base)
		copied := -1 // the last chunk copied: changes come in order of j
		for _, ch := range changed {
			ci := ch.j >> chunkBits
			if ci != copied {
				s.chunks[ci], copied = slices.Clone(base[ci]), ci
			}
			s.chunks[ci][ch.j&chunkMask] = ch.st
		}
	} else if s.head() == old.head() && s.KI == old.KI {
		return old // nothing changed: the snapshot published stands
	}
	return s
}

// Key states are held in chunks of 1<<chunkBits.
const (
	chunkBits = 6
	chunkMask = 1<<chunkBits - 1
)

// zeroChunk backs the chunks of keys whose state is all zero; never
// written (a chunk is copied before it changes).
var zeroChunk [1 << chunkBits]KeyState

// zeroChunks returns chunks of n zero states.
func zeroChunks(n int) [][]KeyState {
	cs := make([][]KeyState, (n+chunkMask)>>chunkBits)
	for ci := range cs {
		cs[ci] = zeroChunk[:min(n-ci<<chunkBits, 1<<chunkBits)]
	}
	return cs
}

func (c *Core) slotState(i int) KeyState {
	sl := c.slots[i]
	term := c.known[i]
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
	if c.member && i > 0 && !self {
		if named, ok := c.relayNames(i); ok {
			uid = named
		}
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
		} else if t := c.known[i]; t > 0 {
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
	KI    *KeyIndex // this node's keys
	// chunks hold the key states by position in KI, 1<<chunkBits to a
	// chunk (At), shared between snapshots while none of their keys
	// changes.
	chunks [][]KeyState
}

// head is a snapshot's global part.
type head struct {
	running, ready, master bool
	uid                    string
	term                   uint64
	lease                  int64
}

func (s *Snapshot) head() head {
	return head{s.Running, s.Ready, s.Master, s.MasterUID, s.Term, s.Lease}
}

// Len returns the number of keys, len(KI.List).
func (s *Snapshot) Len() int { return len(s.KI.List) }

// At returns the state of the key at position j of KI.List, 0 <= j <
// Len(); the state is not to be modified.
func (s *Snapshot) At(j int) *KeyState { return &s.chunks[j>>chunkBits][j&chunkMask] }

// Diff calls f for each key whose state differs from old's, with both,
// in order of position in KI; old must have the same KI. Chunks shared
// with old are skipped unread.
func (s *Snapshot) Diff(old *Snapshot, f func(j int, now, was KeyState)) {
	for ci, ch := range s.chunks {
		och := old.chunks[ci]
		if len(ch) == 0 || &ch[0] == &och[0] {
			continue
		}
		for x := range ch {
			if ch[x] != och[x] {
				f(ci<<chunkBits+x, ch[x], och[x])
			}
		}
	}
}

// Key returns the state of Key, and false for a Key this node lacks.
func (s *Snapshot) Key(k string) (KeyState, bool) {
	i, ok := s.KI.Idx[k]
	if !ok {
		return KeyState{}, false
	}
	return *s.At(int(i)), true
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

// KeyState is the mastership of one key.
type KeyState struct {
	Master bool   // this node is master of the key (with Quorum, until Lease)
	UID    string // the key's master, as Snapshot.MasterUID
	Term   uint64 // the key's fencing term, as Snapshot.Term
	Lease  int64  // as snapshot.lease
}
