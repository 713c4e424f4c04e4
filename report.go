package msc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// OnError registers a callback for errors that happen in the background:
// a peer with a wrong key, garbage, an unreachable server. Errors about a
// peer are *PeerError. They are rate-limited: the same cause from the same
// peer is reported at most once a second. Callbacks run one at a time on a
// goroutine of the node, never after Stop returns. OnError does not block;
// a nil cb is ignored. The methods a program calls return their errors
// instead.
func (m *Msc) OnError(cb func(error)) {
	if cb == nil {
		return
	}
	m.cbMu.Lock()
	m.onError = append(m.onError, cb)
	m.cbMu.Unlock()
}

// errRateWindow is how often the same error from the same peer reaches
// OnError; errRateMax is how many errors of one cause, all peers
// together, reach it in a window, however many addresses a flood comes
// from.
const (
	errRateWindow = time.Second
	errRateMax    = 10
)

// report hands an error to the OnError callbacks, rate-limited.
func (m *Msc) report(err error) {
	m.met.countError(err)
	peerName := ""
	var pe *PeerError
	if errors.As(err, &pe) {
		peerName = pe.Peer
		if h, _, e := net.SplitHostPort(peerName); e == nil {
			peerName = h // inbound: one budget per host, not per ephemeral port
		}
	}
	cause := err
	for u := errors.Unwrap(cause); u != nil; u = errors.Unwrap(cause) {
		cause = u
	}
	now := time.Now()
	m.errMu.Lock()
	k := peerName + "\x00" + cause.Error()
	if last, ok := m.errSeen[k]; ok && now.Sub(last) < errRateWindow {
		m.errMu.Unlock()
		return
	}
	b := m.errBurst[cause.Error()]
	if b == nil {
		if m.errBurst == nil || len(m.errBurst) > 64 {
			m.errBurst = make(map[string]*burst)
		}
		b = &burst{}
		m.errBurst[cause.Error()] = b
	}
	if now.Sub(b.since) >= errRateWindow {
		b.since, b.n = now, 0
	}
	if b.n >= errRateMax {
		b.dropped++
		m.errMu.Unlock()
		return
	}
	b.n++
	if len(m.errSeen) > 1024 {
		for k, t := range m.errSeen { // only what no longer limits anything
			if now.Sub(t) >= errRateWindow {
				delete(m.errSeen, k)
			}
		}
	}
	m.errSeen[k] = now
	if b.dropped > 0 {
		err = fmt.Errorf("%w (and %d more like it not reported)", err, b.dropped)
		b.dropped = 0
	}
	m.errMu.Unlock()
	m.cbMu.Lock()
	cbs := m.onError
	m.cbMu.Unlock()
	m.cfg.Logger.Warn("msc: error", "peer", peerName, "err", err)
	if len(cbs) == 0 {
		return
	}
	m.disp.push(func() {
		for _, cb := range cbs {
			cb(err)
		}
	})
}

// burst counts the reports of one cause in the current errRateWindow.
type burst struct {
	since   time.Time
	n       int
	dropped int // not reported since the last report
}

// connError reports why a connection ended, unless it ended normally.
func (m *Msc) connError(c *conn, err error) {
	if err == nil || m.leaving.Load() || c.ctx.Err() != nil ||
		errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	if c.filter.beats > 0 && !errors.Is(err, ErrPeerSilent) && !isProtocolError(err) {
		// A reset or broken pipe from a peer that went away.
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %v", ErrPeerSilent, err)
	}
	if errors.Is(err, ErrPeerSilent) && time.Duration(mono()-m.lastSent.Load()) > m.cfg.WaitTimeout/2 {
		return // this process was paused, not the peer
	}
	if errors.Is(err, ErrCertificate) && !m.firstRefusal(c) {
		return // reported already: once, not once per redial
	}
	m.report(&PeerError{Peer: c.name, Err: err})
}

func isProtocolError(err error) bool {
	for _, e := range []error{ErrAuth, ErrBadFrame, ErrFrameTooLarge, ErrVersion, ErrAlgorithmMismatch, ErrCertificate} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
