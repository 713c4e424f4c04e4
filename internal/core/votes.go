package core

import (
	"cmp"
	"slices"
	"strconv"
)

// castVotes updates this node's votes. It reports whether they changed.
func (c *Core) castVotes(now int64) bool {
	changed := false
	// Every key someone claims: this node's slots and the peers' claims.
	seen := make(map[string]bool)
	consider := func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		if c.vote(now, key) {
			changed = true
		}
	}
	for i := range c.slots {
		if c.slots[i].Term > 0 {
			consider(c.slotKey(i))
		}
	}
	for _, p := range c.order {
		for k := range p.claims {
			consider(k)
		}
	}
	for k := range c.votes {
		consider(k)
	}
	return changed
}

// vote updates this node's vote for key; it reports whether it changed.
func (c *Core) vote(now int64, key string) bool {
	if !c.voter(c.cfg.UID, c.cfg.Observer) {
		return false // it does not count toward Quorum
	}
	if now < c.born+int64(c.cfg.Wait+c.margin()) {
		// A process that may have restarted does not know what its
		// previous incarnation promised: it votes once every such
		// promise has run out.
		c.wakeAt(c.born + int64(c.cfg.Wait+c.margin()))
		return false
	}
	cur, has := c.votes[key]
	if has && !c.released(now, key, cur) {
		return false
	}
	// The best claim above every term voted for: a master first, then
	// the first in order (or of highest weight, with Balance).
	var best Vote
	var bestRank rank
	bestActing, found := false, false
	floor := c.maxVote[key]
	kh := KeyHash(key)
	consider := func(uid string, inc uint64, r rank, h uint64, cl Claim) {
		// Never a term at or below one voted for before, but the same
		// claim again (after its promise was released) is the same
		// candidacy.
		if cl.Term < floor.Term || cl.Term == floor.Term && (uid != floor.UID || inc != floor.Inc) {
			return
		}
		better := !found || cl.Acting && !bestActing
		if found && cl.Acting == bestActing {
			if key != "" && c.cfg.Balance {
				w, bw := Weight(kh, h), Weight(kh, NodeHash(best.UID))
				better = w > bw || w == bw && uid < best.UID
			} else {
				better = r.before(bestRank)
			}
		}
		if better {
			best, bestRank, bestActing, found = Vote{UID: uid, Inc: inc, Term: cl.Term}, r, cl.Acting, true
		}
	}
	if i, ok := c.slotIndex(key); ok && c.slots[i].Term > 0 {
		consider(c.cfg.UID, c.cfg.Inc, c.self, c.selfH, c.slots[i].Claim)
	}
	for _, p := range c.order {
		if cl, ok := p.claims[key]; ok && cl.Term > 0 {
			consider(p.uid, p.inc, p.rank, p.hash, cl)
		}
	}
	if !found {
		if has {
			delete(c.votes, key)
			return true
		}
		return false
	}
	c.votes[key] = best
	c.maxVote[key] = best
	return !has || cur != best
}

// quorumWarnEvery is how often at most the core reports that the
// assumption Quorum rests on is broken (checkQuorum).
const quorumWarnEvery = 10 * second

// liveVoters counts the voters live now, this node included, once per
// UID; dup names a voter UID that more than one live process uses.
func (c *Core) liveVoters(now int64) (n int, dup string) {
	if c.voterSeen == nil {
		c.voterSeen = make(map[string]bool)
	}
	seen := c.voterSeen
	clear(seen)
	if c.voter(c.cfg.UID, c.cfg.Observer) {
		seen[c.cfg.UID] = true
	}
	for _, p := range c.peers {
		if !p.live(now, c.cfg.Wait) || !c.voter(p.uid, p.observer) {
			continue
		}
		if seen[p.uid] && p.uid != c.cfg.UID {
			dup = p.uid
		}
		seen[p.uid] = true
	}
	return len(seen), dup
}

