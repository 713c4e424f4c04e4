package msc

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/cluster"
	"github.com/msc-go/msc/internal/relay"
)

// Test timing: short intervals, a generous WaitTimeout so that a loaded
// 2-core machine running -race does not count live peers dead.
const (
	testInterval = 20 * time.Millisecond
	testWait     = 300 * time.Millisecond
	settle       = 20 * time.Second // deadline for polls
)

// nodeGoroutines returns the stacks of goroutines running code of this
// package (not tests).
func nodeGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/msc-go/msc.(") && !strings.Contains(g, "testing.tRunner") &&
			!strings.Contains(g, "nodeGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func waitNoGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		s := nodeGoroutines()
		if s == "" || time.Now().After(deadline) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listen returns a listener on a free loopback port.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// loopbackPair returns the dialed and the accepted end of a loopback TCP
// connection, closed when the test ends.
func loopbackPair(tb testing.TB) (dialed, accepted net.Conn) {
	tb.Helper()
	ln := listen(tb)
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- nc
	}()
	dc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	lc, ok := <-ch
	if !ok {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { dc.Close(); lc.Close() })
	return dc, lc
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// base is an arbitrary start time; node i of a cluster starts i seconds
// after it, so node 0 is the oldest.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testOptions(i int) Options {
	return Options{
		Key:         "test passphrase",
		Interval:    testInterval,
		WaitTimeout: testWait,
		StartTime:   base.Add(time.Duration(i) * time.Second),
		UID:         fmt.Sprintf("node%d", i),
	}
}

// relayedPair builds two nodes, not started: node 1 dials node 0 through
// a relay and node 0 dials nobody, so that every byte between them
// crosses the relay. mod may change each node's options.
func relayedPair(t testing.TB, mod func(i int, o *Options)) (*testCluster, *relay.Relay) {
	t.Helper()
	c := buildCluster(&testCluster{t: t, dials: func(i, j int) bool { return i == 1 }}, 2, mod, true)
	return c, c.h.Relay(1, 0)
}

// testCluster wraps the harness of internal/cluster, as package msctest
// does for users (package msc cannot import msctest, which imports msc),
// with the options and helpers of these tests.
type testCluster struct {
	t     testing.TB
	h     *cluster.Cluster[*Msc] // nil for nodes a test builds itself
	nodes []*Msc                 // h.Nodes: a test may put a node of its own at i
	opts  []Options
	lns   []net.Listener // h.Listeners

	// Set before buildCluster, they change each node it makes.
	dials  func(i, j int) bool              // whether node i dials node j; nil: every other
	server func(i, j int, sc *ServerConfig) // changes node i's server j
	made   func(i int, m *Msc)              // sees node i made
}

// newCluster builds n nodes, each dialing all the others; mod may change
// each node's options. It does not start them.
func newCluster(t testing.TB, n int, mod func(i int, o *Options)) *testCluster {
	t.Helper()
	return buildCluster(&testCluster{t: t}, n, mod, false)
}

// newMesh is newCluster with every dial through a relay, so that the test
// can hold the bytes between nodes (partition, heal).
func newMesh(t testing.TB, n int, mod func(i int, o *Options)) *testCluster {
	t.Helper()
	return buildCluster(&testCluster{t: t}, n, mod, true)
}

// buildCluster builds n nodes into c (which has t, and may have the
// hooks), not started, with testOptions changed by mod, on listeners of
// their own unless mod sets one; each dials the others (as the server
// "j"), directly or through relays. The test's Cleanup stops them.
func buildCluster(c *testCluster, n int, mod func(i int, o *Options), relayed bool) *testCluster {
	t := c.t
	t.Helper()
	lns := make([]net.Listener, n)
	for i := range n {
		o := testOptions(i)
		o.Listener = listen(t)
		if mod != nil {
			mod(i, &o)
		}
		c.opts = append(c.opts, o)
		lns[i] = o.Listener
	}
	c.h = cluster.New(cluster.Config[*Msc]{T: t, N: n, Listeners: lns, Direct: !relayed,
		Build: func(i int, ln net.Listener, ports []int, restart bool) (*Msc, error) {
			if restart {
				c.opts[i].Listener = ln
			}
			return c.newNode(i, ports)
		}})
	c.nodes, c.lns = c.h.Nodes, c.h.Listeners
	return c
}

// newNode makes node i from its options; it dials node j on ports[j].
func (c *testCluster) newNode(i int, ports []int) (*Msc, error) {
	m, err := New(c.opts[i])
	if err != nil {
		return nil, err
	}
	for j, p := range ports {
		if j != i && (c.dials == nil || c.dials(i, j)) {
			sc := ServerConfig{Port: p}
			if c.server != nil {
				c.server(i, j, &sc)
			}
			if err := m.AddServer(fmt.Sprint(j), sc); err != nil {
				return nil, err
			}
		}
	}
	if c.made != nil {
		c.made(i, m)
	}
	return m, nil
}

// build makes node i again from its options, not started; the test puts
// it at c.nodes[i].
func (c *testCluster) build(i int) *Msc {
	c.t.Helper()
	m, err := c.newNode(i, c.h.Ports(i))
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// hold holds (or releases) the bytes node from sends to node to, on both
// connections between them (newMesh only).
func (c *testCluster) hold(from, to int, held bool) { c.h.Block(from, to, held) }

// partition holds all traffic between the two sides (newMesh only).
func (c *testCluster) partition(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			c.hold(i, j, true)
			c.hold(j, i, true)
		}
	}
}

