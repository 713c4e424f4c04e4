package msctest

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy relays the connections one node dials to another, on loopback.
// Its gate holds the bytes in both directions (a partition, a pause);
// kill resets its connections and refuses new ones (a killed node).
type proxy struct {
	ln   net.Listener
	gate gate
	down atomic.Bool // refuse (reset) new connections

	// mu guards the fields below it.
	mu     sync.Mutex
	target string
	pairs  map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and each connection's relays
}

func (c *Cluster) newProxy(target string) *proxy {
	p := &proxy{ln: c.listen(), target: target, pairs: make(map[*pair]struct{})}
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) run() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		pp := &pair{a: a, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			a.Close()
			return
		}
		p.pairs[pp] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(pp)
	}
}

// serve connects pp to the target, once the gate is open, and relays both
// ways until both directions end.
func (p *proxy) serve(pp *pair) {
	defer p.wg.Done()
	defer func() {
		pp.close(false)
		p.mu.Lock()
		delete(p.pairs, pp)
		p.mu.Unlock()
	}()
	// Across a partition, the connection hangs until it heals.
	if p.down.Load() || !p.gate.wait(pp.done) || p.down.Load() {
		pp.close(true)
		return
	}
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	b, err := net.DialTimeout("tcp", target, time.Second)
	if err != nil {
		pp.close(true) // the node is down: refused
		return
	}
	if !pp.setB(b) {
		b.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.relay(pp, pp.a, b)
	}()
	go func() {
		defer wg.Done()
		p.relay(pp, b, pp.a)
	}()
	wg.Wait()
}

// relay copies src to dst, holding each chunk while the gate is closed. At
// the end of src it half-closes dst; on an error it closes the pair.
func (p *proxy) relay(pp *pair, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate.wait(pp.done) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				pp.close(false)
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			if pp.halfClosed.Add(1) == 2 {
				pp.close(false)
			}
			return
		}
		if err != nil {
			pp.close(false)
			return
		}
	}
}

// kill resets every connection and refuses new ones, until revive.
func (p *proxy) kill() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for pp := range p.pairs {
		pp.close(true)
	}
}

func (p *proxy) revive() { p.down.Store(false) }

func (p *proxy) retarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// close ends the proxy and waits for its goroutines.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for pp := range p.pairs {
		pp.close(false)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// pair is one relayed connection: a from the dialing node, b to the
// dialed one (nil until connected).
type pair struct {
	a          net.Conn
	done       chan struct{} // closed with the pair
	halfClosed atomic.Int32  // directions ended by EOF

	mu     sync.Mutex
	b      net.Conn
	closed bool
}

// setB records the connection to the target; false if the pair is closed.
func (pp *pair) setB(b net.Conn) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.closed {
		return false
	}
	pp.b = b
	return true
}

// close closes both connections; reset: with a TCP reset, as the kernel of
// a killed process does to a connection with data unread.
func (pp *pair) close(reset bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.closed {
		return
	}
	pp.closed = true
	close(pp.done)
	for _, c := range []net.Conn{pp.a, pp.b} {
		if c == nil {
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok && reset {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// gate holds the bytes of a link while it is closed.
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
