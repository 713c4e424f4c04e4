// Package relay is a TCP relay on loopback for the tests of msc and for
// package msctest. A node dials the relay as if it were its peer; the
// relay forwards each connection to its target, and a test can hold the
// bytes of a direction (a partition, a pause), delay them (a slow link),
// cut the link (resetting its connections, as the kernel of a killed
// process does), or read and rewrite each stream (a man in the middle).
package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Dir is a direction of a relayed connection.
type Dir int

const (
	Up   Dir = 0 // from the dialer to the target
	Down Dir = 1 // from the target back to the dialer
)

// Filter stands between a relayed connection and the relay: the relay
// reads, from the reader it returns, what it forwards in direction d of
// connection conn (0 for the first connection accepted, then 1, ...). It
// may record, drop, rewrite or add bytes; it returns src to forward the
// stream as it is. Its reader runs on the goroutine of that direction.
type Filter func(conn int, d Dir, src io.Reader) io.Reader

// Relay forwards the connections made to its listener to its target.
// Its methods are safe for concurrent use.
type Relay struct {
	ln     net.Listener
	gates  [2]gate         // by Dir: hold the bytes of that direction
	delay  [2]atomic.Int64 // by Dir: nanoseconds added to each chunk
	cut    atomic.Bool     // reset the connections, and new ones at once
	filter atomic.Pointer[Filter]

	// mu guards the fields below it.
	mu       sync.Mutex
	target   string
	pairs    map[*pair]struct{}
	accepted int
	closed   bool
	wg       sync.WaitGroup // the accept loop and each connection's goroutines
}

// Listen starts a relay on a free port of 127.0.0.1 that forwards to
// target (host:port).
func Listen(target string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, target: target, pairs: make(map[*pair]struct{})}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr returns the address the relay listens on.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

// Port returns the port the relay listens on.
func (r *Relay) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Hold holds the bytes of direction d, on every connection, or releases
// them. As a partition does, it loses none: what was sent arrives once
// released, unless an end has closed the connection by then. While
// either direction is held, a new connection hangs before the relay
// dials the target.
func (r *Relay) Hold(d Dir, held bool) { r.gates[d].set(held) }

// Delay adds delay to every chunk of direction d read from now on; the
// order of the bytes is kept.
func (r *Relay) Delay(d Dir, delay time.Duration) { r.delay[d].Store(int64(delay)) }

// Cut resets every connection and refuses new ones with a reset, as the
// kernel of a killed process does, until Cut(false).
func (r *Relay) Cut(cut bool) {
	r.cut.Store(cut)
	if !cut {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.pairs {
		p.close(true)
	}
}

// SetTarget makes new connections go to addr (host:port).
func (r *Relay) SetTarget(addr string) {
	r.mu.Lock()
	r.target = addr
	r.mu.Unlock()
}

// SetFilter sets the filter of the connections accepted from now on; nil
// forwards them as they are.
func (r *Relay) SetFilter(f Filter) {
	if f == nil {
		r.filter.Store(nil)
		return
	}
	r.filter.Store(&f)
}

// Accepted returns how many connections the relay has accepted.
func (r *Relay) Accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

// Close closes the listener and every connection, and waits for the
// relay's goroutines. It is safe to call more than once.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	r.ln.Close()
	for p := range r.pairs {
		p.close(false)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		a, err := r.ln.Accept()
		if err != nil {
			return
		}
		p := &pair{a: a, done: make(chan struct{})}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			a.Close()
			return
		}
		p.n = r.accepted
		r.accepted++
		r.pairs[p] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serve(p)
	}
}

// serve dials the target for p, once no direction is held, and relays
// both directions until both end.
func (r *Relay) serve(p *pair) {
	defer r.wg.Done()
	defer func() {
		p.close(false)
		r.mu.Lock()
		delete(r.pairs, p)
		r.mu.Unlock()
	}()
	if r.cut.Load() || !r.gates[Up].wait(p.done) || !r.gates[Down].wait(p.done) || r.cut.Load() {
		p.close(true)
		return
	}
	r.mu.Lock()
	target := r.target
	r.mu.Unlock()
	b, err := net.DialTimeout("tcp", target, time.Second)
	if err != nil {
		p.close(true) // the target is down: refused
		return
	}
	if !p.setB(b) {
		b.Close()
		return
	}
	var up, down io.Reader = p.a, b
	if f := r.filter.Load(); f != nil {
		up, down = (*f)(p.n, Up, p.a), (*f)(p.n, Down, b)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.pump(p, Up, up, b)
	}()
	go func() {
		defer wg.Done()
		r.pump(p, Down, down, p.a)
	}()
	wg.Wait()
}

// chunk is bytes read, due to be written at a time.
type chunk struct {
	b   []byte
	due time.Time
}

// pump copies src to dst in order, holding each chunk while direction d
// is held and delaying it by d's delay. At the end of src it half-closes
// dst, and closes the pair once both directions have ended; on an error
// it closes the pair.
func (r *Relay) pump(p *pair, d Dir, src io.Reader, dst net.Conn) {
	q := make(chan chunk, 1024)
	written := make(chan struct{})
	go func() { // the writer; pump waits for it
		defer close(written)
		for c := range q {
			if wait := time.Until(c.due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-p.done:
					return
				}
			}
			if _, err := dst.Write(c.b); err != nil {
				p.close(false)
				return
			}
		}
	}()
	eof := r.read(p, d, src, q)
	close(q)
	<-written
	if !eof {
		p.close(false)
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	if p.halfClosed.Add(1) == 2 {
		p.close(false)
	}
}

// read reads src into q until src ends (true) or fails, or the pair
// closes (false).
func (r *Relay) read(p *pair, d Dir, src io.Reader, q chan<- chunk) bool {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !r.gates[d].wait(p.done) {
				return false
			}
			c := chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(time.Duration(r.delay[d].Load()))}
			select {
			case q <- c:
			case <-p.done:
				return false
			}
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// pair is one relayed connection: a from the dialer, b to the target (nil
// until connected).
type pair struct {
	n          int // its number, in the order accepted
	a          net.Conn
	done       chan struct{} // closed with the pair
	halfClosed atomic.Int32  // directions ended by EOF

	// mu guards the fields below it.
	mu     sync.Mutex
	b      net.Conn
	closed bool
}

// setB records the connection to the target; false if the pair is closed.
func (p *pair) setB(b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.b = b
	return true
}

// close closes both connections; reset: with a TCP reset, as the kernel of
// a killed process does to a connection with data unread.
func (p *pair) close(reset bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	close(p.done)
	for _, c := range []net.Conn{p.a, p.b} {
		if c == nil {
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok && reset {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// gate holds the bytes of a direction while it is closed.
type gate struct {
	mu     sync.Mutex
	held   bool
	opened chan struct{} // closed when the gate opens
}

func (g *gate) set(held bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if held && !g.held {
		g.opened = make(chan struct{})
	}
	if !held && g.held {
		close(g.opened)
	}
	g.held = held
}

// wait returns true once the gate is open, false if done is closed first.
func (g *gate) wait(done <-chan struct{}) bool {
	g.mu.Lock()
	if !g.held {
		g.mu.Unlock()
		return true
	}
	opened := g.opened
	g.mu.Unlock()
	select {
	case <-opened:
		return true
	case <-done:
		return false
	}
}
