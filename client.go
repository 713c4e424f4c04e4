package msc

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// client dials one configured server and keeps a connection to it,
// reconnecting with capped exponential backoff.
//
// Its goroutine (run) is started by Start or AddServer and ends when ctx
// is cancelled (RemoveServer or Stop); m.wg waits for it.
type client struct {
	id     string
	cfg    ServerConfig
	suite  atomic.Pointer[suite] // the server's own key; nil: the node's (Msc.suite)
	tls    *tls.Config           // with Options.TLS: the config to dial it with
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // cap 1: retry now instead of waiting out the backoff

	discovered bool        // added by Options.Discover: stops once it finds this node
	up         atomic.Bool // a connection is up (Options.Discover drops only servers not up)
	member     atomic.Bool // it leads to a member this node keeps no connection to (Options.Voters)
}

// Backoff bounds for reconnecting: from minBackoff, doubling, up to
// WaitTimeout (half to full of it, at random), so that after an outage a
// cluster is connected again within about WaitTimeout. A peer that comes
// back is dialed at once anyway: it dials this node, and a peer heard from
// wakes every client (Msc.wakeClients).
const minBackoff = 10 * time.Millisecond

// maxDialing is how many connections a node dials and sets up at once.
const maxDialing = 8

func (m *Msc) runClient(cl *client) {
	defer m.wg.Done()
	backoff := minBackoff
	failing, connected := false, false
	for cl.ctx.Err() == nil && !m.leaving.Load() {
		release, ok := m.dialTurn(cl.ctx)
		if !ok {
			return
		}
		m.dials.Add(1)
		d := net.Dialer{Timeout: m.patience(m.cfg.WaitTimeout)}
		nc, err := d.DialContext(cl.ctx, "tcp", cl.cfg.addr())
		if err == nil {
			began := time.Now()
			c := newConn(m, nc, cl.ctx, cl.id, m.dialSuite(cl))
			c.tlsConf = cl.tls
			c.setUp = release
			if connected {
				m.met.reconnects.Add(1)
			}
			connected = true
			cl.up.Store(true)
			var heard bool
			heard, err = c.serve()
			cl.up.Store(false)
			if cl.discovered && c.filter.peerUID == m.cfg.UID && c.filter.peerInc == m.inc {
				m.dialedSelf(cl) // a discovered address of this node: no need to dial it again
				return
			}
			if cl.member.Load() {
				// A member, and this node a member too, or a voter
				// (which members dial): not dialed again. A discovered
				// address is dropped; a server added by the program
				// waits for RemoveServer or Stop.
				m.cfg.Logger.Debug("msc: server is a member: not dialed", "peer", cl.id, "uid", c.filter.peerUID)
				if cl.discovered {
					m.dialedMember(cl)
					return
				}
				<-cl.ctx.Done()
				return
			}
			if heard {
				failing = false
				if time.Since(began) > m.cfg.WaitTimeout {
					backoff = minBackoff
				}
			} else {
				m.elect(event{kind: evUnreachable, server: cl.id})
			}
			if cl.ctx.Err() != nil || m.leaving.Load() {
				return
			}
			m.connError(c, err)
			if heard && m.linked(c.filter.peerUID, c.filter.peerInc) {
				// One connection per pair: the peer's is up. Dial again
				// when it ends (the elector wakes this client); look now
				// and then, in case a wake-up was missed.
				backoff = minBackoff
				if !m.park(cl, c.filter.peerUID, c.filter.peerInc) {
					return
				}
				continue
			}
		} else {
			release()
			if cl.ctx.Err() != nil {
				return
			}
			m.elect(event{kind: evUnreachable, server: cl.id})
			if !failing {
				// Once per outage, not once per attempt.
				m.report(&PeerError{Peer: cl.id, Err: fmt.Errorf("%w: %v", ErrUnreachable, err)})
			}
			failing = true
		}
		// Half to full backoff, at random: clients that failed together
		// do not retry together.
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-t.C:
		case <-cl.wake:
			t.Stop()
		case <-cl.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, max(m.cfg.WaitTimeout, minBackoff))
	}
}

// dialTurn waits for this node's turn to dial and set up a connection: at
// most maxDialing at a time, so that a cluster that starts at once dials
// in waves its CPUs can take, instead of all at once and timing out under
// the load. release gives the turn back (once the handshake has ended).
// It waits at most WaitTimeout (longer while the node is overloaded:
// patience), then goes without a turn: dials to peers that do not
// answer, each holding a turn up to WaitTimeout, hold back the others that
// long at most. ok is false if ctx ended.
func (m *Msc) dialTurn(ctx context.Context) (release func(), ok bool) {
	turn := time.NewTimer(m.patience(m.cfg.WaitTimeout))
	defer turn.Stop()
	select {
	case m.dialing <- struct{}{}:
		return sync.OnceFunc(func() { <-m.dialing }), true
	case <-turn.C:
		return func() {}, true
	case <-ctx.Done():
		return nil, false
	}
}

// dialSuite returns the suite of a connection dialed to cl. It seals with
// the server's own key, if it has one, else with the node's; either way it
// also opens with the node's accepted keys, so that a listener that
// answers in its own key, while it rotates, is heard.
func (m *Msc) dialSuite(cl *client) *suite {
	node := m.suite.Load()
	own := cl.suite.Load()
	if own == nil {
		return node
	}
	if own.id != node.id {
		return own // another algorithm: the node's keys do not apply
	}
	return own.withKeys(node.accept)
}

