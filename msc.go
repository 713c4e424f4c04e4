package msc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// Msc is one node of a cluster. Create it with [New], configure its peers
// with [Msc.AddServer], then call [Msc.Start]. Its methods are safe for
// concurrent use.
//
// The goroutines of a node, who starts each, and how each ends (Stop
// waits for all of them through wg, except where said):
//
//   - the elector (elector.go, run): started by Start; ends when ctx is
//     cancelled (Stop, after the leave).
//   - the dispatcher (dispatch.go, run), which runs OnChange, OnError and
//     queued DoIfMaster callbacks: started by Start; ends when Stop calls
//     disp.stop, after the callbacks queued before.
//   - the accept loop (server.go): started by Start; ends when Stop closes
//     the listener. It starts one handler per inbound connection (conn.serve),
//     which ends when the connection does (Stop cancels ctx, which closes
//     it).
//   - one client per configured server (client.go, runClient): started by
//     Start or AddServer; ends when its ctx is cancelled (RemoveServer or
//     Stop), and runs conn.serve for each connection it dials.
//   - a connection's flusher (outbox.go, flush), only while a peer's
//     socket buffer is full: started by a write that the socket did not
//     take whole; ends when the queue is empty or the socket closed;
//     conn.serve waits for it before returning. There is no writer
//     goroutine: the elector sends on every connection (conn.sendBeat).
//   - discovery (discover.go, runDiscover), with Options.Discover: started
//     by Start; ends with ctx.
//   - RunAsMaster's fn: started by RunAsMaster in the caller's call, which
//     waits for it; Stop waits (at most WaitTimeout) for those running.
//   - DoIfMaster's timers (queue.go) and Watch's context.AfterFunc
//     (watch.go) run briefly on the runtime's goroutines; Stop stops the
//     timers, and both only hand work to the dispatcher or close a channel.
type Msc struct {
	// Set by New, read-only after.
	cfg   *config
	start int64         // StartTime, Unix nanoseconds: the election order
	inc   uint64        // incarnation: random per Msc, tells a restart with the same UID
	fresh time.Duration // freshFor(Interval, WaitTimeout)

	// Life cycle. ctx is cancelled by Stop (after the leave); wg counts
	// the goroutines listed above.
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // elector, accept loop, clients, inbound handlers, discovery
	started  atomic.Bool    // Start has run: the elector exists
	leaving  atomic.Bool    // Stop has begun
	stopDone chan struct{}  // closed when the first Stop has finished

	// mu guards the node's state, its listener and its servers.
	mu      sync.Mutex
	state   int // stateNew, stateRunning, stateStopped
	ln      net.Listener
	clients map[string]*client

	// The elector. Before Start, call runs functions on el under elMu,
	// which Start takes too, before mu (the functions may take mu); from
	// Start on, only the elector's goroutine touches el, and the others
	// reach it through events.
	elMu   sync.Mutex
	el     *elector
	events chan event

	// Written by the elector, read lock-free by everyone: the hot read
	// path (IsMaster, Master, Term…) and the heartbeat the connections
	// send.
	snap atomic.Pointer[core.Snapshot]
	beat atomic.Pointer[outBeat]
	// lastSent is when (mono) the elector last sent the heartbeat on
	// every connection (core.sent). IsMaster answers false, and a new
	// connection's first frame claims nothing, while it is older than
	// fresh: the peers may have counted this node dead, and its state is
	// stale until the elector has run.
	lastSent atomic.Int64
	// lateAt is when (mono) a goroutine of the node last ran late: the
	// node is overloaded for a while after (overload.go).
	lateAt atomic.Int64
	// downAt is when (Unix ns) the snapshot last stopped making this node
	// the global master; 0 if never (check dates its workers' step-downs
	// by it: testhook.SteppedDown).
	downAt atomic.Int64

	// Connections: the keys they seal with, their numbering, the dial
	// limit and the clients' wake-ups.
	suite   atomic.Pointer[suite] // this node's algorithm and keys; SetKey swaps it
	connSeq atomic.Uint64         // numbers the connections (connID)
	// keyLists: the peers' key lists the connections decoded, shared
	// (keyIntern.lists).
	keyLists keyLists
	// dialing holds a token for each of this node's dials whose
	// handshake has not finished (maxDialing at most).
	dialing chan struct{}
	// lastWake is when wakeClients last woke the clients (mono).
	lastWake atomic.Int64
	silent   atomic.Bool // test hook: stop sending heartbeats

	// certMu guards certRefused: the peers (peerRef) whose certificate
	// refusal has been reported since a handshake with them last
	// succeeded.
	certMu      sync.Mutex
	certRefused map[string]struct{}

	// Traffic counters, for Status; met for Handler and PublishExpvar.
	framesIn, framesOut, bytesIn, bytesOut atomic.Uint64
	dials                                  atomic.Uint64
	// entriesIn: voters' table entries decoded (on a member: the work
	// a convergence costs it; BenchmarkMembers reports the sum).
	entriesIn atomic.Uint64
	met       metrics
	// meshWarned: the warning that a full mesh is large was logged
	// (warnMesh).
	meshWarned atomic.Bool

	disc   discovery  // what Options.Discover found
	disp   dispatcher // runs OnChange and OnError callbacks and DoIfMaster queues
	queues queues     // DoIfMaster queues (their own lock)

	// cbMu guards the callbacks and the Watch channels. The elector takes
	// it (notifyChanges, report), so nobody holding it may wait for the
	// elector.
	cbMu     sync.Mutex
	onError  []func(error)
	onChange []func(Change)
	watchers map[*watcher]struct{} // nil once stopped

	// runMu guards runs: the done channels of the RunAsMaster functions
	// running, with their keys (Stop and RemoveKey wait for them).
	runMu sync.Mutex
	runs  map[chan struct{}]string

	// errMu guards OnError's rate limit. The elector takes it (report).
	errMu    sync.Mutex
	errSeen  map[string]time.Time // per peer and cause: when last reported
	errBurst map[string]*burst    // per cause, all peers: the cap on a flood
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// New validates and copies the options and returns a node that is not yet
// started. It returns ErrEmptyKey, ErrUnknownAlgorithm or ErrInvalidOption
// (wrapped, naming the option) for bad options, ErrQuorum for a Quorum
// that is not a majority of Options.Voters, and an error wrapping
// ErrInvalidKey for a bad key in Options.Keys. It does not block: it
// neither listens nor dials (Start does).
func New(opts Options) (*Msc, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	rand.Read(b[:])
	m := &Msc{
		cfg:      cfg,
		start:    cfg.StartTime.UnixNano(),
		inc:      binary.BigEndian.Uint64(b[:]),
		clients:  make(map[string]*client),
		errSeen:  make(map[string]time.Time),
		watchers: make(map[*watcher]struct{}),
		events:   make(chan event, 256),
		dialing:  make(chan struct{}, maxDialing),
		stopDone: make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.fresh = freshFor(cfg.Interval, cfg.WaitTimeout)
	m.snap.Store(&core.Snapshot{KI: core.NoKeys})
	// The core exists from now on; it elects from Start. Until then the
	// methods that change it (AddKey, SetPriority, SetMeta) run on it
	// directly, under mu (call).
	m.el = newElector(m, core.New(m.coreConfig(mono()), cfg.Keys, cfg.Meta))
	m.el.m = m
	m.suite.Store(cfg.suite)
	m.lastWake.Store(mono() - int64(cfg.Interval))
	m.disp.init()
	m.queues.init(m)
	return m, nil
}

// Start listens, dials the configured servers and begins electing. A node
// with no servers is master as soon as Start returns; otherwise it claims
// mastership only once it has heard from, or failed to reach, every
// server, or after WaitTimeout (up to 4*WaitTimeout while a server's
// connection is up and its state has not come). It does not wait for the peers: the node
// elects on goroutines of its own until Stop. It returns ErrStarted if
// the node is running already, ErrStopped after Stop, and the listener's
// error, wrapped, if it cannot listen on Options.Host and Port.
func (m *Msc) Start() error {
	m.elMu.Lock() // before mu: see call
	defer m.elMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateRunning:
		return ErrStarted
	case stateStopped:
		return ErrStopped
	}
	ln := m.cfg.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(m.cfg.Host, fmt.Sprint(m.cfg.Port)))
		if err != nil {
			return fmt.Errorf("msc: listen: %w", err)
		}
	}
	m.ln = ln
	m.state = stateRunning
	servers := make([]string, 0, len(m.clients))
	for id := range m.clients {
		servers = append(servers, id)
	}
	if m.cfg.Discover != nil {
		servers = append(servers, discoverWait) // no claim before its first answer
	}
	now, wall := clocks()
	m.lastSent.Store(now)
	if len(m.clients) > meshWarnPeers && len(m.cfg.Voters) == 0 {
		m.warnMesh(len(m.clients), "servers")
	}
	e := m.el
	e.core.WallClock(now, wall)
	e.core.Start(now, servers)
	e.apply() // the first snapshot, published before Start returns
	m.started.Store(true)
	m.wg.Add(3)
	go m.disp.run(&m.wg)
	go e.run()
	go m.acceptLoop(ln)
	for _, cl := range m.clients {
		m.startClient(cl)
	}
	if m.cfg.Discover != nil {
		m.wg.Add(1)
		go m.runDiscover()
	}
	m.cfg.Logger.Info("msc: started", "uid", m.cfg.UID, "addr", ln.Addr().String(), "servers", len(servers))
	return nil
}

