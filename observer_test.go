package msc

import (
	"testing"
	"time"
)

// TestObserver: an observer knows the master, globally and per key, and
// never becomes master of anything, even when it is the oldest and the
// only node holding a key; it does not count toward Quorum.
func TestObserver(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) {
		o.Keys = []string{"k"}
		if i == 0 {
			o.Observer = true // the oldest
			o.Keys = []string{"k", "mine"}
		}
		o.Quorum = 2 // of the two voters
	}).start()
	waitFor(t, "node1 master, the observer knows it", func() bool {
		uid, ok := c.nodes[0].Master()
		kuid, kok := c.nodes[0].MasterByKey("k")
		return c.nodes[1].IsMaster() && ok && uid == "node1" && kok && kuid == "node1"
	})
	for i := range 30 {
		if c.nodes[0].IsMaster() || c.nodes[0].IsMasterByKey("k") || c.nodes[0].IsMasterByKey("mine") {
			t.Fatalf("the observer is master (check %d)", i)
		}
		time.Sleep(testInterval / 2)
	}
	if _, ok := c.nodes[1].MasterByKey("mine"); ok {
		t.Fatal("node1 names a master of a key only the observer holds")
	}
	st := c.nodes[1].Status()
	if !st.Peers[0].Observer || st.Peers[0].UID != "node0" {
		t.Fatalf("node1's Status does not show node0 as an observer: %+v", st.Peers)
	}
	// Without the voter node2, node1 has no quorum: the observer does not
	// make up for it.
	c.nodes[2].Stop()
	waitFor(t, "node1 steps down without a quorum of voters", func() bool { return !c.nodes[1].IsMaster() })
	time.Sleep(2 * testWait)
	if c.nodes[1].IsMaster() || c.nodes[0].IsMaster() {
		t.Fatal("a master without a quorum of voters")
	}
}
