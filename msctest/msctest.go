// Package msctest runs a cluster of msc nodes in one process, on loopback,
// for the tests of code that uses package msc: start n nodes, then
// partition the network between them (Partition, one way with Block, one
// link with Cut), slow it (Delay), kill, pause and restart them, and wait
// for a master.
//
//	func TestJob(t *testing.T) {
//		c := msctest.NewCluster(t, 3, nil)
//		c.WaitMaster(0) // the oldest
//		c.Kill(0)
//		c.WaitMaster(1)
//	}
//
// Each node listens on 127.0.0.1 and reaches each other node through a
// TCP proxy of its own, so that the cluster can hold or delay the bytes of
// a link as a real network does, and reset connections as the kernel of a
// killed process does. Everything is stopped, and every goroutine ended,
// when the test ends.
package msctest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/internal/relay"
	"github.com/msc-go/msc/internal/testhook"
)

// Defaults of the options of a node of a Cluster, before the opt function
// of NewCluster.
const (
	// DefaultInterval is each node's Options.Interval.
	DefaultInterval = 10 * time.Millisecond
	// DefaultWaitTimeout is each node's Options.WaitTimeout.
	// It is generous for 10ms heartbeats, so that a loaded machine
	// running tests with -race does not count live peers dead.
	DefaultWaitTimeout = 100 * time.Millisecond
	// DefaultKey is each node's Options.Key.
	DefaultKey = "msctest"
)

// Cluster is n nodes of msc in one process, each dialing all the others
// (through proxies the cluster controls). Its methods are safe for
// concurrent use, but are meant to be called from the test's goroutine
// (they call t.Fatal).
type Cluster struct {
	t     testing.TB // nil outside a test
	opt   func(i int, o *msc.Options)
	t0    time.Time
	close sync.Once

	// mu guards the fields below it.
	mu      sync.Mutex
	nodes   []*node
	group   []int            // partition group of each node; all 0 when healed
	blocked [][]bool         // blocked[i][j]: node i's bytes to node j are held (Block)
	cut     [][]bool         // cut[i][j], cut[j][i]: the link is cut (Cut)
	proxies [][]*relay.Relay // proxies[i][j]: what node i dials to reach node j
	timers  []*time.Timer    // pause ends
	wg      sync.WaitGroup   // pause timers
	done    bool             // cleaned up
}

type node struct {
	m      *msc.Msc
	ln     net.Listener
	wait   time.Duration // its WaitTimeout
	killed bool
	paused time.Time // paused until then
}

// NewCluster starts n nodes. Node i has UID "node<i>", and node 0 is the
// oldest, then node 1, and so on (StartTime); each has DefaultInterval,
// DefaultWaitTimeout and DefaultKey, and dials every other node as the
// server "node<j>". opt, if not nil, may then change node i's options
// (before New), except Listener, which the cluster sets. The cluster is
// stopped by t.Cleanup. Outside a test (a program, an Example), t may be
// nil: a failure then panics, and the caller calls Close.
func NewCluster(t testing.TB, n int, opt func(i int, o *msc.Options)) *Cluster {
	c := &Cluster{t: t, opt: opt, t0: time.Now(), group: make([]int, n)}
	c.helper()
	if n < 1 {
		c.fatalf("msctest: a cluster of %d nodes", n)
	}
	if t != nil {
		t.Cleanup(c.Close)
	}
	c.nodes = make([]*node, n)
	for i := range c.nodes {
		c.nodes[i] = &node{ln: c.listen()}
	}
	c.proxies = make([][]*relay.Relay, n)
	c.blocked = make([][]bool, n)
	c.cut = make([][]bool, n)
	for i := range n {
		c.proxies[i] = make([]*relay.Relay, n)
		c.blocked[i] = make([]bool, n)
		c.cut[i] = make([]bool, n)
		for j := range n {
			if i != j {
				c.proxies[i][j] = c.newProxy(c.nodes[j].ln.Addr().String())
			}
		}
	}
	for i := range n {
		// Node 0 is the oldest; a node restarted later is younger than all.
		c.nodes[i].m, c.nodes[i].wait = c.build(i, c.nodes[i].ln, c.t0.Add(time.Duration(i-n)*time.Millisecond))
	}
	for i := range n {
		if err := c.nodes[i].m.Start(); err != nil {
			c.fatalf("msctest: start node %d: %v", i, err)
		}
	}
	return c
}

func (c *Cluster) listen() net.Listener {
	c.helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.fatalf("msctest: %v", err)
	}
	return ln
}

// newProxy starts the relay through which a node reaches target.
func (c *Cluster) newProxy(target string) *relay.Relay {
	c.helper()
	p, err := relay.Listen(target)
	if err != nil {
		c.fatalf("msctest: %v", err)
	}
	return p
}