// Stop leaves the cluster. First it resigns every mastership while staying
// a member, so that no peer takes over yet, cancels the contexts of
// RunAsMaster functions and waits (at most WaitTimeout) for them to
// return; then it tells the peers it is leaving, so they re-elect at once;
// then it closes every connection and the listener, and waits for all of
// its goroutines, including a callback that is running. It blocks until
// all of that is done: at most about 2*WaitTimeout, plus the time a
// callback takes to return. A stopped node cannot be started again. Do
// not call Stop from a callback of this node (OnChange, OnError,
// DoIfMaster): it would wait for that callback to return; call go m.Stop()
// there.
//
// The call that stops the node returns nil, or an error wrapping
// ErrRunTimeout if a RunAsMaster function had not returned within
// WaitTimeout (the node stopped all the same). Stop is safe to call more
// than once, also at once from several goroutines: every other call waits
// until the node has stopped and returns ErrStopped, so that defer m.Stop()
// beside an explicit Stop is harmless.
func (m *Msc) Stop() error {
	m.mu.Lock()
	switch m.state {
	case stateStopped:
		// Stopped, or stopping on another goroutine: wait for it to end.
		m.mu.Unlock()
		<-m.stopDone
		return ErrStopped
	case stateNew:
		m.state = stateStopped
		m.mu.Unlock()
		m.cancel()
		m.queues.stop()
		m.closeWatchers()
		close(m.stopDone)
		return nil
	}
	m.state = stateStopped
	ln := m.ln
	m.mu.Unlock()
	defer close(m.stopDone)

	m.leaving.Store(true)
	ln.Close()
	// Resign: give up every mastership (the peers hear it at once) but stay
	// a member, so that nobody takes over while the work this node runs as
	// master (RunAsMaster) winds down.
	m.call(func(e *elector) {
		e.core.SetResign(mono())
		e.apply()
	})
	var err error
	if !m.waitRuns(m.cfg.WaitTimeout) {
		err = fmt.Errorf("%w: stopped while it still runs", ErrRunTimeout)
	}
	// Leave: the elector publishes a leaving heartbeat and sends it on
	// every connection; peers re-elect at once.
	drained := make(chan struct{})
	m.call(func(e *elector) {
		e.core.SetLeave(mono()) // the leaving heartbeat, sent on every connection
		e.apply()
		if len(e.links) == 0 {
			close(drained)
			return
		}
		e.drained = drained
	})
	t := time.NewTimer(m.cfg.WaitTimeout)
	select {
	case <-drained:
	case <-t.C:
	}
	t.Stop()
	m.queues.stop()
	m.cancel()
	m.disp.stop()
	m.wg.Wait()
	m.closeWatchers()
	m.cfg.Logger.Info("msc: stopped", "uid", m.cfg.UID)
	return err
}

