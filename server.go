package msc

import (
	"errors"
	"net"
	"time"
)

// MaxInbound is the most inbound connections a node serves at once; more
// are closed at once. A full mesh of n nodes needs n-1; a voter
// (Options.Voters) one per member, and two for a while for a member that
// redials before the voter has seen its old connection end (at 1,024,
// the voters of 997 members in one process refused members' redials
// while they converged, and counted those members dead).
const MaxInbound = 4096

// acceptLoop accepts inbound connections until the listener is closed.
// It is started by Start and waited for by Stop; each connection's handler
// is a goroutine it starts and m.wg waits for.
func (m *Msc) acceptLoop(ln net.Listener) {
	defer m.wg.Done()
	slots := make(chan struct{}, MaxInbound)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A temporary failure, such as running out of file
			// descriptors: back off and try again.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.report(&PeerError{Peer: "listener", Err: err})
			select {
			case <-time.After(delay):
			case <-m.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		select {
		case slots <- struct{}{}:
		default:
			m.report(&PeerError{Peer: nc.RemoteAddr().String(), Err: errTooManyInbound})
			nc.Close()
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer func() { <-slots }()
			c := newConn(m, nc, m.ctx, "", m.suite.Load())
			_, err := c.serve()
			m.connError(c, err)
		}()
	}
}

var errTooManyInbound = errors.New("msc: too many inbound connections")
