package msc

import (
	"maps"
	"slices"
	"time"
)

// Status is a snapshot of what a node knows, for display and debugging.
type Status struct {
	Meta      map[string]string // this node's metadata (Options.Meta)
	Observer  bool              // Options.Observer
	UID       string            // this node's UID
	StartTime time.Time         // this node's StartTime
	Priority  int               // this node's priority (Options.Priority, or SetPriority's)
	Term      uint64            // the global fencing term
	Addr      string            // listening address, "" before Start
	Running   bool              // started and not stopped
	Ready     bool              // heard from or failed to reach every server since Start
	IsMaster  bool              // this node is the global master
	Master    string            // global master's UID, "" if unknown
	Peers     []PeerStatus      // in election order: higher priority, then older, then smaller UID first
	Keys      []KeyStatus       // this node's keys, sorted
	Servers   []string          // configured server ids, sorted

	// Traffic since New: heartbeat frames and their bytes, both ways.
	FramesSent, FramesReceived, BytesSent, BytesReceived uint64
	// Dials is how many connections this node tried to open to its
	// servers since New.
	Dials uint64
}

// PeerStatus is what a node knows of one peer.
type PeerStatus struct {
	Meta      map[string]string // its Options.Meta
	Observer  bool              // it never becomes master (Options.Observer)
	UID       string            // its UID
	StartTime time.Time         // its StartTime, as it advertises it
	Priority  int               // its priority, as it advertises it
	Master    bool              // it says it is the global master
	// Live: a heartbeat arrived within WaitTimeout, and a connection is
	// up or closed to be redialed (found silent by either end). The
	// election may count a connected peer longer: for Interval/20 once
	// found silent, and, on a node of a full mesh without Quorum that
	// ran late, for up to 4·WaitTimeout (docs/election.md).
	Live      bool
	Leaving   bool      // it said it is leaving (Stop)
	LastHeard time.Time // when its last heartbeat arrived
	Conns     int       // connections up that carried its heartbeats
	Keys      []string  // the keys it advertises, sorted
	Servers   []string  // the configured server ids it answered on
	// CertSubject is the subject of its TLS certificate (Options.TLS), as
	// of the newest of its connections; "" without TLS.
	CertSubject string
}

// KeyStatus is the mastership of one key.
type KeyStatus struct {
	Key      string // the key
	IsMaster bool   // this node is master of the key
	Master   string // UID, "" if unknown
	Term     uint64 // the key's fencing term, as TermByKey answers
}

// Status returns a snapshot of this node's view. It waits for the
// elector (microseconds); after Stop it returns what the node knows
// without it.
func (m *Msc) Status() Status {
	var st Status
	if !m.call(func(e *elector) { st = e.status() }) {
		st = Status{UID: m.cfg.UID, StartTime: time.Unix(0, m.start)}
		st.Keys = nil
		for _, k := range m.Keys() {
			st.Keys = append(st.Keys, KeyStatus{Key: k})
		}
	}
	m.mu.Lock()
	for id := range m.clients {
		st.Servers = append(st.Servers, id)
	}
	m.mu.Unlock()
	st.FramesSent, st.FramesReceived = m.framesOut.Load(), m.framesIn.Load()
	st.BytesSent, st.BytesReceived = m.bytesOut.Load(), m.bytesIn.Load()
	st.Dials = m.dials.Load()
	slices.Sort(st.Servers)
	return st
}

// status builds a Status; it runs on the elector.
func (e *elector) status() Status {
	m := e.m
	c := e.core
	s := c.Snap()
	now := mono()
	st := Status{
		UID:       m.cfg.UID,
		StartTime: time.Unix(0, m.start),
		Priority:  int(c.Prio()),
		Observer:  m.cfg.Observer,
		Meta:      maps.Clone(c.Meta()),
		Running:   s.Running,
		Ready:     s.Ready,
		IsMaster:  s.Master && m.valid(s.Lease), // as IsMaster: false until the elector has run after a pause
		Master:    s.MasterUID,
		Term:      s.Term,
	}
	if a := m.Addr(); a != nil {
		st.Addr = a.String()
	}
	for _, p := range c.Peers(now) {
		ps := PeerStatus{UID: p.UID, StartTime: time.Unix(0, p.Start), Priority: int(p.Prio),
			Live: p.Live, Leaving: p.Leaving, Conns: len(p.Conns), Master: p.Master,
			Observer: p.Observer, Meta: maps.Clone(p.Meta)}
		if p.Heard > 0 {
			ps.LastHeard = monoTime(p.Heard)
		}
		var newest int64
		for _, id := range p.Conns {
			if cn, _ := e.links[id].(*conn); cn != nil && cn.certSubject != "" && cn.certAt >= newest {
				ps.CertSubject, newest = cn.certSubject, cn.certAt
			}
		}
		ps.Keys = p.Keys
		slices.Sort(ps.Keys)
		ps.Servers = p.Servers
		slices.Sort(ps.Servers)
		st.Peers = append(st.Peers, ps)
	}
	for i := range s.Len() {
		ks := s.At(i)
		st.Keys = append(st.Keys, KeyStatus{Key: s.KI.List[i], IsMaster: ks.Master && m.valid(ks.Lease), Master: ks.UID, Term: ks.Term})
	}
	return st
}
