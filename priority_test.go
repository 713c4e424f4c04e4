package msc

import (
	"fmt"
	"slices"
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

func TestPriorityPinsMaster(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) {
		if i == 2 {
			o.Priority = 10 // the youngest, but preferred
		}
	}).start()
	c.waitMaster(c.nodes[2])
	c.nodes[2].Stop()
	c.waitMaster(c.nodes[0])
	st := c.nodes[0].Status()
	if st.Priority != 0 || len(st.Peers) == 0 || st.Peers[0].Priority != 10 {
		t.Fatalf("priorities in Status: %+v", st)
	}
}

func TestStickyKeepsMasterAfterPause(t *testing.T) {
	g0, g1 := pauseMaster(t, true)
	if g0 != 1 || g1 != 1 {
		t.Fatalf("with Sticky: node0 became master %d times, node1 %d; want 1 and 1", g0, g1)
	}
}

func TestNotStickyTakesBackAfterPause(t *testing.T) {
	g0, g1 := pauseMaster(t, false)
	if g0 != 2 || g1 != 1 {
		t.Fatalf("without Sticky: node0 became master %d times, node1 %d; want 2 and 1", g0, g1)
	}
}

// pauseMaster freezes node 0 (the master) until node 1 took over, then
// lets it go on, and returns how many times each node became master.
func pauseMaster(t *testing.T, sticky bool) (gains0, gains1 int) {
	c := newCluster(t, 3, func(i int, o *Options) { o.Sticky = sticky })
	logs := make([]changeLog, 3)
	for i, m := range c.nodes {
		logs[i].watch(m)
	}
	c.start()
	c.waitMaster(c.nodes[0])
	done := make(chan struct{})
	go func() {
		defer close(done)
		freeze(c.nodes[0], 3*testWait)
	}()
	waitFor(t, "node1 takes over", func() bool { return c.nodes[1].IsMaster() })
	<-done
	want := c.nodes[0]
	if sticky {
		want = c.nodes[1]
	}
	c.waitMaster(want)
	// Let a few more intervals pass: no flapping after the settle.
	deadline := time.Now().Add(5 * testWait)
	for time.Now().Before(deadline) {
		if !c.agreed(want) {
			t.Fatalf("mastership moved after settling:\n%s", c.describe())
		}
		time.Sleep(testInterval)
	}
	return logs[0].gains(), logs[1].gains()
}
