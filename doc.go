// Package msc decides which replica of a service is the master, so that a
// background job (a cron task, a queue consumer, a cleanup) runs on exactly
// one of them, without deploying etcd, ZooKeeper, Consul or Redis. It is for
// a Go service that runs several replicas (up to about 64 in a full mesh,
// more with [Options].Voters) and wants one of them, or one per key, to do
// some work. It replicates no data: for a replicated log or store, use a
// consensus library.
//
// Every node runs a small TCP listener, dials the other nodes it is
// configured with, and exchanges encrypted heartbeats carrying its UID and
// start time. The oldest live node is master, globally and for each named
// key. It is a port of the Node.js package msc (MIT, 2015, by Konstantine
// Petryaev), and uses the standard library only.
//
// # Usage
//
// Create a node with [New], list the other nodes with [Msc.AddServer] (every
// node lists all the others: a full mesh), then call [Msc.Start]:
//
//	m, err := msc.New(msc.Options{Key: "a shared passphrase", Port: 8778})
//	if err != nil {
//		log.Fatal(err)
//	}
//	m.AddServer("b", msc.ServerConfig{Host: "10.0.0.2", Port: 8778})
//	m.AddServer("c", msc.ServerConfig{Host: "10.0.0.3", Port: 8778})
//	if err := m.Start(); err != nil {
//		log.Fatal(err)
//	}
//	defer m.Stop()
//
// Then ask [Msc.IsMaster] before doing the work only one replica should do,
// or hand the work to [Msc.DoIfMaster]. [Msc.IsMaster] and
// [Msc.IsMasterByKey] are lock-free reads that do not allocate: call them
// as often as needed. [Msc.OnChange] reports each change of mastership
// seen by the node, and [Msc.Status] returns a snapshot of its view of the
// cluster, for display and debugging.
//
// # Keys and the global mastership
//
// One rule for keys: every method that takes a key ([Msc.IsMasterByKey],
// [Msc.MasterByKey], [Msc.TermByKey], [Msc.DoIfMasterByKey],
// [Msc.RunAsMasterByKey], [Msc.MasterMeta], [Msc.Watch]) takes "" for the
// global mastership, and then behaves exactly as its global twin
// ([Msc.IsMaster], [Msc.Master], [Msc.Term], [Msc.DoIfMaster],
// [Msc.RunAsMaster]). The global mastership is not a key a node holds:
// [Msc.AddKey] and the other methods that change the keys refuse "" with
// [ErrInvalidKey].
//
// # Errors
//
// One rule for errors: every method that can fail returns an error that
// wraps one of the package's sentinel errors, to test with [errors.Is]:
// [ErrInvalidKey], [ErrInvalidOption], [ErrUnknownKey], [ErrServerExists],
// [ErrUnknownServer], [ErrRunTimeout], and [ErrStopped] from every method
// that changes a node after [Msc.Stop]. What goes wrong in the background
// (a peer with a wrong key, an unreachable server, a malformed frame) has
// no caller to return to: it goes to [Msc.OnError], as a [*PeerError]
// naming the peer.
//
// # The election
//
// Nodes are ordered by [Options].Priority (higher first; 0 by default),
// then [Options].StartTime (earlier first), then [Options].UID (smaller
// first). Each node advertises its own
// values, and every node compares the same advertised values, so all nodes
// that see the same live peers agree on the master, whatever the clock
// skew between machines.
//
//   - A peer is live while a valid, authenticated heartbeat arrived from it
//     within [Options].WaitTimeout, on the connection either side dialed.
//   - The global master is the first, in that order, of the node and its
//     live peers.
//   - The master of key K is the first of the node and the live peers that
//     hold K; a node competes for K after [Msc.AddKey] (or [Options].Keys).
//     [Msc.IsMasterByKey] is false for a key the node does not hold. Nodes
//     can thus share the work by keys: give each key to some of the nodes.
//   - After [Msc.Start], a node claims nothing until it has heard from, or
//     failed to reach, every configured server, or WaitTimeout has passed
//     (up to 4*WaitTimeout while a server's connection is up and its state
//     has not come), so that a starting replica never runs the master's
//     tasks by mistake.
//     A node with no servers is master as soon as Start returns.
//   - A process that dies has its connections reset by its operating
//     system, and its peers count it dead at once. [Msc.Stop] tells the
//     peers the node is leaving, so they re-elect at once. A node that is
//     paused, or cut off without its connections closing, is dead after
//     WaitTimeout.
//
// A node started again is younger than every node that kept running, so
// mastership does not move back to it.
//
// All of this is decided by one state machine with no goroutine, clock,
// socket or randomness inside (the internal package core), driven by one
// loop (the elector's turn: batching, pause and clock-jump detection,
// ticks, wake-ups) and one set of connection rules (which frames a
// connection sends, which it hands over). The process runs them over real
// sockets; the repository's deterministic simulator runs the same code
// over simulated connections and clocks, under crashes, pauses, frozen
// and jumping clocks, partitions, starved processes and slow RunAsMaster
// functions, and checks the invariants below at every step.
//
// # Guarantees
//
// What holds, with M = max(Interval, WaitTimeout/4) (the repository's
// docs/election.md has the table, each bound and the faults it is checked
// under):
//
//   - One master at a time: never two nodes with [Msc.IsMaster] (or
//     [Msc.IsMasterByKey]) true at one instant, and [Msc.RunAsMaster]
//     functions never run at once. With [Options].Quorum, under every
//     fault; without it, under crashes, restarts, stops, pauses, key and
//     priority changes, but not while the network is cut or a process
//     starved, nor for the agreement bound after (each side may elect).
//   - Fencing terms strictly increase: with Quorum, every mastership's
//     term is above every earlier mastership's term; without it, a new
//     master's term is above every term it heard.
//   - A paused or starved process whose last heartbeat went out more than
//     WaitTimeout-M/2 ago answers IsMaster false, and its RunAsMaster
//     context's Err is non-nil, until it has heard from its peers (a
//     suspended machine: from its elector's first turn, within an
//     Interval; see below).
//   - Once faults stop, every live node agrees on one master, globally and
//     per key, within WaitTimeout + 2*Interval plus the longest latency
//     (plus M with Quorum, while a quorum is up).
//   - With Quorum and [Options].Sticky, mastership moves only when the
//     master dies, leaves or loses quorum.
//   - A starting node claims nothing until it has heard from, or failed
//     to reach, every server, or WaitTimeout has passed (up to
//     4*WaitTimeout for a server reached and not heard yet).
//
// # The wire
//
// Nodes talk over TCP: each node dials each peer, and a pair keeps one
// connection (the one the smaller UID dialed), with heartbeats both ways
// on it; a connection silent for (WaitTimeout+Interval)/2 is dialed again
// before the peer counts dead (unless the peer's own sends came late
// lately: an overloaded peer is waited out until WaitTimeout; a node
// whose own goroutines run late waits longer still, up to 4*WaitTimeout,
// rather than add redials to its load). Every frame
// is length-prefixed: a big-endian uint32 length (at most [MaxFrameSize]),
// a version byte checked before anything else, a type byte, flags, a
// sequence number and the sender's UID, then the body. A frame that is too
// long, malformed or of another version closes the connection.
//
// Each connection opens with a handshake: both sides send a hello with
// their algorithm and a random nonce. The long-term key is derived from
// the passphrase [Options].Key with PBKDF2-HMAC-SHA256 and a fixed salt;
// each connection's session key is derived from it and both nonces with
// HKDF-SHA256. Heartbeats are sealed with AES-GCM (128, 192 or 256-bit
// keys, by [Options].Algorithm) under the session key, with the direction
// and the sequence number as the nonce and the frame header as additional
// data: a frame recorded on one connection does not open on another, and
// a frame replayed or reordered fails. Any failure closes the connection
// and is reported, rate-limited, to [Msc.OnError] as a [*PeerError].
// The header, with the sender's UID, travels in clear but authenticated,
// unless [Options].HeaderEncrypted is set. Algorithm "no" turns all of
// this off (no encryption, no authentication): for tests only.
//
// A heartbeat carries the UID, the start time, a leaving flag, the
// node's priority, whether it is master and its term, and the node's keys
// with the keys it masters: the whole key set on a new connection and
// after a change, only its version otherwise. The repository's
// docs/wire.md describes every field.
//
// # Choosing Interval and WaitTimeout
//
// [Options].Interval is the heartbeat period (default 100ms) and
// [Options].WaitTimeout the silence after which a peer is dead (default
// 3*Interval). Crashes and graceful stops are noticed at once whatever
// their values; WaitTimeout only bounds how long a paused, hung or
// partitioned master keeps its role in the others' eyes, and so how long
// the cluster may have no master.
//
//   - A shorter WaitTimeout fails over sooner after a hang, but a peer that
//     is merely slow (a long GC pause, an overloaded machine, a congested
//     network) for longer than WaitTimeout is counted dead, and mastership
//     moves while it still works: keep WaitTimeout well above the longest
//     stall you expect, and at least 3*Interval so that one lost heartbeat
//     does not count.
//   - A shorter Interval costs one small frame per peer per Interval on
//     each connection; 100ms is cheap for clusters of a few dozen nodes.
//   - A process that was paused (SIGSTOP, a frozen VM) or starved for
//     longer than WaitTimeout-M/2 since its last heartbeat (its peers may
//     have counted it dead) notices it when it resumes, gives up its
//     mastership and claims nothing until it has heard from its peers
//     again and each has answered a frame sent since. [Msc.IsMaster] reads
//     the monotonic clock: it answers false from WaitTimeout-M/2 after the
//     last heartbeat, even before the elector has run again, and so does
//     the Err of a [Msc.RunAsMaster] context. A suspended machine is the
//     exception: Linux stops the monotonic clock during a suspend, so
//     IsMaster may still answer true, as before the suspend, until the
//     elector's first turn after it (a timer or a peer's frame: within an
//     Interval), which notices the suspend by the wall clock. Work
//     that must never run twice should use [Options].Quorum and fencing
//     terms (below).
//
// # Beyond the Node package
//
// These are opt-in where they change the Node package's rule:
//
//   - [Msc.RunAsMaster] runs a function each time the node becomes master,
//     with a context cancelled the moment mastership is lost or the node
//     stops; [Msc.Watch] returns a channel holding the current state, then
//     the newest change.
//   - [Msc.Term] is a fencing token: it strictly increases each time
//     mastership passes to another node. Pass it with each write to a store
//     that refuses writes with a lower term than one it has seen, and a
//     deposed master's late writes are refused.
//   - [Options].Quorum: a claim is a mastership only once a quorum of
//     nodes acknowledged it, each at most one claim per key at a time, and
//     a master's lease ends before anyone else can be acknowledged: with a
//     majority quorum there are never two masters at one instant, and no
//     term is used twice (see the field's documentation for its timing).
//     It assumes one live process per voter: [Options].Voters names the
//     voters (a UID counts once), and without it a node that sees more
//     than 2*Quorum-1 live voters reports [ErrQuorum].
//   - [Options].Voters also scales past the full mesh: 3 or 5 voters
//     connect to each other, every other node is a member that connects
//     to the voters only. The global master is a voter; members master
//     keys, which the voters assign among all live holders and relay. A
//     member that hears from no voter is master of nothing.
//   - [Options].Observer makes a node that knows the master but never is
//     one; [Msc.SetPriority] moves mastership at run time;
//     [Options].Meta and [Msc.MasterMeta] tell every node where the
//     master serves.
//   - [Options].Priority puts preferred nodes first; [Options].Sticky keeps
//     mastership with a live master when an older node comes back, so that
//     it does not move twice.
//   - [Options].Balance spreads the keys over the nodes by rendezvous
//     hashing; [Msc.MasterKeys] lists the keys a node masters.
//   - [Options].AcceptKeys and [Msc.SetKey] rotate the cluster's key
//     without downtime.
//   - [Options].TLS replaces the passphrase by mutual TLS 1.3:
//     certificates verified both ways, rotated through the config's
//     callbacks; a refused certificate is reported as [ErrCertificate],
//     and [PeerStatus].CertSubject shows each peer's.
//   - [Msc.Healthy] is for a readiness probe.
//   - [Options].Discover finds the peers instead of [Msc.AddServer]: [DNS]
//     (a Kubernetes headless Service, A/AAAA or SRV records), [Static] (a
//     list from an environment variable), or a function of your own. A
//     node recognises its own address in the answer by the handshake.
//   - [Msc.Handler] serves /status, /healthz, /master and /metrics (the
//     Prometheus text format); [Msc.PublishExpvar] publishes the same
//     figures with package expvar.
//   - Package github.com/msc-go/msc/msctest runs a cluster in a test, with
//     partitions, kills, pauses and restarts.
//
// # Callbacks and goroutines
//
// Callbacks given to [Msc.OnChange], [Msc.OnError] and queued
// [Msc.DoIfMaster] callbacks run one at a time, in order, on a goroutine of
// the node, and never after [Msc.Stop] returns. Stop waits for every
// goroutine the node started. Several nodes can run in one process (tests
// do, on listeners on 127.0.0.1:0 passed as [Options].Listener).
package msc
