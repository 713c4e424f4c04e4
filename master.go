package msc

import (
	"time"

	"github.com/msc-go/msc/internal/core"
)

// Term returns the global fencing term (a lock-free read): a number that strictly increases
// each time global mastership passes to a node, agreed by the nodes that
// saw both masters. Pass it with every write a master makes to a store
// that refuses writes with a term lower than one it has seen, and a
// deposed master's late writes are refused.
func (m *Msc) Term() uint64 { return m.snap.Load().Term }

// TermByKey returns the fencing term of key's mastership (0 for a key this
// node has not added); for key "" it is Term. It does not block.
func (m *Msc) TermByKey(key string) uint64 { return m.snap.Load().State(key).Term }

// IsMaster reports whether this node is the global master: the first in
// order of itself and its live peers (with Quorum: acknowledged by a
// quorum, within its lease). It is a lock-free read that does not
// allocate: a few ns on a node that is not master; on the master, which
// also reads the clock, about 20ns. A node that is not running is not
// master, and neither is one whose elector has not run for
// WaitTimeout-M/2, M = max(Interval, WaitTimeout/4) (a process resumed
// after a pause, until it has looked around again).
func (m *Msc) IsMaster() bool {
	s := m.snap.Load()
	return s.Master && m.valid(s.Lease)
}

// IsMasterByKey reports whether this node is master for key: the oldest of
// itself and the live peers that hold key (with Balance: the heaviest). It
// is false for a key this node has not added; for key "" it is IsMaster.
// It is a lock-free read that does not allocate.
func (m *Msc) IsMasterByKey(key string) bool {
	s := m.snap.Load()
	if key == "" {
		return s.Master && m.valid(s.Lease)
	}
	i, ok := s.KI.Idx[key]
	if !ok {
		return false
	}
	ks := s.At(int(i)) // not copied: this is the hot path
	return ks.Master && m.valid(ks.Lease)
}

// valid reports whether a mastership of the published snapshot still
// holds now: its lease (with Quorum) has not run out, and the elector
// sent the heartbeat within freshFor (WaitTimeout-M/2), so that a process
// resumed after a pause, whose peers may have elected another master,
// does not act as master before its elector has looked around.
func (m *Msc) valid(lease int64) bool {
	return core.ValidAt(mono(), lease, m.lastSent.Load(), core.Duration(m.fresh))
}

// holds reports whether this node is master of key ("" global) in term,
// now, as IsMaster(ByKey) answers.
func (m *Msc) holds(key string, term uint64) bool {
	ks := m.snap.Load().State(key)
	return ks.Master && ks.Term == term && m.valid(ks.Lease)
}

// validUntil returns when the mastership of key ("" global) ends unless
// it is renewed: the lease, or freshFor after the last heartbeat sent if
// earlier. ok is false if this node is not master of key.
func (m *Msc) validUntil(key string) (end time.Time, ok bool) {
	ks := m.snap.Load().State(key)
	if !ks.Master {
		return time.Time{}, false
	}
	t := m.lastSent.Load() + int64(m.fresh)
	if ks.Lease != 0 {
		t = min(t, ks.Lease)
	}
	return monoTime(t), true
}

// Master returns the UID of the node this node thinks is the global
// master. ok is false while the node is not running or has not yet heard
// from its peers after Start. It is a lock-free read.
func (m *Msc) Master() (uid string, ok bool) {
	s := m.snap.Load()
	return s.MasterUID, s.MasterUID != ""
}

// MasterByKey returns the UID of the master for key among the nodes that
// hold it; for key "" it is Master. ok is false for a key this node has
// not added, and when Master would return false. It does not block.
func (m *Msc) MasterByKey(key string) (uid string, ok bool) {
	uid = m.snap.Load().State(key).UID
	return uid, uid != ""
}

// MasterMeta returns the metadata of the master this node knows of, global
// for key "" and of key otherwise (this node's own when it is the master),
// so that a replica can forward a request to the master, for instance to
// meta["http"]. ok is false while no master is known. It waits for the
// elector (microseconds).
func (m *Msc) MasterMeta(key string) (meta map[string]string, ok bool) {
	m.call(func(e *elector) {
		meta, ok = e.core.MasterMeta(key)
	})
	return meta, ok
}

// MasterKeys returns the keys this node is master of, sorted, from the
// published snapshot without a lock.
func (m *Msc) MasterKeys() []string {
	s := m.snap.Load()
	var out []string
	for i := range s.Len() {
		if s.At(i).Master {
			out = append(out, s.KI.List[i])
		}
	}
	return out
}

// freshFor, leaseMargin and silentAfter are the core's, in
// time.Duration.
func freshFor(interval, wait time.Duration) time.Duration {
	return time.Duration(core.FreshFor(core.Duration(interval), core.Duration(wait)))
}

func leaseMargin(interval, wait time.Duration) time.Duration {
	return time.Duration(core.LeaseMargin(core.Duration(interval), core.Duration(wait)))
}

func silentAfter(interval, wait time.Duration) time.Duration {
	return time.Duration(core.SilentAfter(core.Duration(interval), core.Duration(wait)))
}