// build makes node i, listening on ln; it returns its WaitTimeout too.
func (c *Cluster) build(i int, ln net.Listener, start time.Time) (*msc.Msc, time.Duration) {
	c.helper()
	o := msc.Options{
		Key:         DefaultKey,
		Interval:    DefaultInterval,
		WaitTimeout: DefaultWaitTimeout,
		UID:         fmt.Sprint("node", i),
		StartTime:   start,
	}
	if c.opt != nil {
		c.opt(i, &o)
	}
	o.Listener = ln
	m, err := msc.New(o)
	if err != nil {
		c.fatalf("msctest: node %d: %v", i, err)
	}
	for j, p := range c.proxies[i] {
		if p != nil {
			if err := m.AddServer(fmt.Sprint("node", j), msc.ServerConfig{Port: p.Port()}); err != nil {
				c.fatalf("msctest: node %d: %v", i, err)
			}
		}
	}
	wait := o.WaitTimeout
	if wait == 0 {
		wait = 3 * o.Interval
		if o.Interval == 0 {
			wait = 3 * msc.DefaultInterval
		}
	}
	return m, wait
}

// Len returns the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// Node returns node i: the one running now, or the last one if it was
// killed or stopped.
func (c *Cluster) Node(i int) *msc.Msc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].m
}

// Partition cuts the network into groups: a node reaches only the nodes of
// its own group; a node in no group is alone. As a real partition does, it
// holds the bytes in flight: none is lost, and they arrive once the
// partition heals, unless an end has given up on the connection by then
// (a node closes a connection that stayed silent for WaitTimeout). New
// connections across groups hang until then. A Partition replaces the
// previous one.
func (c *Cluster) Partition(groups ...[]int) {
	c.helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.group {
		c.group[i] = -1 - i // alone
	}
	for g, members := range groups {
		for _, i := range members {
			if i < 0 || i >= len(c.nodes) {
				c.fatalf("msctest: Partition: no node %d", i)
			}
			c.group[i] = g + 1
		}
	}
	c.updateLocked()
}

// Block holds the bytes node from sends to node to, on every connection
// between them, while the bytes node to sends to node from still arrive:
// a one-way partition, as a firewall rule that drops one direction makes.
// As with Partition, the bytes are held, not lost, and new connections
// between the two hang. It lasts until Heal.
func (c *Cluster) Block(from, to int) {
	c.helper()
	c.setLink("Block", from, to, func() { c.blocked[from][to] = true })
}

// Cut resets the connections between nodes i and j, and refuses new ones
// at once with a reset, as a firewall rule that rejects would, until
// Heal: both nodes see the link down at once, and keep redialing.
func (c *Cluster) Cut(i, j int) {
	c.helper()
	c.setLink("Cut", i, j, func() { c.cut[i][j], c.cut[j][i] = true, true })
}

// Delay slows every link: each byte between two nodes, either way,
// arrives d later than sent (a slow network; the order is kept).
// Delay(0) ends it; Heal leaves it.
func (c *Cluster) Delay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				p.Delay(relay.Up, d)
				p.Delay(relay.Down, d)
			}
		}
	}
}

// setLink calls set, which changes the state of the link between nodes i
// and j, then applies it; method names the caller in a failure.
func (c *Cluster) setLink(method string, i, j int, set func()) {
	c.helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) || j < 0 || j >= len(c.nodes) || i == j {
		c.fatalf("msctest: %s: no link between nodes %d and %d", method, i, j)
	}
	set()
	c.updateLocked()
}

// Heal ends the partition, and every Block and Cut: the bytes held are
// delivered.
func (c *Cluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.group)
	for i := range c.nodes {
		clear(c.blocked[i])
		clear(c.cut[i])
	}
	c.updateLocked()
}

// updateLocked sets each link: the bytes from node i to node j are held
// while the two are partitioned apart, either is paused, or i's to j are
// blocked; the link is down (reset, refused) while either node is killed
// or the link is cut.
func (c *Cluster) updateLocked() {
	now := time.Now()
	held := func(i, j int) bool {
		return c.group[i] != c.group[j] || now.Before(c.nodes[i].paused) || now.Before(c.nodes[j].paused) || c.blocked[i][j]
	}
	for i, row := range c.proxies {
		for j, p := range row {
			if p != nil {
				p.Hold(relay.Up, held(i, j))
				p.Hold(relay.Down, held(j, i))
				p.Cut(c.nodes[i].killed || c.nodes[j].killed || c.cut[i][j])
			}
		}
	}
}

// Kill ends node i abruptly, as a killed process: no leave message, its
// connections reset (its peers see them closed at once), and connections
// to it refused until Restart.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	n.killed = true
	c.updateLocked()
	c.mu.Unlock()
	testhook.Abort(n.m)
}