// heal releases every byte held (newMesh only).
func (c *testCluster) heal() { c.h.Heal() }

func (c *testCluster) node(i int) *Msc { return c.nodes[i] }

func (c *testCluster) sidesHold(sides ...[]int) string { return sidesHold(c.node, sides...) }

func (c *testCluster) waitSides(sides ...[]int) { waitSides(c.t, c.node, sides...) }

var all3 = []int{0, 1, 2}

// livePeerIndexes returns the indexes of the peers m counts live: node<i> is i.
func livePeerIndexes(m *Msc) []int {
	var out []int
	for _, p := range m.Status().Peers {
		var i int
		if _, err := fmt.Sscanf(p.UID, "node%d", &i); err == nil && p.Live {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// sidesHold is the invariant checker of a cluster whose node i is node(i),
// with UID node<i>. For each side (nodes that can reach each other; a
// side lists node indexes, and the oldest is the smallest index): every
// node of the side counts exactly the others of its side live; exactly
// one node of the side is master, the oldest; every node of the side
// names it. It returns "" if all hold, else what does not.
func sidesHold(node func(i int) *Msc, sides ...[]int) string {
	var b strings.Builder
	for _, side := range sides {
		want := slices.Min(side)
		masters := 0
		for _, i := range side {
			m := node(i)
			others := slices.DeleteFunc(slices.Clone(side), func(j int) bool { return j == i })
			slices.Sort(others)
			if live := livePeerIndexes(m); !slices.Equal(live, others) {
				fmt.Fprintf(&b, "node%d counts %v live, want %v; ", i, live, others)
			}
			if m.IsMaster() {
				masters++
				if i != want {
					fmt.Fprintf(&b, "node%d is master, want node%d; ", i, want)
				}
			}
			if uid, ok := m.Master(); !ok || uid != node(want).UID() {
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
func waitSides(t testing.TB, node func(i int) *Msc, sides ...[]int) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		bad := sidesHold(node, sides...)
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sides %v: %s", sides, bad)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restart replaces node i by a new one (a new process) with its options
// changed by mod: on the same port, or behind the same relays (newMesh).
func (c *testCluster) restart(i int, mod func(o *Options)) *Msc {
	c.t.Helper()
	if mod != nil {
		mod(&c.opts[i])
	}
	return c.h.Restart(i)
}

// start starts every node, all at once.
func (c *testCluster) start() *testCluster {
	c.t.Helper()
	c.h.StartAll()
	return c
}

// stopAll stops every node, one after the other.
func (c *testCluster) stopAll() {
	for _, m := range c.nodes {
		m.Stop()
	}
}

// release stops the cluster now and forgets its nodes: a stopped node
// keeps its state (40 nodes holding 1,000 keys: 210 MiB), and the test's
// Cleanup, which still refers to the cluster, runs only when the
// benchmark ends. A benchmark that runs cluster after cluster in one
// process (-count) otherwise carries the last one's heap into the next,
// and the collector marks it while that one converges.
func (c *testCluster) release() {
	c.h.Close()
	clear(c.nodes)
	c.nodes = nil
}

// running returns the nodes that are running.
func (c *testCluster) running() []*Msc {
	var out []*Msc
	for _, m := range c.nodes {
		if m.snap.Load().Running {
			out = append(out, m)
		}
	}
	return out
}

// agreed reports whether exactly one running node is master, it is want,
// and every running node names it.
func (c *testCluster) agreed(want *Msc) bool {
	masters := 0
	for _, m := range c.running() {
		if m.IsMaster() {
			masters++
			if m != want {
				return false
			}
		}
		if uid, ok := m.Master(); !ok || uid != want.UID() {
			return false
		}
	}
	return masters == 1
}

// waitMaster polls until every running node agrees that want is master.
func (c *testCluster) waitMaster(want *Msc) {
	c.t.Helper()
	waitFor(c.t, "master "+want.UID(), func() bool { return c.agreed(want) }, c.describe)
}

func (c *testCluster) describe() string {
	var b strings.Builder
	for _, m := range c.nodes {
		uid, ok := m.Master()
		fmt.Fprintf(&b, "%s: running=%v master=%v thinks=%q/%v\n", m.UID(), m.snap.Load().Running, m.IsMaster(), uid, ok)
	}
	return b.String()
}

// waitFor polls cond until it holds or the deadline passes; on failure
// it prints what each of state says.
func waitFor(t testing.TB, what string, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, s := range state {
				b.WriteString(s())
			}
			t.Fatalf("timed out waiting for %s\n%s", what, b.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// liveN returns how many peers m counted live at its last election:
// what liveCount(m.Status()) tells, without copying every peer's keys (a
// poll of Status on 40 nodes holding 1,000 keys every few milliseconds
// was a load of its own on their electors).
func liveN(m *Msc) int {
	n := 0
	m.call(func(e *elector) { n = e.core.LiveCount() })
	return n
}

// liveCount returns how many peers st counts live.
func liveCount(st Status) int {
	n := 0
	for _, p := range st.Peers {
		if p.Live {
			n++
		}
	}
	return n
}

// changeLog records a node's global mastership changes.
type changeLog struct {
	mu  sync.Mutex
	got []Change
}

// watch records m's changes from now on, after its state now (so that a
// term change of a node that is master already is not a gain).
func (l *changeLog) watch(m *Msc) {
	uid, _ := m.Master()
	l.add(Change{IsMaster: m.IsMaster(), Master: uid, Term: m.Term()})
	m.OnChange(l.add)
}

func (l *changeLog) add(c Change) {
	if c.Key != "" {
		return
	}
	l.mu.Lock()
	l.got = append(l.got, c)
	l.mu.Unlock()
}

// gains counts the times the node became master.
func (l *changeLog) gains() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, was := 0, false
	for i, c := range l.got {
		if c.IsMaster && !was && i > 0 { // the first is the state when watching began
			n++
		}
		was = c.IsMaster
	}
	return n
}

// freeze blocks m's elector for d, as a SIGSTOP would: no ticks, no
// heartbeats out (their writers see the elector has not ticked).
func freeze(m *Msc, d time.Duration) {
	m.call(func(*elector) { time.Sleep(d) })
}

// changeCount counts the mastership changes of nodes from now on (OnChange)
// and keeps the first 8, timed from t0, for a failure message.
type changeCount struct {
	n     atomic.Int64
	mu    sync.Mutex
	first []string
}

func recordChanges(nodes []*Msc, t0 time.Time) *changeCount {
	l := &changeCount{}
	for _, m := range nodes {
		m.OnChange(func(ch Change) {
			l.n.Add(1)
			l.mu.Lock()
			defer l.mu.Unlock()
			if len(l.first) < 8 {
				l.first = append(l.first, fmt.Sprintf("%.1fms %s: %+v", float64(time.Since(t0))/1e6, m.UID(), ch))
			}
		})
	}
	return l
}

// First returns the first changes recorded, one per line.
func (l *changeCount) First() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.first, "\n")
}
