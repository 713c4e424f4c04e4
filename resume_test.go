package msc

import (
	"testing"
	"time"
)

// TestClockJumpRejoins: the elector reads the wall clock each turn; when
// it moved on by far more than the monotonic clock (a suspended machine),
// the master gives up its mastership at once and takes it back only after
// hearing from its peers.
func TestClockJumpRejoins(t *testing.T) {
	c := newCluster(t, 3, nil).start()
	c.waitMaster(c.nodes[0])
	m := c.nodes[0]
	var master bool
	m.call(func(e *elector) {
		now, wall := clocks()
		e.turn(now, wall+int64(10*time.Second), wokeEvent, nil, nil)
		master = m.IsMaster()
	})
	if master {
		t.Fatal("IsMaster true right after a 10 s jump of the wall clock")
	}
	c.waitMaster(m)
}
