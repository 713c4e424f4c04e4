package msc

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRunAsMasterContextFromClock: the context of a RunAsMaster function
// answers from the clock. The master's elector is blocked (as in a
// SIGSTOP of the process, but the function's goroutine keeps running):
// nothing of the node runs to cancel the context, yet its Err turns
// non-nil once the mastership no longer holds (the lease with Quorum;
// freshFor after the last heartbeat without), Done is closed by its timer,
// and Deadline said when.
func TestRunAsMasterContextFromClock(t *testing.T) {
	for _, quorum := range []int{0, 2} {
		t.Run(fmt.Sprintf("quorum=%d", quorum), func(t *testing.T) {
			c := newCluster(t, 3, func(i int, o *Options) { o.Quorum = quorum }).start()
			c.waitMaster(c.nodes[0])
			m := c.nodes[0]
			type run struct {
				ctx  context.Context
				term uint64
			}
			got := make(chan run, 4)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go m.RunAsMaster(ctx, func(ctx context.Context, term uint64) {
				got <- run{ctx, term}
				<-ctx.Done()
			})
			var r run
			select {
			case r = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("RunAsMaster did not start on the master")
			}
			deadline, ok := r.ctx.Deadline()
			if !ok || r.ctx.Err() != nil {
				t.Fatalf("running: Deadline ok %v, Err %v", ok, r.ctx.Err())
			}
			if d := time.Until(deadline); d <= 0 || d > m.cfg.WaitTimeout {
				t.Fatalf("Deadline %v from now, want within WaitTimeout %v", d, m.cfg.WaitTimeout)
			}
			// Block the elector for 3*WaitTimeout; meanwhile nothing of
			// the node can cancel the context.
			blocked := time.Now()
			go freeze(m, 3*testWait)
			waitFor(t, "ctx.Err while the elector is blocked", func() bool { return r.ctx.Err() != nil })
			took := time.Since(blocked)
			select {
			case <-r.ctx.Done():
			case <-time.After(testWait):
				t.Fatal("Done not closed with Err set")
			}
			if took > 2*testWait {
				t.Fatalf("Err turned non-nil %v after the block, want within WaitTimeout %v", took, testWait)
			}
			if m.IsMaster() {
				t.Fatal("IsMaster true while its RunAsMaster context is done")
			}
			if took >= 3*testWait {
				t.Fatalf("Err only after the elector ran again (%v)", took)
			}
			t.Logf("Err non-nil %v after the elector was blocked (WaitTimeout %v)", took.Round(time.Millisecond), testWait)
		})
	}
}

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