// abort drops every connection without the leave message, as if the
// process had been killed. Tests use it.
func (m *Msc) abort() {
	m.mu.Lock()
	running := m.state == stateRunning
	if m.state == stateStopped {
		m.mu.Unlock()
		<-m.stopDone
		return
	}
	defer close(m.stopDone)
	m.state = stateStopped
	ln := m.ln
	m.mu.Unlock()
	m.leaving.Store(true)
	m.snap.Store(&core.Snapshot{KI: core.NoKeys})
	if running {
		ln.Close()
	}
	m.queues.stop()
	m.cancel()
	m.disp.stop()
	m.wg.Wait()
	// Again: the elector may have published a snapshot (still running,
	// maybe master) before it saw the cancel.
	m.snap.Store(&core.Snapshot{KI: core.NoKeys})
	m.closeWatchers()
}

// call runs fn on the elector and waits for it. Before Start it runs fn
// at once (nothing is elected or sent until Start). It returns false if
// the node is stopped.
func (m *Msc) call(fn func(*elector)) bool {
	if !m.started.Load() {
		m.elMu.Lock()
		if !m.started.Load() {
			defer m.elMu.Unlock()
			m.mu.Lock()
			stopped := m.state == stateStopped
			m.mu.Unlock()
			if stopped {
				return false // stopped before Start
			}
			fn(m.el) // it may take mu (Status reads Addr)
			return true
		}
		m.elMu.Unlock() // started meanwhile
	}
	done := make(chan struct{})
	taken := new(atomic.Bool) // set by whichever of the elector and this call gets it first
	select {
	case m.events <- event{kind: evFunc, fn: fn, done: done, taken: taken}:
	case <-m.ctx.Done():
		return false
	}
	select {
	case <-done:
		return true
	case <-m.ctx.Done():
		if taken.CompareAndSwap(false, true) {
			return false // the elector will not run fn
		}
		<-done // it is running fn: let it finish, so that fn's writes are seen
		return true
	}
}

// elect sends an event to the elector.
func (m *Msc) elect(ev event) {
	ev.at = mono()
	select {
	case m.events <- ev:
	case <-m.ctx.Done():
	}
}

// Addr returns the address the node listens on, or nil before Start. It
// does not block.
func (m *Msc) Addr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// UID returns this node's unique id (Options.UID, or the one New drew).
// It does not block.
func (m *Msc) UID() string { return m.cfg.UID }
