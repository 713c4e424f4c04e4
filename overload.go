package msc

import "time"

// Overload. A node whose goroutines run late (its CPU is saturated: a
// large cluster that starts at once, a process starved by its neighbours)
// counts as overloaded for a while, and meanwhile gives the network more
// time: a connection silent for SilentAfter, a frame half read, a
// handshake or a dial that takes WaitTimeout may only be waiting for a
// CPU, here or at the peer. To close it and dial again would add the cost
// of a new connection (a handshake, two whole states) to the load that
// delayed it, and the load would feed on itself: 40 nodes in one process
// holding 1,000 keys each never converged so. The election has its own
// account of lateness (the elector tells the core how late its Interval
// timer ran, the core sees how long a frame waited for it): in a full
// mesh without Quorum a node that ran late lets a connected peer be
// silent for longer before it counts dead (internal/core, overload.go).

// lateAfter is how late a goroutine of the node may run (past its timer,
// or an event past when it was handed to the elector) before the node
// counts as overloaded: a quarter of Interval.
func (m *Msc) lateAfter() time.Duration { return m.cfg.Interval / 4 }

// ranLate records that a goroutine of the node ran late by late at now
// (mono), if that is past lateAfter.
func (m *Msc) ranLate(now int64, late time.Duration) {
	if late > m.lateAfter() {
		m.lateAt.Store(now)
	}
}

// overloaded reports whether the node ran late within the last
// 2*WaitTimeout before now (mono).
func (m *Msc) overloaded(now int64) bool {
	at := m.lateAt.Load()
	return at != 0 && time.Duration(now-at) < 2*m.cfg.WaitTimeout
}

// patienceFactor is how many times longer an overloaded node waits for
// the network.
const patienceFactor = 4

// patience returns how long to wait for the network where d is the usual
// bound: d, or patienceFactor*d while the node is overloaded.
func (m *Msc) patience(d time.Duration) time.Duration {
	if m.overloaded(mono()) {
		return patienceFactor * d
	}
	return d
}
