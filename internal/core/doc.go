// Package core is the election as a pure state machine: all election
// state in one type, with no goroutine, no clock read, no socket, no lock
// and no randomness inside. Its inputs are method calls, events (a
// heartbeat received, a connection up or down, a tick, a local change),
// each with the current monotonic time; after each one it leaves in Out
// what the drivers must do: the snapshot to publish, the heartbeat to
// send, the connections to close, the echoes to send back, the errors to
// report. The outputs accumulate in Out until the driver takes them. The
// elector goroutine (elector.go in package msc) drives it over real
// sockets; the simulator (sim_test.go in package msc) drives many of them
// over a simulated network in virtual time.
//
// # The protocol
//
// Every mastership, global (key "") or of a key, is a claim with a term.
// The node the rules name (the oldest, or with Balance the heaviest, among
// the live nodes holding the key; with Sticky a live master first) claims
// it with a term above every term it has heard of for that key; a node
// that claims nothing sends the highest term it knows of, so that a node
// that comes later takes one above it.
//
// Without Quorum a claim is a mastership as soon as no live peer is
// master of it: a master steps down when it hears of the node the rules
// name, which then takes over (a handoff, not an overlap).
//
// With Quorum, a node also votes: for each key, it acknowledges at most
// one claim at a time, never a term at or below one it acknowledged
// before, and it keeps acknowledging a claim (a promise) until the
// claimant withdraws, leaves, or has not been heard for WaitTimeout+M.
// A claim is a mastership once Quorum nodes, the claimant included,
// acknowledge it: two claims of one term cannot both gather a majority,
// so terms are unique. Its lease runs until WaitTimeout after the send
// time of the claimant's newest heartbeat that the Quorum-1'th freshest
// acknowledging peer echoed back; that peer's promise runs until at least
// WaitTimeout+M after it received that heartbeat, which is later. So a
// master's lease ends at least M before anyone else can be acknowledged:
// never two masters at one instant, with clock rates apart by up to
// M/(WaitTimeout+M).
package core
