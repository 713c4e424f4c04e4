// Package cluster is the one cluster harness of msc's tests: package
// msctest wraps it for users, and the tests of package msc (which cannot
// import msctest, since it imports msc) wrap it too. It holds n nodes on
// loopback, each reaching the others through a relay of its own
// (internal/relay), or directly; it partitions, blocks, cuts and delays
// the links, kills, pauses and restarts nodes, and stops everything at
// the end. It cannot import msc either: the node is a type parameter, and
// the wrapper's Build makes one.
package cluster

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/relay"
	"github.com/msc-go/msc/internal/testhook"
)

// Node is what the cluster calls of a node (a *msc.Msc). Kill and Pause
// reach it through package testhook.
type Node interface {
	Start() error
	Stop() error
}

// Config is how New builds a cluster.
type Config[N Node] struct {
	// T is the test, whose Cleanup closes the cluster. Nil outside a
	// test: a failure then panics, and the caller calls Close.
	T testing.TB
	// Prefix starts each failure message, as "msctest: ".
	Prefix string
	// N is the number of nodes.
	N int
	// Listeners, if not nil, are the N nodes' listeners; else the cluster
	// listens on a free port of 127.0.0.1 for each. The cluster closes
	// them.
	Listeners []net.Listener
	// Direct makes each node dial the others' listeners, with no relay:
	// the links cannot be held, cut or delayed, and Restart listens again
	// on the node's address. Else node i reaches node j through a relay
	// of its own.
	Direct bool
	// Build makes node i, listening on ln, not started; it reaches node j
	// by dialing port ports[j] of 127.0.0.1 (ports[i] is 0). restart is
	// false the first time, true from Restart.
	Build func(i int, ln net.Listener, ports []int, restart bool) (N, error)
}

// Cluster is the harness. Its methods are safe for concurrent use; those
// that can fail call T.Fatalf, so they are meant for the test's goroutine.
type Cluster[N Node] struct {
	t      testing.TB // nil outside a test
	prefix string
	build  func(i int, ln net.Listener, ports []int, restart bool) (N, error)
	close  sync.Once

	// Nodes[i] is node i: the one running now, or the last one. The
	// cluster writes its elements in place (Restart) and never
	// reallocates it, so a wrapper may keep the slice, and may put a node
	// of its own at i (a test rebuilding node i before starting it).
	// Outside of the wrapper's own goroutine, use Node.
	Nodes []N
	// Listeners[i] is node i's listener, in place as Nodes.
	Listeners []net.Listener

	relays [][]*relay.Relay // relays[i][j]: what node i dials to reach node j; nil if Direct

	// mu guards the fields below it, and the elements of Nodes and Listeners.
	mu      sync.Mutex
	group   []int       // partition group of each node; all 0 when healed
	blocked [][]bool    // blocked[i][j]: node i's bytes to node j are held
	cut     [][]bool    // cut[i][j], cut[j][i]: the link is cut
	killed  []bool      // until Restart
	paused  []time.Time // paused until then
	timers  []*time.Timer
	wg      sync.WaitGroup // pause timers
	built   int            // nodes New has built
	done    bool           // closed
}

// New builds the cluster's nodes with cfg.Build, and starts none.
func New[N Node](cfg Config[N]) *Cluster[N] {
	n := cfg.N
	c := &Cluster[N]{
		t: cfg.T, prefix: cfg.Prefix, build: cfg.Build,
		Nodes: make([]N, n), Listeners: make([]net.Listener, n),
		group: make([]int, n), killed: make([]bool, n), paused: make([]time.Time, n),
		blocked: make([][]bool, n), cut: make([][]bool, n),
	}
	if c.t != nil {
		c.t.Helper()
		c.t.Cleanup(c.Close)
	}
	if n < 1 {
		c.fatalf("a cluster of %d nodes", n)
	}
	for i := range n {
		c.blocked[i], c.cut[i] = make([]bool, n), make([]bool, n)
		if cfg.Listeners != nil {
			c.Listeners[i] = cfg.Listeners[i]
		} else {
			c.Listeners[i] = c.listen("127.0.0.1:0")
		}
	}
	if !cfg.Direct {
		c.relays = make([][]*relay.Relay, n)
		for i := range n {
			c.relays[i] = make([]*relay.Relay, n)
			for j := range n {
				if i != j {
					r, err := relay.Listen(c.Listeners[j].Addr().String())
					if err != nil {
						c.fatalf("%v", err)
					}
					c.relays[i][j] = r
				}
			}
		}
	}
	for i := range n {
		m, err := c.build(i, c.Listeners[i], c.Ports(i), false)
		if err != nil {
			c.fatalf("node %d: %v", i, err)
		}
		c.mu.Lock()
		c.Nodes[i] = m
		c.built++
		c.mu.Unlock()
	}
	return c
}

