package core

import (
	"slices"
	"sort"
)

// Read-only queries of the driver: what the node reports (Status,
// Healthy, Keys) and what the elector's loop needs of the core. They
// change nothing; the slices and maps they return are not to be
// modified.

// Snap returns the snapshot of the last election: the one published, or
// about to be (Out.Snap); before Start, one that is not running, with the
// keys as they stand.
func (c *Core) Snap() *Snapshot {
	if !c.started {
		return c.snapshot(false) // not running, with the keys as they stand
	}
	c.flush()
	return c.snap
}

// Wake returns the next wake-up the core wants (mono); 0: none.
func (c *Core) Wake() int64 {
	c.flush()
	return c.wake
}

// Sent returns when (mono) the core last asked for its heartbeat to go
// out on every connection.
func (c *Core) Sent() int64 {
	c.flush()
	return c.sent
}

// Out returns what the driver must do after the steps since it last took
// the outputs (electing first, if a step left that for later); the driver
// calls Out().Reset() once it has.
func (c *Core) Out() *Out {
	c.flush()
	return &c.out
}

// Config returns the core's configuration (its Prio as last set).
func (c *Core) Config() Config { return c.cfg }

// Ready reports whether the node has heard from or failed to reach every
// server since it began waiting (at start, or after a pause).
func (c *Core) Ready() bool { return c.ready }

// Leaving reports whether the node has left (Stop).
func (c *Core) Leaving() bool { return c.leaving }

// Prio returns this node's priority.
func (c *Core) Prio() int64 { return c.self.prio }

// Meta returns this node's metadata.
func (c *Core) Meta() map[string]string { return c.meta }

// Keys returns this node's keys, sorted.
func (c *Core) Keys() []string { return c.own.List }

// HasKey reports whether this node holds key.
func (c *Core) HasKey(key string) bool {
	_, ok := c.keys[key]
	return ok
}

// LiveCount returns how many peers were live at the last election.
func (c *Core) LiveCount() int {
	c.flush()
	return len(c.order)
}

// PeerCounts counts the known peers live now (PeerView.Live) and the
// others, without copying what each holds.
func (c *Core) PeerCounts(now int64) (live, other int) {
	c.flush()
	for _, p := range c.peers {
		if p.live(now, c.cfg.Wait) {
			live++
		} else {
			other++
		}
	}
	return live, other
}

// LiveVoters counts the voters live now, this node included, once per
// UID; dup names a voter UID that more than one live process uses.
func (c *Core) LiveVoters(now int64) (n int, dup string) { return c.liveVoters(now) }

// Pending returns the servers the node still waits to hear from, sorted.
func (c *Core) Pending() []string {
	ids := make([]string, 0, len(c.pending))
	for id := range c.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// AwaitServers makes a node that is still waiting for its servers (at
// start, or after a pause) wait for the servers ids too.
func (c *Core) AwaitServers(ids []string) {
	if !c.ready {
		for _, id := range ids {
			c.pending[id] = true
		}
	}
}

// ResolveNow counts server as heard from or failed to reach now.
func (c *Core) ResolveNow(now int64, server string) {
	c.begin(now)
	c.resolve(now, now, server)
}

// PeerView is what the core knows of one peer (one process), as Peers
// returns it.
type PeerView struct {
	UID      string            // its UID
	Inc      uint64            // its incarnation
	Start    int64             // StartTime, Unix ns
	Prio     int64             // its priority
	Live     bool              // live at now: connected (or in grace), heard within WaitTimeout, state known, not leaving
	Leaving  bool              // it said it is leaving (Stop)
	Observer bool              // it never claims and does not vote
	Master   bool              // it claims the global mastership and is master of it
	Heard    int64             // mono: its newest frame arrived; 0: never
	Conns    []ConnID          // connections up that carried its heartbeats
	Meta     map[string]string // its metadata, shared: not to be modified
	Keys     []string          // the keys it advertises, unsorted
	Servers  []string          // the configured server ids it answered on, unsorted
}

// Peers returns the peers the core knows of, in election order.
func (c *Core) Peers(now int64) []PeerView {
	c.flush()
	peers := make([]*cpeer, 0, len(c.peers))
	for _, p := range c.peers {
		peers = append(peers, p)
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].before(peers[j].rank) })
	out := make([]PeerView, 0, len(peers))
	for _, p := range peers {
		v := PeerView{UID: p.uid, Inc: p.inc, Start: p.start, Prio: p.prio, Live: p.live(now, c.cfg.Wait),
			Leaving: p.leaving, Observer: p.observer, Master: p.claims[""].Acting, Heard: p.heard, Meta: p.meta}
		for id := range p.conns {
			v.Conns = append(v.Conns, id)
		}
		v.Keys = slices.Clone(p.keyList) // sorted: no map to walk (1,000 keys of each of 1,000 members)
		for s := range p.servers {
			v.Servers = append(v.Servers, s)
		}
		out = append(out, v)
	}
	return out
}
