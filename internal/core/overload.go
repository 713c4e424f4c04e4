package core

// Overload. A process whose goroutines run late (its CPU saturated: many
// nodes in one process that converge at once, a process starved by its
// neighbours) reads its peers' frames late as well: a peer it finds
// silent for WaitTimeout may only be waiting in a socket, or for a CPU
// (here or there). Counted dead, the peer's masterships move; with Balance
// and a thousand keys every move is news to every node, the load grows,
// more peers look silent, and the nodes starved past FreshFor re-join and
// move theirs back. 40 nodes holding 1,000 keys in one process, beside a
// simulator sweep on the same two cores, did not converge in 20 s in 10
// runs of 10, keys moving all the while (with a node patient until
// 4*WaitTimeout: 3.1-8.4 s in 10 of 10). So a node that ran late in the last
// 2*WaitTimeout (lateAt) is patient: a peer whose connection is up counts
// dead only once silent for patience*WaitTimeout (dead). A connection
// that closes still ends the peer at once: a crash fails over as fast.
//
// Counting a peer dead later only holds this node back where a live peer
// only does that: in a full mesh without Quorum, a live peer is one before
// this node in order, a master it defers to, or a node whose answer it
// waits for before it acts. Not with Options.Voters: a member's voters keep
// it master of its keys (patient, it would stay master longer when cut
// off from them), and a voter's table names a member it keeps as master
// (patient, it would name one silent for longer than WaitTimeout, then
// drop it without waiting for its answer when the patience ends). Not with
// Quorum (a live voter's vote counts).

// patience is how many WaitTimeouts a patient node lets a connected peer
// be silent before it counts dead, as the driver's connections wait
// patienceFactor times longer while it is overloaded (overload.go at the
// root).
const patience = 4

// NoteLate records at now that a step came late by late: the Interval
// timer past its time (the driver tells), or a frame that waited for the
// elector (Recv). Past FreshFor it is a pause, which the node re-joins
// after (begin), not overload; the driver does not tell a late timer
// that finds the node paused.
func (c *Core) NoteLate(now, late int64) {
	if Duration(late) > c.cfg.Interval/4 && Duration(late) <= FreshFor(c.cfg.Interval, c.cfg.Wait) {
		c.lateAt = now
	}
}

// PatientUntil returns when (mono) this node's patience with silent
// peers ends: 2*WaitTimeout after it last ran late; 0 if it never ran
// late, or gives none (Options.Voters, Quorum).
func (c *Core) PatientUntil() int64 {
	if c.lateAt == 0 || c.member || c.relay || c.quorum() {
		return 0
	}
	return c.lateAt + 2*int64(c.cfg.Wait)
}

// patientEnd returns, for peer p connected and silent, the earliest time
// it may count dead beside the silence being confirmed: its patience's
// end, or now if this node is not patient.
func (c *Core) patientEnd(p *cpeer, now int64) int64 {
	until := c.PatientUntil()
	if now >= until {
		return now
	}
	return min(until, p.heard+int64(patience*c.cfg.Wait))
}
