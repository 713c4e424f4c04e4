package core

import (
	"strconv"
)

// cpeer is what the core knows of another node (one process: UID and
// incarnation).
type cpeer struct {
	rank
	inc      uint64
	hash     uint64 // nodeHash(uid), for Balance
	conns    map[ConnID]struct{}
	servers  map[string]bool // configured server ids it answered on
	heard    int64           // mono: its newest frame arrived
	suspect  int64           // mono: when its silence was first seen (collect)
	sent     int64           // its clock: send time of its newest frame processed
	echo     int64           // this node's clock: send time of this node's newest frame it had processed
	observer bool            // it never claims and does not vote
	meta     map[string]string
	version  uint64 // version of its state (keys, claims, votes) known; 0: none yet
	newest   uint64 // the newest version its frames announced
	grace    int64  // mono: live until then without a connection (one closed to be redialed)
	leaving  bool
	lapsed   bool // it was dead; not live again until its newest state is known
	keys     map[string]struct{}
	claims   map[string]Claim
	votes    map[string]Vote
	table    map[string]TableEntry // a voter's relay table (Options.Voters)
	tableOn  ConnID                // the connection whose table (connState.table) it is
	keyList  []string              // keys as last sent (sorted)
	member   bool                  // a member (Options.Voters set, its UID not listed)
	// tab is, on a member, the relay table over the core's key index,
	// kept with it (tabKI) and updated by each delta; rebuilt when tabOK
	// is false.
	tab   []TableEntry
	tabKI *KeyIndex
	tabOK bool
	// Bitsets over the core's key index: has is rebuilt when the index
	// or the keys change (ki nil), acting when the claims do (actingOK
	// false).
	ki       *KeyIndex
	has      bitset // holds the key
	acting   bitset // claims the key and is master of it
	actingOK bool
	hasGen   uint64 // counts the rebuilds of has
	// w is, with Balance, its weight for each key of the index wKI.
	w   []uint64
	wKI *KeyIndex
	// For the picks (balance): the peer is among those the slots' first
	// was found over (balIn), as of its keys at hasGen balGen; balSeen,
	// the last epoch it was live in.
	balIn   bool
	balGen  uint64
	balSeen uint64
}

// live: connected, heard within WaitTimeout, not leaving, state known.
func (p *cpeer) live(now int64, wait Duration) bool {
	return (len(p.conns) > 0 || now <= p.grace) && !p.leaving && p.version > 0 && Duration(now-p.heard) <= wait
}

// candidate reports whether p claims something it should be answered on
// at once: with Quorum any claim (leases), without it a claim that is not
// a mastership yet.
func (p *cpeer) candidate(quorum bool) bool {
	for _, cl := range p.claims {
		if quorum || !cl.Acting {
			return true
		}
	}
	return false
}

// current reports whether p's newest state is known: a frame announced no
// newer one (its full form follows on that connection). Until then, that
// p was master may be stale.
func (p *cpeer) current() bool { return p.version >= p.newest }

func peerKey(uid string, inc uint64) string {
	return uid + "/" + strconv.FormatUint(inc, 16)
}