// Restart starts node i again as a new process: the same options (opt
// is called again) and UID, a new incarnation, a new listening port
// behind the same proxies, and StartTime now, so it is the youngest unless
// opt sets StartTime. A node still running is first stopped with Stop; use
// Kill first for a crash.
func (c *Cluster) Restart(i int) {
	c.helper()
	c.Node(i).Stop()
	ln := c.listen()
	m, wait := c.build(i, ln, time.Now())
	c.mu.Lock()
	n := c.nodes[i]
	n.ln.Close()
	n.ln, n.m, n.wait, n.killed = ln, m, wait, false
	for j := range c.nodes {
		if p := c.proxies[j][i]; p != nil {
			p.SetTarget(ln.Addr().String())
		}
	}
	c.updateLocked() // a link to a killed node stays down
	c.mu.Unlock()
	if err := m.Start(); err != nil {
		c.fatalf("msctest: restart node %d: %v", i, err)
	}
}

// Pause freezes node i for d, as SIGSTOP then SIGCONT would, and returns
// at once: the node sends and receives nothing and its election does not
// run (its peers count it dead after WaitTimeout); then it notices the gap
// and re-joins. While paused, Master answers what it answered when the
// pause began; IsMaster and IsMasterByKey, which read the clock, answer
// false once its last heartbeat is WaitTimeout-M/2 old (or its lease, with
// Quorum, has ended), as a paused process's would. Stopping a paused node
// waits for the pause to end.
func (c *Cluster) Pause(i int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	n := c.nodes[i]
	if until := time.Now().Add(d); until.After(n.paused) {
		n.paused = until
	}
	c.updateLocked()
	testhook.Pause(n.m, d)
	c.wg.Add(1)
	c.timers = append(c.timers, time.AfterFunc(d, func() {
		defer c.wg.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.updateLocked()
	}))
}

// WaitMaster waits until node i is master and every node that can reach
// it (running, not paused, in its group) names it as the global master
// with its term, none of them master but i. It fails the test if that does not happen
// within a generous bound: max(20s, 100*WaitTimeout).
func (c *Cluster) WaitMaster(i int) {
	c.helper()
	c.mu.Lock()
	bound := max(20*time.Second, 100*c.nodes[i].wait)
	c.mu.Unlock()
	deadline := time.Now().Add(bound)
	for {
		ok, why := c.agreed(i)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.fatalf("msctest: node %d not master after %v: %s", i, bound, why)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// agreed reports whether node i is master as WaitMaster wants, and if not,
// why.
func (c *Cluster) agreed(i int) (bool, string) {
	c.mu.Lock()
	now := time.Now()
	out := func(n *node) bool { return n.killed || now.Before(n.paused) }
	if out(c.nodes[i]) {
		c.mu.Unlock()
		return false, fmt.Sprintf("node %d is killed or paused", i)
	}
	want := c.nodes[i].m
	group := make(map[int]*msc.Msc)
	for j, n := range c.nodes {
		if c.group[j] == c.group[i] && !out(n) {
			group[j] = n.m
		}
	}
	c.mu.Unlock()
	var why []string
	term := want.Term()
	for j := range len(c.nodes) {
		m, ok := group[j]
		if !ok {
			continue
		}
		st := m.Status()
		if !st.Running && j != i {
			continue // stopped
		}
		if !st.Running || st.IsMaster != (j == i) || st.Master != want.UID() || st.Term != term {
			why = append(why, fmt.Sprintf("node %d: running %v, master %v, names %q, term %d (master's %d)",
				j, st.Running, st.IsMaster, st.Master, st.Term, term))
		}
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func (c *Cluster) helper() {
	if c.t != nil {
		c.t.Helper()
	}
}

// fatalf fails the test, or panics outside a test.
func (c *Cluster) fatalf(format string, args ...any) {
	if c.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	c.t.Helper()
	c.t.Fatalf(format, args...)
}

// Close stops every node (with Stop) and proxy, and waits for their
// goroutines. In a test, t.Cleanup calls it; it is safe to call more than
// once.
func (c *Cluster) Close() { c.close.Do(c.cleanup) }

func (c *Cluster) cleanup() {
	c.mu.Lock()
	c.done = true
	for _, tm := range c.timers {
		if tm.Stop() {
			c.wg.Done() // it will not run
		}
	}
	nodes := c.nodes
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n != nil && n.m != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.m.Stop()
			}()
		}
	}
	wg.Wait()
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				p.Close()
			}
		}
	}
	for _, n := range nodes {
		if n != nil && n.ln != nil {
			n.ln.Close() // a node never started does not close it
		}
	}
	c.wg.Wait()
}
