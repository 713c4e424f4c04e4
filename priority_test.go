package msc

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSetPriorityTransfer raises the youngest node's priority: mastership
// moves to it, with and without Quorum and Sticky, with no moment of two
// masters, within a bound; lowering it moves mastership back.
func TestSetPriorityTransfer(t *testing.T) {
	for _, c := range []struct {
		quorum int
		sticky bool
	}{{0, false}, {0, true}, {2, false}, {2, true}} {
		t.Run(fmt.Sprintf("quorum=%d/sticky=%v", c.quorum, c.sticky), func(t *testing.T) {
			tc := newCluster(t, 3, func(i int, o *Options) { o.Quorum, o.Sticky = c.quorum, c.sticky }).start()
			tc.waitMaster(tc.nodes[0])
			meter := meterOverlap(func() []*Msc { return tc.nodes })
			var took []time.Duration
			for range 3 {
				t0 := time.Now()
				tc.nodes[2].SetPriority(1)
				tc.waitMaster(tc.nodes[2])
				took = append(took, time.Since(t0))
				t0 = time.Now()
				tc.nodes[2].SetPriority(0)
				if !c.sticky {
					tc.waitMaster(tc.nodes[0])
					took = append(took, time.Since(t0))
				}
				tc.nodes[0].SetPriority(2) // moves it back under Sticky too
				tc.waitMaster(tc.nodes[0])
				tc.nodes[0].SetPriority(0)
			}
			overlap, who := meter.result()
			slices.Sort(took)
			t.Logf("transfer by SetPriority: median %v, max %v; two masters for %v", took[len(took)/2].Round(time.Microsecond),
				took[len(took)-1].Round(time.Microsecond), overlap)
			if overlap > 0 {
				t.Fatalf("two masters at once for %v (%s)", overlap, who)
			}
			// A transfer takes a few messages: far below WaitTimeout.
			if took[len(took)/2] > testWait {
				t.Fatalf("median transfer %v, longer than WaitTimeout %v", took[len(took)/2], testWait)
			}
			if got := tc.nodes[2].Status().Priority; got != 0 {
				t.Fatalf("Status().Priority = %d after SetPriority(0)", got)
			}
		})
	}
}

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

// TestMeta: each node's metadata reaches the peers; MasterMeta gives the
// master's, globally and per key, also on the master itself; SetMeta
// changes it at run time and the peers see it within an Interval or so;
// too much metadata is refused.
func TestMeta(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) {
		o.Meta = map[string]string{"http": fmt.Sprintf("10.0.0.%d:8080", i)}
		o.Keys = []string{"k"}
		if i == 0 {
			o.Keys = nil // node1 masters k
		}
	}).start()
	c.waitMaster(c.nodes[0])
	for i, m := range c.nodes {
		waitFor(t, fmt.Sprintf("node%d knows the master's metadata", i), func() bool {
			meta, ok := m.MasterMeta("")
			return ok && meta["http"] == "10.0.0.0:8080"
		})
	}
	waitFor(t, "node2 knows the metadata of k's master", func() bool {
		meta, ok := c.nodes[2].MasterMeta("k")
		return ok && meta["http"] == "10.0.0.1:8080"
	})
	if _, ok := c.nodes[0].MasterMeta("k"); ok {
		t.Fatal("MasterMeta of a key this node does not hold")
	}
	// The caller's map is copied both ways.
	meta, _ := c.nodes[1].MasterMeta("")
	meta["http"] = "changed"
	if again, _ := c.nodes[1].MasterMeta(""); again["http"] != "10.0.0.0:8080" {
		t.Fatal("MasterMeta returned the node's own map")
	}
	want := map[string]string{"http": "10.0.0.9:9090", "zone": "b"}
	t0 := time.Now()
	if err := c.nodes[0].SetMeta(want); err != nil {
		t.Fatal(err)
	}
	want["zone"] = "changed after SetMeta"
	waitFor(t, "peers see the new metadata", func() bool {
		for _, m := range c.nodes[1:] {
			got, _ := m.MasterMeta("")
			if !maps.Equal(got, map[string]string{"http": "10.0.0.9:9090", "zone": "b"}) {
				return false
			}
		}
		return true
	})
	took := time.Since(t0)
	t.Logf("SetMeta seen by every peer after %v", took)
	if took > testInterval+testWait {
		t.Fatalf("SetMeta took %v to reach the peers", took)
	}
	if st := c.nodes[2].Status(); st.Peers[0].Meta["zone"] != "b" || st.Meta["http"] != "10.0.0.2:8080" {
		t.Fatalf("Status: own %v, peers %+v", st.Meta, st.Peers)
	}
	big := map[string]string{"x": strings.Repeat("y", MaxMetaSize)}
	if err := c.nodes[0].SetMeta(big); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("SetMeta of %d bytes: %v", MaxMetaSize, err)
	}
	if _, err := New(Options{Key: "k", Meta: big}); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("New with Meta of %d bytes: %v", MaxMetaSize, err)
	}
}
