package msc

import (
	"testing"
	"time"
)

// timeToAgree starts polling, every 100µs, whether every running node of c
// agrees that want is master, and returns a function that waits (up to
// settle) for the first instant it did and returns it.
func timeToAgree(t *testing.T, c *testCluster, want *Msc) func() time.Time {
	t.Helper()
	at := make(chan time.Time, 1)
	stop := make(chan struct{})
	go func() {
		deadline := time.Now().Add(settle)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			if c.agreed(want) {
				at <- time.Now()
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
		close(at)
	}()
	return func() time.Time {
		t.Helper()
		defer close(stop)
		tm, ok := <-at
		if !ok {
			t.Fatalf("%s never became the agreed master:\n%s", want.UID(), c.describe())
		}
		return tm
	}
}

// TestHandoffWithinWaitTimeout: the master leaves, gracefully (Stop) or
// abruptly (its sockets closed, as by a killed process); the next oldest
// is agreed master by every running node within WaitTimeout, measured
// from the moment the master began to leave. Twice in a row: node 0
// leaves, then node 1. The bound asserted is WaitTimeout/2 with a
// WaitTimeout of 1s: far above the milliseconds a handoff takes, and
// below what noticing the loss by silence alone would take (at least
// WaitTimeout-Interval), so a broken fast path fails.
func TestHandoffWithinWaitTimeout(t *testing.T) {
	const wait = time.Second
	for _, tc := range []struct {
		name  string
		leave func(*Msc)
	}{
		{"Stop", func(m *Msc) { m.Stop() }},
		{"abrupt", func(m *Msc) { m.abort() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, func(i int, o *Options) { o.WaitTimeout = wait }).start()
			c.waitMaster(c.nodes[0])
			for i := range 2 {
				next := c.nodes[i+1]
				t0 := time.Now()
				agreed := timeToAgree(t, c, next)
				tc.leave(c.nodes[i])
				if c.nodes[i].IsMaster() {
					t.Fatalf("node%d still master after leaving", i)
				}
				d := agreed().Sub(t0)
				t.Logf("%s of node%d: node%d agreed master after %v (WaitTimeout %v)", tc.name, i, i+1, d, wait)
				if d > wait/2 {
					t.Fatalf("%s of node%d: handoff took %v, more than WaitTimeout/2 = %v", tc.name, i, d, wait/2)
				}
			}
		})
	}
}

func TestSilentPeerHandoff(t *testing.T) {
	c := newCluster(t, 3, nil).start()
	c.waitMaster(c.nodes[0])
	start := time.Now()
	c.nodes[0].silent.Store(true)
	waitFor(t, "others elect n1", func() bool {
		return c.nodes[1].IsMaster() && !c.nodes[2].IsMaster()
	})
	if d := time.Since(start); d < testWait/2 {
		t.Fatalf("silent master replaced after %v, before WaitTimeout %v", d, testWait)
	}
	c.nodes[0].silent.Store(false)
	c.waitMaster(c.nodes[0])
}
