package msc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
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
	suite  *suite // nil: the node's own (Msc.suite)
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // cap 1: retry now instead of waiting out the backoff
}

// Backoff bounds for reconnecting: the cap is max(WaitTimeout, maxBackoff).
// A peer that comes back is dialed at once anyway: it dials this node, and
// a peer heard from wakes every client (Msc.wakeClients).
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = 2 * time.Second
)

func (m *Msc) runClient(cl *client) {
	defer m.wg.Done()
	backoff := minBackoff
	failing := false
	for cl.ctx.Err() == nil && !m.leaving.Load() {
		d := net.Dialer{Timeout: m.cfg.WaitTimeout}
		nc, err := d.DialContext(cl.ctx, "tcp", cl.cfg.addr())
		if err == nil {
			began := time.Now()
			s := cl.suite
			if s == nil {
				s = m.suite.Load()
			}
			c := newConn(m, nc, cl.ctx, cl.id, s)
			var heard bool
			heard, err = c.serve()
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
		} else {
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
		backoff = min(2*backoff, max(m.cfg.WaitTimeout, maxBackoff))
	}
}