func (c *Cluster[N]) listen(addr string) net.Listener {
	if c.t != nil {
		c.t.Helper()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.fatalf("%v", err)
	}
	return ln
}

// Len returns the number of nodes.
func (c *Cluster[N]) Len() int { return len(c.Nodes) }

// Node returns node i: the one running now, or the last one.
func (c *Cluster[N]) Node(i int) N {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Nodes[i]
}

// Port returns the port node i dials to reach node j: its relay's, or
// node j's own if the cluster is direct.
func (c *Cluster[N]) Port(i, j int) int {
	if c.relays != nil {
		return c.relays[i][j].Port()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Listeners[j].Addr().(*net.TCPAddr).Port
}

// Ports returns the ports node i dials, by node: Port(i, j) at j, 0 at i.
func (c *Cluster[N]) Ports(i int) []int {
	ports := make([]int, c.Len())
	for j := range ports {
		if j != i {
			ports[j] = c.Port(i, j)
		}
	}
	return ports
}

// Relay returns the relay node i dials to reach node j (nil if the
// cluster is direct). What a test sets on it directly lasts until the
// cluster sets that link again (Partition, Block, Cut, Heal, Kill,
// Pause, Restart set them all; Delay sets delays).
func (c *Cluster[N]) Relay(i, j int) *relay.Relay {
	if c.relays == nil {
		return nil
	}
	return c.relays[i][j]
}

// Start starts node i.
func (c *Cluster[N]) Start(i int) {
	if c.t != nil {
		c.t.Helper()
	}
	if err := c.Node(i).Start(); err != nil {
		c.fatalf("start node %d: %v", i, err)
	}
}

// StartAll starts every node, all at once.
func (c *Cluster[N]) StartAll() {
	if c.t != nil {
		c.t.Helper()
	}
	errs := make([]error, c.Len())
	var wg sync.WaitGroup
	for i := range errs {
		m := c.Node(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Start()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			c.fatalf("start node %d: %v", i, err)
		}
	}
}

// Partition cuts the network into groups: a node reaches only the nodes
// of its own group; a node in no group is alone. The bytes across groups
// are held, not lost, and new connections across them hang. A Partition
// replaces the previous one.
func (c *Cluster[N]) Partition(groups ...[]int) {
	if c.t != nil {
		c.t.Helper()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.relayedLocked("Partition")
	for i := range c.group {
		c.group[i] = -1 - i // alone
	}
	for g, members := range groups {
		for _, i := range members {
			if i < 0 || i >= len(c.group) {
				c.fatalf("Partition: no node %d", i)
			}
			c.group[i] = g + 1
		}
	}
	c.updateLocked()
}

// Block holds (or, with false, releases) the bytes node from sends to
// node to, on every connection between them: a one-way partition.
func (c *Cluster[N]) Block(from, to int, blocked bool) {
	if c.t != nil {
		c.t.Helper()
	}
	c.setLink("Block", from, to, func() { c.blocked[from][to] = blocked })
}

// Cut resets the connections between nodes i and j, and refuses new ones
// at once with a reset, until Heal.
func (c *Cluster[N]) Cut(i, j int) {
	if c.t != nil {
		c.t.Helper()
	}
	c.setLink("Cut", i, j, func() { c.cut[i][j], c.cut[j][i] = true, true })
}

// setLink calls set, which changes the state of the link between nodes i
// and j, then applies it; method names the caller in a failure.
func (c *Cluster[N]) setLink(method string, i, j int, set func()) {
	if c.t != nil {
		c.t.Helper()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.relayedLocked(method)
	if n := len(c.group); i < 0 || i >= n || j < 0 || j >= n || i == j {
		c.fatalf("%s: no link between nodes %d and %d", method, i, j)
	}
	set()
	c.updateLocked()
}

// relayedLocked fails the test if the cluster is direct. (The caller's
// deferred Unlock runs as fatalf ends the goroutine or panics.)
func (c *Cluster[N]) relayedLocked(method string) {
	if c.relays == nil {
		c.fatalf("%s: the nodes dial each other directly", method)
	}
}

// Delay slows every link: each byte, either way, arrives d later than
// sent. Delay(0) ends it; Heal leaves it.
func (c *Cluster[N]) Delay(d time.Duration) {
	for _, row := range c.relays {
		for _, r := range row {
			if r != nil {
				r.Delay(relay.Up, d)
				r.Delay(relay.Down, d)
			}
		}
	}
}

// Heal ends the partition, and every Block and Cut: the bytes held are
// delivered.
func (c *Cluster[N]) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.group)
	for i := range c.group {
		clear(c.blocked[i])
		clear(c.cut[i])
	}
	c.updateLocked()
}

// updateLocked sets each link: the bytes from node i to node j are held
// while the two are partitioned apart, either is paused, or i's to j are
// blocked; the link is down (reset, refused) while either node is killed
// or the link is cut.
func (c *Cluster[N]) updateLocked() {
	now := time.Now()
	held := func(i, j int) bool {
		return c.group[i] != c.group[j] || now.Before(c.paused[i]) || now.Before(c.paused[j]) || c.blocked[i][j]
	}
	for i, row := range c.relays {
		for j, r := range row {
			if r != nil {
				r.Hold(relay.Up, held(i, j))
				r.Hold(relay.Down, held(j, i))
				r.Cut(c.killed[i] || c.killed[j] || c.cut[i][j])
			}
		}
	}
}

// Kill ends node i abruptly, as a killed process: no leave message, its
// connections reset, and connections to it refused until Restart.
func (c *Cluster[N]) Kill(i int) {
	c.mu.Lock()
	c.killed[i] = true
	c.updateLocked()
	m := c.Nodes[i]
	c.mu.Unlock()
	testhook.Abort(m)
}

// Restart stops node i (with Stop; Kill it first for a crash), builds it
// again (Build with restart true) and starts it: on a new port behind the
// same relays, or on the same address if the cluster is direct. It
// returns the new node.
func (c *Cluster[N]) Restart(i int) N {
	if c.t != nil {
		c.t.Helper()
	}
	c.Node(i).Stop()
	var ln net.Listener
	if c.relays != nil {
		ln = c.listen("127.0.0.1:0")
	} else {
		ln = c.relisten(i)
	}
	m, err := c.build(i, ln, c.Ports(i), true)
	if err != nil {
		c.fatalf("node %d: %v", i, err)
	}
	c.mu.Lock()
	if c.Listeners[i] != ln {
		c.Listeners[i].Close()
	}
	c.Listeners[i], c.Nodes[i], c.killed[i] = ln, m, false
	for j := range c.relays {
		if r := c.relays[j][i]; r != nil {
			r.SetTarget(ln.Addr().String())
		}
	}
	c.updateLocked() // a link to a killed node stays down
	c.mu.Unlock()
	if err := m.Start(); err != nil {
		c.fatalf("restart node %d: %v", i, err)
	}
	return m
}

// relisten listens again on node i's address, once its stopped node has
// let go of it.
func (c *Cluster[N]) relisten(i int) net.Listener {
	if c.t != nil {
		c.t.Helper()
	}
	c.mu.Lock()
	addr := c.Listeners[i].Addr().String()
	c.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if time.Now().After(deadline) {
			c.fatalf("restart node %d: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Pause freezes node i for d, as SIGSTOP then SIGCONT would (see
// testhook.Pause), holding its links meanwhile, and returns at once.
func (c *Cluster[N]) Pause(i int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if until := time.Now().Add(d); until.After(c.paused[i]) {
		c.paused[i] = until
	}
	c.updateLocked()
	testhook.Pause(c.Nodes[i], d)
	c.wg.Add(1)
	c.timers = append(c.timers, time.AfterFunc(d, func() {
		defer c.wg.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.updateLocked()
	}))
}

// Reach returns the nodes node i can reach now, by index, itself
// included: those of its partition group neither killed nor paused. ok is
// false, and the map nil, if node i is killed or paused.
func (c *Cluster[N]) Reach(i int) (nodes map[int]N, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := func(j int) bool { return c.killed[j] || now.Before(c.paused[j]) }
	if out(i) {
		return nil, false
	}
	nodes = make(map[int]N)
	for j := range c.Nodes {
		if c.group[j] == c.group[i] && !out(j) {
			nodes[j] = c.Nodes[j]
		}
	}
	return nodes, true
}

// fatalf fails the test, or panics outside a test.
func (c *Cluster[N]) fatalf(format string, args ...any) {
	msg := c.prefix + fmt.Sprintf(format, args...)
	if c.t == nil {
		panic(msg)
	}
	c.t.Helper()
	c.t.Fatal(msg)
}

// Close stops every node (with Stop, all at once) and relay, closes the
// listeners, and waits for the goroutines of the cluster. With a test,
// its Cleanup calls Close; it is safe to call more than once.
func (c *Cluster[N]) Close() { c.close.Do(c.cleanup) }

func (c *Cluster[N]) cleanup() {
	c.mu.Lock()
	c.done = true
	for _, tm := range c.timers {
		if tm.Stop() {
			c.wg.Done() // it will not run
		}
	}
	nodes := c.Nodes[:c.built]
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Stop()
		}()
	}
	wg.Wait()
	for _, row := range c.relays {
		for _, r := range row {
			if r != nil {
				r.Close()
			}
		}
	}
	c.mu.Lock()
	for _, ln := range c.Listeners {
		if ln != nil {
			ln.Close() // a node never started does not close it
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
}