// serverIDs returns the ids of the configured servers.
func (m *Msc) serverIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.clients))
	for id := range m.clients {
		ids = append(ids, id)
	}
	return ids
}

// wakeClients makes every client in backoff retry now.
//
// At most once per Interval: when many peers come up at once (a cluster
// starting), waking every client for each of them would make them all
// retry together, again and again.
func (m *Msc) wakeClients() {
	now := mono()
	last := m.lastWake.Load()
	if now-last < int64(m.cfg.Interval) || !m.lastWake.CompareAndSwap(last, now) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cl := range m.clients {
		select {
		case cl.wake <- struct{}{}:
		default:
		}
	}
}

// park waits while the peer (uid, inc) has a connection up; it returns
// false when the client is to end.
func (m *Msc) park(cl *client, uid string, inc uint64) bool {
	t := time.NewTimer(4*m.cfg.WaitTimeout + time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			t.Reset(4*m.cfg.WaitTimeout + time.Second)
		case <-cl.wake:
		case <-cl.ctx.Done():
			return false
		}
		if !m.linked(uid, inc) {
			return true
		}
	}
}

// wakeClient makes the client of server id dial now.
func (m *Msc) wakeClient(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cl := m.clients[id]; cl != nil {
		select {
		case cl.wake <- struct{}{}:
		default:
		}
	}
}

// keepApart marks the client of server id as leading to a member.
func (m *Msc) keepApart(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cl := m.clients[id]; cl != nil {
		cl.member.Store(true)
	}
}

// linked reports whether the peer (uid, inc) has a connection up.
func (m *Msc) linked(uid string, inc uint64) bool {
	var ok bool
	m.call(func(e *elector) { ok = e.core.Linked(uid, inc) })
	return ok
}

// AddServer adds a peer to dial, under an id of the caller's choosing; it
// may be called before or after Start. It does not wait for the
// connection: the node dials in the background and reports a server it
// cannot reach to OnError (ErrUnreachable). It returns ErrServerExists for
// an id already added, ErrStopped after Stop, and for a bad config an
// error wrapping ErrInvalidOption (a Port out of range), ErrEmptyKey or
// ErrUnknownAlgorithm.
//
// A server added with neither Key nor Algorithm, or with the node's own
// algorithm and key (the passphrase given explicitly, as a port of a Node
// msc configuration does), uses the node's key, and follows it when SetKey
// changes it. A server with another Key or Algorithm keeps its own (see
// SetKey). With Options.TLS, Key and Algorithm must be empty.
func (m *Msc) AddServer(id string, c ServerConfig) error {
	if m.cfg.tls != nil && (c.Key != "" || c.Algorithm != "") {
		return fmt.Errorf("%w: server %q: Key and Algorithm must be empty with TLS", ErrInvalidOption, id)
	}
	return m.addServer(id, c, false)
}

// addServer adds a server; discovered: by Options.Discover.
func (m *Msc) addServer(id string, c ServerConfig, discovered bool) error {
	inherit := c.Key == "" && (c.Algorithm == "" || c.Algorithm == m.cfg.Algorithm)
	c, err := c.fill(m.cfg)
	if err != nil {
		return err
	}
	var s *suite // nil: the node's own, which SetKey may change
	if !inherit {
		if s, err = newSuite(c.Algorithm, c.Key); err != nil {
			return err
		}
	}
	m.mu.Lock()
	if m.state == stateStopped {
		m.mu.Unlock()
		return ErrStopped
	}
	if _, ok := m.clients[id]; ok {
		m.mu.Unlock()
		return ErrServerExists
	}
	if s != nil && s.sameKey(m.suite.Load()) {
		s = nil // the node's key, given explicitly
	}
	cl := &client{id: id, cfg: c, wake: make(chan struct{}, 1), discovered: discovered}
	cl.suite.Store(s)
	if m.cfg.tls != nil {
		cl.tls = dialTLSConfig(m.cfg.tls, c.Host)
	}
	m.clients[id] = cl
	running := m.state == stateRunning
	if running {
		m.startClient(cl)
	}
	m.mu.Unlock()
	if running {
		m.call(func(e *elector) { e.core.AddServer(mono(), id) })
	}
	return nil
}

// startClient starts a client's goroutine; m.mu is held.
func (m *Msc) startClient(cl *client) {
	cl.ctx, cl.cancel = context.WithCancel(m.ctx)
	m.wg.Add(1)
	go m.runClient(cl)
}

// RemoveServer stops dialing the server with this id and closes the
// connection to it. The peer stays live if it keeps dialing this node:
// remove a node from a cluster by removing it everywhere, or stopping it.
// It does not wait for the connection to close. It returns
// ErrUnknownServer for an id never added (or removed already), and
// ErrStopped after Stop.
func (m *Msc) RemoveServer(id string) error {
	m.mu.Lock()
	cl, ok := m.clients[id]
	if !ok {
		st := m.state
		m.mu.Unlock()
		if st == stateStopped {
			return ErrStopped
		}
		return ErrUnknownServer
	}
	delete(m.clients, id)
	running := m.state == stateRunning
	m.mu.Unlock()
	if running {
		cl.cancel()
		m.call(func(e *elector) {
			e.core.RemoveServer(mono(), id)
			e.apply()
		})
	}
	return nil
}