// checkQuorum reports (at most every quorumWarnEvery) an error wrapping
// ErrQuorum when two disjoint quorums are possible: more live voters than
// 2*Quorum-1 (without Options.Voters: a surge process in a rolling
// update, an old incarnation behind a partition), or a voter UID used by
// two live processes.
func (c *Core) checkQuorum(now int64) {
	if c.quorumWarned != 0 && now-c.quorumWarned < int64(quorumWarnEvery) || now-c.quorumChecked < int64(c.cfg.Interval) {
		return
	}
	c.quorumChecked = now
	n, dup := c.liveVoters(now)
	var err error
	switch {
	case dup != "":
		err = &wrapped{ErrQuorum, "two live processes use voter UID " + dup + ": two masters are possible"}
	case n > 2*c.cfg.Quorum-1:
		err = &wrapped{ErrQuorum, strconv.Itoa(n) + " live voters, more than 2*Quorum-1 = " + strconv.Itoa(2*c.cfg.Quorum-1) +
			": two disjoint quorums of " + strconv.Itoa(c.cfg.Quorum) + " are possible; set Options.Voters"}
	default:
		return
	}
	c.quorumWarned = now
	c.out.Errs = append(c.out.Errs, Fault{Err: err})
}

// voter reports whether the node uid votes: not an observer, and named
// in Options.Voters if that is set.
func (c *Core) voter(uid string, observer bool) bool {
	return !observer && (c.cfg.Voters == nil || c.cfg.Voters[uid])
}

// uidEcho is a voter's freshest echo of this node's frames (settle).
type uidEcho struct {
	uid  string
	echo int64
}

// slotIndex returns the slot of key, if this node competes for it.
func (c *Core) slotIndex(key string) (int, bool) {
	if key == "" {
		return 0, true
	}
	i, ok := c.ki.Idx[key]
	return int(i) + 1, ok
}

// released reports whether this node's promise to claim v of key is over:
// the claimant withdrew it, left, or has not been heard from for
// WaitTimeout+M.
func (c *Core) released(now int64, key string, v Vote) bool {
	if v.UID == c.cfg.UID && v.Inc == c.cfg.Inc {
		i, ok := c.slotIndex(key)
		return !ok || c.slots[i].Term != v.Term
	}
	p := c.peers[peerKey(v.UID, v.Inc)]
	if p == nil || p.leaving || p.claims[key].Term != v.Term {
		return true
	}
	end := p.heard + int64(c.cfg.Wait+c.margin())
	if now >= end {
		return true
	}
	c.wakeAt(end)
	return false
}

// settle decides, with Quorum, whether this node's claim of slot i is a
// mastership: acknowledged by Quorum nodes, itself included, with a lease
// still running. A mastership that ends spends its term. It reports
// whether the claim changed.
func (c *Core) settle(now int64, i int) bool {
	s := &c.slots[i]
	if s.Term == 0 {
		return false
	}
	key := c.slotKey(i)
	me := Vote{UID: c.cfg.UID, Inc: c.cfg.Inc, Term: s.Term}
	var lease int64
	need, mine := c.cfg.Quorum, true
	if c.voter(c.cfg.UID, c.cfg.Observer) {
		// Its own vote counts; a voter that acknowledges another claim
		// (a higher term it heard of first) is not master.
		need, mine = need-1, c.votes[key] == me
	}
	if mine {
		// The freshest echo of each voter UID that acknowledges the
		// claim: a UID counts once, whatever its incarnations.
		echoes := c.echoes[:0]
		for _, p := range c.peers {
			if p.votes[key] != me || p.echo <= 0 || p.leaving || !c.voter(p.uid, p.observer) {
				continue
			}
			if j := slices.IndexFunc(echoes, func(e uidEcho) bool { return e.uid == p.uid }); j >= 0 {
				echoes[j].echo = max(echoes[j].echo, p.echo)
			} else {
				echoes = append(echoes, uidEcho{p.uid, p.echo})
			}
		}
		c.echoes = echoes
		if len(echoes) >= need {
			slices.SortFunc(echoes, func(a, b uidEcho) int { return cmp.Compare(a.echo, b.echo) })
			lease = echoes[len(echoes)-need].echo + int64(c.cfg.Wait)
		}
	}
	was := s.Acting
	if lease > now {
		s.Acting, s.lease = true, lease
		c.wakeAt(lease)
	} else if was {
		// The lease ran out: this mastership is over, and its term
		// spent. The next claim (at the next step) gets a new one.
		*s = slot{}
		return true
	} else {
		s.lease = 0
	}
	return was != s.Acting
}
