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
	"github.com/msc-go/msc/internal/cluster"
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
	t   testing.TB // nil outside a test
	opt func(i int, o *msc.Options)
	t0  time.Time
	h   *cluster.Cluster[*msc.Msc] // the nodes, their proxies and links

	mu   sync.Mutex
	wait []time.Duration // each node's WaitTimeout
}

// NewCluster starts n nodes. Node i has UID "node<i>", and node 0 is the
// oldest, then node 1, and so on (StartTime); each has DefaultInterval,
// DefaultWaitTimeout and DefaultKey, and dials every other node as the
// server "node<j>". opt, if not nil, may then change node i's options
// (before New), except Listener, which the cluster sets. The cluster is
// stopped by t.Cleanup. Outside a test (a program, an Example), t may be
// nil: a failure then panics, and the caller calls Close.
func NewCluster(t testing.TB, n int, opt func(i int, o *msc.Options)) *Cluster {
	if t != nil {
		t.Helper()
	}
	c := &Cluster{t: t, opt: opt, t0: time.Now(), wait: make([]time.Duration, max(n, 0))}
	c.h = cluster.New(cluster.Config[*msc.Msc]{T: t, Prefix: "msctest: ", N: n, Build: c.build})
	for i := range n {
		c.h.Start(i)
	}
	return c
}

// build makes node i, listening on ln and dialing node j on ports[j], and
// notes its WaitTimeout. Node 0
// is the oldest; a node restarted is younger than all.
func (c *Cluster) build(i int, ln net.Listener, ports []int, restart bool) (*msc.Msc, error) {
	start := c.t0.Add(time.Duration(i-c.Len()) * time.Millisecond)
	if restart {
		start = time.Now()
	}
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
		return nil, err
	}
	for j := range c.Len() {
		if j != i {
			if err := m.AddServer(fmt.Sprint("node", j), msc.ServerConfig{Port: ports[j]}); err != nil {
				return nil, err
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
	c.mu.Lock()
	c.wait[i] = wait
	c.mu.Unlock()
	return m, nil
}

// Len returns the number of nodes.
func (c *Cluster) Len() int { return len(c.wait) }

// Node returns node i: the one running now, or the last one if it was
// killed or stopped.
func (c *Cluster) Node(i int) *msc.Msc { return c.h.Node(i) }

// Partition cuts the network into groups: a node reaches only the nodes of
// its own group; a node in no group is alone. As a real partition does, it
// holds the bytes in flight: none is lost, and they arrive once the
// partition heals, unless an end has given up on the connection by then
// (a node closes a connection that stayed silent for WaitTimeout). New
// connections across groups hang until then. A Partition replaces the
// previous one.
func (c *Cluster) Partition(groups ...[]int) {
	c.helper()
	c.h.Partition(groups...)
}

// Block holds the bytes node from sends to node to, on every connection
// between them, while the bytes node to sends to node from still arrive:
// a one-way partition, as a firewall rule that drops one direction makes.
// As with Partition, the bytes are held, not lost, and new connections
// between the two hang. It lasts until Heal.
func (c *Cluster) Block(from, to int) {
	c.helper()
	c.h.Block(from, to, true)
}

// Cut resets the connections between nodes i and j, and refuses new ones
// at once with a reset, as a firewall rule that rejects would, until
// Heal: both nodes see the link down at once, and keep redialing.
func (c *Cluster) Cut(i, j int) {
	c.helper()
	c.h.Cut(i, j)
}

// Delay slows every link: each byte between two nodes, either way,
// arrives d later than sent (a slow network; the order is kept).
// Delay(0) ends it; Heal leaves it.
func (c *Cluster) Delay(d time.Duration) { c.h.Delay(d) }

// Heal ends the partition, and every Block and Cut: the bytes held are
// delivered.
func (c *Cluster) Heal() { c.h.Heal() }

// Kill ends node i abruptly, as a killed process: no leave message, its
// connections reset (its peers see them closed at once), and connections
// to it refused until Restart.
func (c *Cluster) Kill(i int) { c.h.Kill(i) }

// Restart starts node i again as a new process: the same options (opt
// is called again) and UID, a new incarnation, a new listening port
// behind the same proxies, and StartTime now, so it is the youngest unless
// opt sets StartTime. A node still running is first stopped with Stop; use
// Kill first for a crash.
func (c *Cluster) Restart(i int) {
	c.helper()
	c.h.Restart(i)
}

// Pause freezes node i for d, as SIGSTOP then SIGCONT would, and returns
// at once: the node sends and receives nothing and its election does not
// run (its peers count it dead after WaitTimeout); then it notices the gap
// and re-joins. While paused, Master answers what it answered when the
// pause began; IsMaster and IsMasterByKey, which read the clock, answer
// false once its last heartbeat is WaitTimeout-M/2 old (or its lease, with
// Quorum, has ended), as a paused process's would. Stopping a paused node
// waits for the pause to end.
func (c *Cluster) Pause(i int, d time.Duration) { c.h.Pause(i, d) }

// WaitMaster waits until node i is master and every node that can reach
// it (running, not paused, in its group) names it as the global master
// with its term, none of them master but i. It fails the test if that does not happen
// within a generous bound: max(20s, 100*WaitTimeout).
func (c *Cluster) WaitMaster(i int) {
	c.helper()
	c.mu.Lock()
	bound := max(20*time.Second, 100*c.wait[i])
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
	group, ok := c.h.Reach(i)
	if !ok {
		return false, fmt.Sprintf("node %d is killed or paused", i)
	}
	want := group[i]
	var why []string
	term := want.Term()
	for j := range c.Len() {
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
func (c *Cluster) Close() { c.h.Close() }
