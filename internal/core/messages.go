package core

// Claim is a node's claim of a mastership.
type Claim struct {
	Term   uint64 // the fencing term it claims with; 0: no claim
	Acting bool   // acknowledged by a quorum (or no Quorum): master
}

// Vote is a node's acknowledgement of a claim.
type Vote struct {
	UID  string // the claimant's UID
	Inc  uint64 // the claimant's incarnation
	Term uint64 // the term of its claim
}

// Msg is a decoded heartbeat, as the core takes it. Keys, claims and
// votes are set only in the full form (full).
type Msg struct {
	UID      string            // the sender's UID
	Start    int64             // the sender's StartTime, Unix ns
	Inc      uint64            // the sender's incarnation
	Prio     int64             // the sender's priority
	Sent     int64             // the sender's clock at sending
	Echo     int64             // the receiver's clock: send time of its newest frame the sender had processed
	Version  uint64            // of the sender's state (keys, claims, known terms, votes, metadata); in every frame
	Leaving  bool              // the sender is leaving (Stop): not live from now on
	Full     bool              // the full form: Meta, Keys, Claims, Known and Votes are set
	Reply    bool              // sent at once in answer to a frame of this node
	Linked   bool              // the sender has identified this node on the connection
	Redial   bool              // the sender closes the connection as silent, and redials
	Observer bool              // the sender never claims and does not vote
	Meta     map[string]string // the sender's metadata (Options.Meta); full form only
	Keys     []string          // the sender's keys, sorted; full form only
	Claims   map[string]Claim  // key ("" global) → the sender's claim; full form only
	Known    map[string]uint64 // key → the highest term the sender knows of, where it claims nothing; full form only
	Votes    map[string]Vote   // key → the claim the sender acknowledges (Quorum); full form only
	// Table is what a voter relays to the members (Options.Voters): key
	// → its rightful holder, its master, its term; full form only. Of a
	// delta (Base), Recv keeps no reference to the map once it returns:
	// the driver decodes the next delta into it.
	Table map[string]TableEntry
	// Base, if not 0: Claims, Known and Table hold only what changed
	// since that version of the sender's state, which this connection
	// carried last. A key that changed is in Claims if it has a claim
	// now, in Known if a known term; one that has neither any more is in
	// both, as the zero Claim and 0; a removed table entry is the zero
	// entry.
	Base uint64
}

// Out is what the drivers must do after a step. The outputs of
// several steps accumulate until the driver takes them (reset): a driver
// may take in a burst of events, then apply once.
type Out struct {
	Snap *Snapshot // the snapshot to publish; nil: unchanged
	Beat *Beat     // the heartbeat to send from now on; nil: unchanged
	Kick bool      // send the heartbeat on every connection now
	// First are the connections to send the heartbeat on now before the
	// others, sorted: a voter's, to the other voters and to the members
	// that an entry of its table that changed names. With Kick the others
	// follow at once; without, later (a change of the table alone:
	// kickSome).
	First  []ConnID
	Close  []ConnID   // connections to close
	Wake   []string   // servers to dial again now
	Attach []ConnID   // connections now known to lead to a peer (beatLinked from now on)
	Reply  []ConnID   // connections to send the heartbeat on now, as a reply
	Echoes []ConnEcho // echoes to send from now on, per connection
	Errs   []Fault    // errors to report
	// Members are servers found to lead to a member that this node keeps
	// no connection to (Options.Voters): not to be dialed again.
	Members []string
}

// Reset empties the outputs, keeping their storage: a steady heartbeat
// allocates nothing.
func (o *Out) Reset() {
	o.Snap, o.Beat, o.Kick = nil, nil, false
	o.Close, o.Wake, o.Attach, o.Reply, o.First = o.Close[:0], o.Wake[:0], o.Attach[:0], o.Reply[:0], o.First[:0]
	o.Echoes, o.Errs, o.Members = o.Echoes[:0], o.Errs[:0], o.Members[:0]
}

// ConnEcho is the echo to send on a connection from now on.
type ConnEcho struct {
	ID   ConnID // the connection
	Echo int64  // the peer's clock: send time of its newest frame processed
}

// Beat is a heartbeat's content, as the core publishes it. The send time
// and the echo are written into each frame as it is sealed (conn.sendBeat).
type Beat struct {
	UID      string            // this node's UID
	Start    int64             // start time, Unix nanoseconds
	Inc      uint64            // this node's incarnation
	Prio     int64             // this node's priority
	Leaving  bool              // this node is leaving (Stop): its peers no longer count it live
	Version  uint64            // of the state below; the full form travels when it changes
	Keys     []string          // sorted; full form only
	Claims   map[string]Claim  // key ("" global) → the sender's claim; full form only
	Known    map[string]uint64 // key → the highest term the sender knows of, where it claims nothing; full form only
	Votes    map[string]Vote   // key → the claim the sender acknowledges (Quorum); full form only
	Observer bool              // this node never claims and does not vote
	Meta     map[string]string // Options.Meta; full form only
	// Table, on a voter with Options.Voters: what it relays to the
	// members about every key it knows of; full form only.
	Table map[string]TableEntry
}
