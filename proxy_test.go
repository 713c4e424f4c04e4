package msc

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Network faults between real nodes: every directed link (node i dialing
// node j) goes through a TCP proxy on loopback that can drop (blackhole),
// delay or cut the traffic, in either direction.

// Directions of a link.
const (
	toListener = 0 // bytes from the dialing node to the dialed one
	toDialer   = 1 // bytes back
)

// linkProxy relays the connections that one node dials to another.
type linkProxy struct {
	ln     net.Listener
	target string
	// drop blackholes a direction: nothing is forwarded and the sockets
	// stay open. Like a router dropping packets, it holds the bytes back
	// (the sender's TCP keeps them) rather than losing part of a stream:
	// what was sent arrives, late, once the direction is restored, unless
	// an end has given up on the connection.
	drop  [2]atomic.Bool
	delay [2]atomic.Int64 // nanoseconds added to each chunk
	cut   atomic.Bool     // close every connection, and new ones at once
	tap   atomic.Pointer[func(dir int, b []byte)]

	mu     sync.Mutex
	pairs  map[*proxyPair]struct{}
	accept int // connections accepted
	closed bool
	wg     sync.WaitGroup
}

type proxyPair struct {
	a, b   net.Conn // a: the dialing node's side; b: the dialed node's side
	once   sync.Once
	closed atomic.Bool
}

func (pp *proxyPair) close() {
	pp.once.Do(func() {
		pp.closed.Store(true)
		pp.a.Close()
		pp.b.Close()
	})
}

func newLinkProxy(t testing.TB, target string) *linkProxy {
	p := &linkProxy{ln: listen(t), target: target, pairs: make(map[*proxyPair]struct{})}
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *linkProxy) port() int { return port(p.ln) }

func (p *linkProxy) run() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.cut.Load() {
			a.Close()
			continue
		}
		b, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			a.Close() // the node is down
			continue
		}
		pp := &proxyPair{a: a, b: b}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pp.close()
			return
		}
		p.pairs[pp] = struct{}{}
		p.accept++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.relay(pp, toListener, a, b)
		go p.relay(pp, toDialer, b, a)
	}
}

