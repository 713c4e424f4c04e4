package msc_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/msctest"
)

// Network faults between real nodes, on a cluster of package msctest:
// every directed link (node i dialing node j) goes through a relay that
// can hold, delay or cut the traffic, in either direction.

var all3 = []int{0, 1, 2}

// newMesh starts n nodes with the timing of this package's tests; node i
// starts i seconds after node 0, also when restarted: node 0 is the
// oldest. mod may change each node's options.
func newMesh(t *testing.T, n int, mod func(i int, o *msc.Options)) *msctest.Cluster {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return msctest.NewCluster(t, n, func(i int, o *msc.Options) {
		o.Interval, o.WaitTimeout = msc.TestingInterval, msc.TestingWait
		o.StartTime = base.Add(time.Duration(i) * time.Second)
		if mod != nil {
			mod(i, o)
		}
	})
}

// viewsConsistent checks what every node can decide alone: it names as
// master the oldest of itself and the peers it counts live, and is master
// exactly when that is itself.
func viewsConsistent(c *msctest.Cluster) bool {
	for i := range c.Len() {
		m := c.Node(i)
		want := slices.Min(append(msc.LivePeers(m), i))
		if uid, _ := m.Master(); uid != c.Node(want).UID() || m.IsMaster() != (want == i) {
			return false
		}
	}
	return true
}

func TestPartitionSymmetric(t *testing.T) {
	c := newMesh(t, 3, nil)
	msc.WaitSides(t, c.Node, all3)
	t0 := time.Now()
	c.Partition([]int{0}, []int{1, 2})
	msc.WaitSides(t, c.Node, []int{0}, []int{1, 2})
	t.Logf("partition {0}|{1,2} settled in %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	c.Heal()
	msc.WaitSides(t, c.Node, all3)
	t.Logf("healed in %v", time.Since(t0).Round(time.Millisecond))

	// The other way round: the master's side keeps it.
	c.Partition([]int{0, 1}, []int{2})
	msc.WaitSides(t, c.Node, []int{0, 1}, []int{2})
	c.Heal()
	msc.WaitSides(t, c.Node, all3)
}

// TestPartitionAsymmetric holds the traffic of one direction only.
func TestPartitionAsymmetric(t *testing.T) {
	c := newMesh(t, 3, nil)
	msc.WaitSides(t, c.Node, all3)

	// Nothing node 0 sends arrives, on either connection of each pair;
	// what it receives still does. Its peers stop hearing it and close;
	// a new connection never completes its handshake.
	c.Block(0, 1)
	c.Block(0, 2)
	msc.WaitSides(t, c.Node, []int{0}, []int{1, 2})
	c.Heal()
	msc.WaitSides(t, c.Node, all3)

	// Node 0 receives nothing.
	c.Block(1, 0)
	c.Block(2, 0)
	msc.WaitSides(t, c.Node, []int{0}, []int{1, 2})
	c.Heal()
	msc.WaitSides(t, c.Node, all3)

	// One direction of one pair: 0 and 1 lose each other, 2 still sees
	// both. There is no transitive view to agree on: 1 is master of what
	// it sees, and so is 0. Without Quorum each node elects the oldest it
	// hears; check that, and that it heals.
	c.Block(0, 1)
	msc.WaitFor(t, "0 and 1 lose each other", func() bool {
		return slices.Equal(msc.LivePeers(c.Node(0)), []int{2}) && slices.Equal(msc.LivePeers(c.Node(1)), []int{2}) &&
			slices.Equal(msc.LivePeers(c.Node(2)), []int{0, 1}) && viewsConsistent(c)
	})
	uid, _ := c.Node(2).Master()
	t.Logf("0↛1: masters: node0=%v node1=%v node2=%v (node2 names %v)",
		c.Node(0).IsMaster(), c.Node(1).IsMaster(), c.Node(2).IsMaster(), uid)
	c.Heal()
	msc.WaitSides(t, c.Node, all3)
}

// TestSlowLink: 30 ms of delay on every link, both ways, changes nothing.
func TestSlowLink(t *testing.T) {
	const delay = 30 * time.Millisecond
	c := newMesh(t, 3, nil)
	var changes atomic.Int64
	for i := range 3 {
		c.Node(i).OnChange(func(msc.Change) { changes.Add(1) })
	}
	msc.WaitSides(t, c.Node, all3)
	// And the master's term on every node: a node may learn it a frame
	// after the master's name, and that change is not the slow link's
	// (2 runs of about 150 under -race counted it).
	settle := time.Now().Add(msc.TestingSettle)
	for c.Node(0).Term() == 0 || c.Node(1).Term() != c.Node(0).Term() || c.Node(2).Term() != c.Node(0).Term() {
		if time.Now().After(settle) {
			t.Fatalf("terms never agreed: %d %d %d", c.Node(0).Term(), c.Node(1).Term(), c.Node(2).Term())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 3 {
		msc.FlushCallbacks(t, c.Node(i))
	}
	before := changes.Load()
	t0 := time.Now()
	c.Delay(delay)
	// Watch for 2 WaitTimeouts, and until every node has heard every peer
	// through the delayed links.
	heardAfter := func(i int) bool {
		for _, p := range c.Node(i).Status().Peers {
			if !p.LastHeard.After(t0.Add(delay)) {
				return false
			}
		}
		return true
	}
	for time.Since(t0) < 2*msc.TestingWait || !heardAfter(0) || !heardAfter(1) || !heardAfter(2) {
		if bad := msc.SidesHold(c.Node, all3); bad != "" {
			t.Fatalf("after %v of delay: %s", time.Since(t0), bad)
		}
		if time.Since(t0) > msc.TestingSettle {
			t.Fatal("delayed heartbeats never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 3 {
		msc.FlushCallbacks(t, c.Node(i))
	}
	if n := changes.Load() - before; n != 0 {
		t.Fatalf("%d mastership changes on a slow link", n)
	}
}

// TestFlappingLink cuts and restores the link between nodes 0 and 1 every
// 50 ms for a second. Node 2 sees both throughout; at the end all agree.
func TestFlappingLink(t *testing.T) {
	c := newMesh(t, 3, nil)
	msc.WaitSides(t, c.Node, all3)
	n0, n2 := c.Node(0), c.Node(2)
	var lost []string
	for i := range 20 {
		if i%2 == 0 {
			c.Cut(0, 1)
		} else {
			c.Heal()
		}
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
	c.Heal()
	msc.WaitSides(t, c.Node, all3)
	if len(lost) > 0 {
		t.Fatalf("during the flapping: %v", slices.Compact(lost))
	}
}

// TestRestartLoop restarts nodes five times, the master three of them;
// the others fail over at each stop and all agree after each start.
func TestRestartLoop(t *testing.T) {
	c := newMesh(t, 3, nil)
	msc.WaitSides(t, c.Node, all3)
	for round, i := range []int{0, 1, 0, 2, 0} {
		t0 := time.Now()
		c.Node(i).Stop()
		rest := slices.DeleteFunc(slices.Clone(all3), func(j int) bool { return j == i })
		msc.WaitSides(t, c.Node, rest)
		stopped := time.Since(t0)
		c.Restart(i) // as old as before: newMesh sets its StartTime
		msc.WaitSides(t, c.Node, all3)
		t.Logf("round %d: node%d stopped, others agreed in %v; back, all agreed in %v", round, i,
			stopped.Round(time.Millisecond), (time.Since(t0) - stopped).Round(time.Millisecond))
	}
}
