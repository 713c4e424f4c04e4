package msc

import (
	"maps"
	"slices"
	"sort"
	"time"
)

// Status is a snapshot of what a node knows, for display and debugging.
type Status struct {
	Meta      map[string]string // this node's metadata (Options.Meta)
	Observer  bool              // Options.Observer
	UID       string
	StartTime time.Time
	Priority  int
	Term      uint64 // the global fencing term
	Addr      string // listening address, "" before Start
	Running   bool   // started and not stopped
	Ready     bool   // heard from or failed to reach every server since Start
	IsMaster  bool
	Master    string       // global master's UID, "" if unknown
	Peers     []PeerStatus // in election order, oldest first
	Keys      []KeyStatus  // this node's keys, sorted
	Servers   []string     // configured server ids, sorted

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
	UID       string
	StartTime time.Time
	Priority  int
	Master    bool // it says it is the global master
	Live      bool
	Leaving   bool
	LastHeard time.Time
	Conns     int      // connections up that carried its heartbeats
	Keys      []string // the keys it advertises, sorted
	Servers   []string // the configured server ids it answered on
	// CertSubject is the subject of its TLS certificate (Options.TLS), as
	// of the newest of its connections; "" without TLS.
	CertSubject string
}

// KeyStatus is the mastership of one key.
type KeyStatus struct {
	Key      string
	IsMaster bool
	Master   string // UID, "" if unknown
	Term     uint64
}

// Status returns a snapshot of this node's view.
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
	s := c.snap
	now := mono()
	st := Status{
		UID:       m.cfg.UID,
		StartTime: time.Unix(0, m.start),
		Priority:  int(c.self.prio),
		Observer:  m.cfg.Observer,
		Meta:      maps.Clone(c.meta),
		Running:   s.Running,
		Ready:     s.Ready,
		IsMaster:  s.Master && m.valid(s.Lease), // as IsMaster: false until the elector has run after a pause
		Master:    s.MasterUID,
		Term:      s.Term,
	}
	if a := m.Addr(); a != nil {
		st.Addr = a.String()
	}
	peers := make([]*cpeer, 0, len(c.peers))
	for _, p := range c.peers {
		peers = append(peers, p)
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].before(peers[j].rank) })
	for _, p := range peers {
		ps := PeerStatus{UID: p.uid, StartTime: time.Unix(0, p.start), Priority: int(p.prio),
			Live: p.live(now, c.cfg.Wait), Leaving: p.leaving, Conns: len(p.conns), Master: p.claims[""].Acting,
			Observer: p.observer, Meta: maps.Clone(p.meta)}
		if p.heard > 0 {
			ps.LastHeard = monoTime(p.heard)
		}
		var newest int64
		for id := range p.conns {
			if cn, _ := e.links[id].(*conn); cn != nil && cn.certSubject != "" && cn.certAt >= newest {
				ps.CertSubject, newest = cn.certSubject, cn.certAt
			}
		}
		for k := range p.keys {
			ps.Keys = append(ps.Keys, k)
		}
		slices.Sort(ps.Keys)
		for id := range p.servers {
			ps.Servers = append(ps.Servers, id)
		}
		slices.Sort(ps.Servers)
		st.Peers = append(st.Peers, ps)
	}
	for i, ks := range s.Keys {
		st.Keys = append(st.Keys, KeyStatus{Key: s.KI.List[i], IsMaster: ks.Master && m.valid(ks.Lease), Master: ks.UID, Term: ks.Term})
	}
	return st
}