// relay copies src to dst in order, chunk by chunk, with the delay of its
// direction at the time each chunk is read. While its direction is
// dropped it reads nothing. When src ends, it closes the pair.
func (p *linkProxy) relay(pp *proxyPair, dir int, src, dst net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		b   []byte
		due time.Time
	}
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() { // the writer: owned by relay, which waits for it
		defer close(done)
		failed := false
		for c := range q {
			if failed {
				continue
			}
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.b); err != nil {
				failed = true
				pp.close()
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for !pp.closed.Load() {
		if p.drop[dir].Load() {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		n, err := src.Read(buf)
		// A read that was under way when the direction was dropped (on a
		// connection idle in that direction) holds its chunk back too.
		for n > 0 && p.drop[dir].Load() && !pp.closed.Load() {
			time.Sleep(2 * time.Millisecond)
		}
		if n > 0 {
			b := bytes.Clone(buf[:n])
			if tap := p.tap.Load(); tap != nil {
				(*tap)(dir, b)
			}
			q <- chunk{b, time.Now().Add(time.Duration(p.delay[dir].Load()))}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	pp.close()
	p.mu.Lock()
	delete(p.pairs, pp)
	p.mu.Unlock()
}

// setCut cuts the link (closing its connections and refusing new ones) or
// restores it.
func (p *linkProxy) setCut(cut bool) {
	p.cut.Store(cut)
	if cut {
		p.closePairs()
	}
}

func (p *linkProxy) closePairs() {
	p.mu.Lock()
	pairs := make([]*proxyPair, 0, len(p.pairs))
	for pp := range p.pairs {
		pairs = append(pairs, pp)
	}
	p.mu.Unlock()
	for _, pp := range pairs {
		pp.close()
	}
}

func (p *linkProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.closePairs()
	p.wg.Wait()
}

// meshCluster is a full mesh of n nodes whose every dial goes through a
// linkProxy. Node i starts i seconds after node 0: node 0 is the oldest.
type meshCluster struct {
	*testCluster
	links [][]*linkProxy // links[i][j]: node i dialing node j
}

func newMesh(t testing.TB, n int, mod func(i int, o *Options)) *meshCluster {
	t.Helper()
	mc := &meshCluster{testCluster: &testCluster{t: t}}
	for i := range n {
		o := testOptions(i)
		o.Listener = listen(t)
		if mod != nil {
			mod(i, &o)
		}
		mc.opts = append(mc.opts, o)
		mc.lns = append(mc.lns, o.Listener)
	}
	mc.links = make([][]*linkProxy, n)
	for i := range n {
		mc.links[i] = make([]*linkProxy, n)
		for j := range n {
			if i != j {
				mc.links[i][j] = newLinkProxy(t, mc.lns[j].Addr().String())
			}
		}
	}
	t.Cleanup(func() { // after the nodes have stopped
		for _, row := range mc.links {
			for _, p := range row {
				if p != nil {
					p.close()
				}
			}
		}
	})
	for i := range n {
		mc.nodes = append(mc.nodes, mc.buildVia(i))
	}
	t.Cleanup(mc.stopAll)
	return mc
}

// buildVia makes node i, dialing every other node through its proxy.
func (mc *meshCluster) buildVia(i int) *Msc {
	mc.t.Helper()
	m, err := New(mc.opts[i])
	if err != nil {
		mc.t.Fatal(err)
	}
	for j := range mc.opts {
		if j != i {
			if err := m.AddServer(fmt.Sprint(j), ServerConfig{Port: mc.links[i][j].port()}); err != nil {
				mc.t.Fatal(err)
			}
		}
	}
	return m
}

// stop stops node i (gracefully).
func (mc *meshCluster) stop(i int) { mc.nodes[i].Stop() }

// startAgain replaces stopped node i by a new process on the same port.
func (mc *meshCluster) startAgain(i int) {
	mc.t.Helper()
	addr := mc.lns[i].Addr().String()
	var ln net.Listener
	waitFor(mc.t, "port free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	mc.lns[i], mc.opts[i].Listener = ln, ln
	mc.nodes[i] = mc.buildVia(i)
	if err := mc.nodes[i].Start(); err != nil {
		mc.t.Fatal(err)
	}
}

// between applies f to the proxies of every link from a node of a to a
// node of b, with the direction from a to b and the direction from b to a
// (each link's proxy carries both).
func (mc *meshCluster) between(a, b []int, f func(p *linkProxy, aToB, bToA int)) {
	for _, i := range a {
		for _, j := range b {
			f(mc.links[i][j], toListener, toDialer)
			f(mc.links[j][i], toDialer, toListener)
		}
	}
}

// partition blackholes all traffic between the two sides.
func (mc *meshCluster) partition(a, b []int) {
	mc.between(a, b, func(p *linkProxy, x, y int) {
		p.drop[x].Store(true)
		p.drop[y].Store(true)
	})
}

// heal restores every link.
func (mc *meshCluster) heal() {
	for _, row := range mc.links {
		for _, p := range row {
			if p != nil {
				p.drop[0].Store(false)
				p.drop[1].Store(false)
				p.delay[0].Store(0)
				p.delay[1].Store(0)
				p.setCut(false)
			}
		}
	}
}

func (mc *meshCluster) index(uid string) int {
	for i, m := range mc.nodes {
		if m.UID() == uid {
			return i
		}
	}
	return -1
}

// livePeers returns the indexes of the peers node i counts live.
func (mc *meshCluster) livePeers(i int) []int {
	var out []int
	for _, p := range mc.nodes[i].Status().Peers {
		if p.Live {
			out = append(out, mc.index(p.UID))
		}
	}
	slices.Sort(out)
	return out
}

// sidesHold is the invariant checker. For each side (nodes that can reach
// each other; a side lists node indexes, and the oldest is the smallest
// index): every node of the side counts exactly the others of its side
// live; exactly one node of the side is master, the oldest; every node of
// the side names it. It returns "" if all hold, else what does not.
func (mc *meshCluster) sidesHold(sides ...[]int) string {
	var b strings.Builder
	for _, side := range sides {
		want := slices.Min(side)
		masters := 0
		for _, i := range side {
			m := mc.nodes[i]
			others := slices.DeleteFunc(slices.Clone(side), func(j int) bool { return j == i })
			slices.Sort(others)
			if live := mc.livePeers(i); !slices.Equal(live, others) {
				fmt.Fprintf(&b, "node%d counts %v live, want %v; ", i, live, others)
			}
			if m.IsMaster() {
				masters++
				if i != want {
					fmt.Fprintf(&b, "node%d is master, want node%d; ", i, want)
				}
			}
			if uid, ok := m.Master(); !ok || uid != mc.nodes[want].UID() {
				fmt.Fprintf(&b, "node%d names %q as master, want node%d; ", i, uid, want)
			}
		}
		if masters != 1 {
			fmt.Fprintf(&b, "side %v has %d masters; ", side, masters)
		}
	}
	return b.String()
}

// waitSides polls until sidesHold holds.
func (mc *meshCluster) waitSides(sides ...[]int) {
	mc.t.Helper()
	deadline := time.Now().Add(settle)
	for {
		bad := mc.sidesHold(sides...)
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			mc.t.Fatalf("sides %v: %s", sides, bad)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// viewsConsistent checks what every running node can decide alone: it
// names as master the oldest of itself and the peers it counts live, and
// is master exactly when that is itself.
func (mc *meshCluster) viewsConsistent() string {
	var b strings.Builder
	for i, m := range mc.nodes {
		want := slices.Min(append(mc.livePeers(i), i))
		if uid, _ := m.Master(); uid != mc.nodes[want].UID() || m.IsMaster() != (want == i) {
			fmt.Fprintf(&b, "node%d sees %v, names %q, master=%v; ", i, mc.livePeers(i), uid, m.IsMaster())
		}
	}
	return b.String()
}

var all3 = []int{0, 1, 2}

func TestPartitionSymmetric(t *testing.T) {
	mc := newMesh(t, 3, nil)
	mc.start()
	mc.waitSides(all3)
	t0 := time.Now()
	mc.partition([]int{0}, []int{1, 2})
	mc.waitSides([]int{0}, []int{1, 2})
	t.Logf("partition {0}|{1,2} settled in %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	mc.heal()
	mc.waitSides(all3)
	t.Logf("healed in %v", time.Since(t0).Round(time.Millisecond))

	// The other way round: the master's side keeps it.
	mc.partition([]int{0, 1}, []int{2})
	mc.waitSides([]int{0, 1}, []int{2})
	mc.heal()
	mc.waitSides(all3)
}

// TestPartitionAsymmetric drops the traffic of one direction only.
func TestPartitionAsymmetric(t *testing.T) {
	mc := newMesh(t, 3, nil)
	mc.start()
	mc.waitSides(all3)

	// Nothing node 0 sends arrives, on either connection of each pair;
	// what it receives still does. Its peers stop hearing it and close;
	// a new connection never completes its handshake.
	mc.between([]int{0}, []int{1, 2}, func(p *linkProxy, from0, to0 int) { p.drop[from0].Store(true) })
	mc.waitSides([]int{0}, []int{1, 2})
	mc.heal()
	mc.waitSides(all3)

	// Node 0 receives nothing.
	mc.between([]int{0}, []int{1, 2}, func(p *linkProxy, from0, to0 int) { p.drop[to0].Store(true) })
	mc.waitSides([]int{0}, []int{1, 2})
	mc.heal()
	mc.waitSides(all3)

	// One direction of one pair: 0 and 1 lose each other, 2 still sees
	// both. There is no transitive view to agree on: 1 is master of what
	// it sees, and so is 0. Without Quorum each node elects the oldest it
	// hears; check that, and that it heals.
	mc.between([]int{0}, []int{1}, func(p *linkProxy, from0, to0 int) { p.drop[from0].Store(true) })
	waitFor(t, "0 and 1 lose each other", func() bool {
		return slices.Equal(mc.livePeers(0), []int{2}) && slices.Equal(mc.livePeers(1), []int{2}) &&
			slices.Equal(mc.livePeers(2), []int{0, 1}) && mc.viewsConsistent() == ""
	})
	t.Logf("0↛1: masters: node0=%v node1=%v node2=%v (node2 names %v)",
		mc.nodes[0].IsMaster(), mc.nodes[1].IsMaster(), mc.nodes[2].IsMaster(), first(mc.nodes[2].Master()))
	mc.heal()
	mc.waitSides(all3)
}

func first(s string, _ bool) string { return s }

// TestSlowLink: 30 ms of delay on every link, both ways, changes nothing.
func TestSlowLink(t *testing.T) {
	const delay = 30 * time.Millisecond
	mc := newMesh(t, 3, nil)
	var changes atomic.Int64
	for _, m := range mc.nodes {
		m.OnChange(func(Change) { changes.Add(1) })
	}
	mc.start()
	mc.waitSides(all3)
	for _, m := range mc.nodes {
		flushCallbacks(t, m)
	}
	before := changes.Load()
	t0 := time.Now()
	for _, row := range mc.links {
		for _, p := range row {
			if p != nil {
				p.delay[0].Store(int64(delay))
				p.delay[1].Store(int64(delay))
			}
		}
	}
	// Watch for 2 WaitTimeouts, and until every node has heard every peer
	// through the delayed links.
	heardAfter := func(i int) bool {
		for _, p := range mc.nodes[i].Status().Peers {
			if !p.LastHeard.After(t0.Add(delay)) {
				return false
			}
		}
		return true
	}
	for time.Since(t0) < 2*testWait || !heardAfter(0) || !heardAfter(1) || !heardAfter(2) {
		if bad := mc.sidesHold(all3); bad != "" {
			t.Fatalf("after %v of delay: %s", time.Since(t0), bad)
		}
		if time.Since(t0) > settle {
			t.Fatal("delayed heartbeats never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, m := range mc.nodes {
		flushCallbacks(t, m)
	}
	if n := changes.Load() - before; n != 0 {
		t.Fatalf("%d mastership changes on a slow link", n)
	}
}

// TestFlappingLink cuts and restores the link between nodes 0 and 1 every
// 50 ms for a second. Node 2 sees both throughout; at the end all agree.
func TestFlappingLink(t *testing.T) {
	mc := newMesh(t, 3, nil)
	mc.start()
	mc.waitSides(all3)
	n0, n2 := mc.nodes[0], mc.nodes[2]
	var lost []string
	for i := range 20 {
		cut := i%2 == 0
		mc.links[0][1].setCut(cut)
		mc.links[1][0].setCut(cut)
		for t1 := time.Now(); time.Since(t1) < 50*time.Millisecond; time.Sleep(5 * time.Millisecond) {
			// The oldest node is master whatever it sees, and node 2,
			// whose links are sound, names it throughout.
			if !n0.IsMaster() {
				lost = append(lost, "node0 not master")
			}
			if uid, _ := n2.Master(); uid != "node0" {
				lost = append(lost, "node2 names "+uid)
			}
		}
	}
	mc.heal()
	mc.waitSides(all3)
	if len(lost) > 0 {
		t.Fatalf("during the flapping: %v", slices.Compact(lost))
	}
	mc.links[0][1].mu.Lock()
	n := mc.links[0][1].accept
	mc.links[0][1].mu.Unlock()
	t.Logf("node0 dialed node1 %d times", n)
}

// TestRestartLoop restarts nodes five times, the master three of them;
// the others fail over at each stop and all agree after each start.
func TestRestartLoop(t *testing.T) {
	mc := newMesh(t, 3, nil)
	mc.start()
	mc.waitSides(all3)
	for round, i := range []int{0, 1, 0, 2, 0} {
		t0 := time.Now()
		mc.stop(i)
		rest := slices.DeleteFunc(slices.Clone(all3), func(j int) bool { return j == i })
		mc.waitSides(rest)
		stopped := time.Since(t0)
		mc.startAgain(i)
		mc.waitSides(all3)
		t.Logf("round %d: node%d stopped, others agreed in %v; back, all agreed in %v", round, i,
			stopped.Round(time.Millisecond), (time.Since(t0) - stopped).Round(time.Millisecond))
	}
}

// TestHeaderEncryptedOnTheWire taps every link: with HeaderEncrypted no
// node's UID travels in clear; without it, the UIDs are readable.
func TestHeaderEncryptedOnTheWire(t *testing.T) {
	for _, hidden := range []bool{false, true} {
		t.Run(fmt.Sprintf("HeaderEncrypted=%v", hidden), func(t *testing.T) {
			var mu sync.Mutex
			var wire []byte
			mc := newMesh(t, 2, func(i int, o *Options) { o.HeaderEncrypted = hidden; o.Keys = []string{"secret-key-name"} })
			for _, row := range mc.links {
				for _, p := range row {
					if p != nil {
						tap := func(_ int, b []byte) {
							mu.Lock()
							wire = append(wire, b...)
							mu.Unlock()
						}
						p.tap.Store(&tap)
					}
				}
			}
			mc.start()
			mc.waitSides([]int{0, 1})
			mu.Lock()
			defer mu.Unlock()
			for _, s := range []string{"node0", "node1"} {
				if got := bytes.Contains(wire, []byte(s)); got == hidden {
					t.Errorf("%q in clear on the wire: %v", s, got)
				}
			}
			if bytes.Contains(wire, []byte("secret-key-name")) {
				t.Error("a key name travels in clear")
			}
		})
	}
}
