package msc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
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

// TestAlgorithmsElect runs a 3-node cluster with each algorithm (and
// HeaderEncrypted with each cipher): the oldest is elected, peers see each
// other over the sealed connections, and a Stop hands over to the next.
func TestAlgorithmsElect(t *testing.T) {
	for _, tc := range []struct {
		alg, key string
		hidden   bool
	}{
		{"aes192", "test passphrase", false},
		{"aes256", "test passphrase", true},
		{"no", "", false},
	} {
		t.Run(fmt.Sprintf("%s/HeaderEncrypted=%v", tc.alg, tc.hidden), func(t *testing.T) {
			c := newCluster(t, 3, func(i int, o *Options) {
				o.Algorithm, o.Key, o.HeaderEncrypted = tc.alg, tc.key, tc.hidden
				o.Keys = []string{"k"}
			})
			var logs []*errLog
			for _, m := range c.nodes {
				logs = append(logs, watchErrors(m))
			}
			c.start()
			c.waitMaster(c.nodes[0])
			waitFor(t, "every node counts both peers live", func() bool {
				for _, m := range c.nodes {
					live := 0
					for _, p := range m.Status().Peers {
						if p.Live && p.Keys != nil {
							live++
						}
					}
					if live != 2 {
						return false
					}
				}
				return true
			})
			if !c.nodes[0].IsMasterByKey("k") || c.nodes[1].IsMasterByKey("k") || c.nodes[2].IsMasterByKey("k") {
				t.Fatal("key k not mastered by node0 alone")
			}
			for i, l := range logs {
				if s := l.String(); s != "" {
					t.Fatalf("node%d reported errors:%s", i, s)
				}
			}
			c.nodes[0].Stop()
			c.waitMaster(c.nodes[1])
			waitFor(t, "node1 master of k", func() bool {
				return c.nodes[1].IsMasterByKey("k") && !c.nodes[2].IsMasterByKey("k")
			})
		})
	}
}

// TestConcurrentStop calls Stop on every node of a cluster from several
// goroutines at once, plus on a node never started: every call returns
// nil, the nodes are stopped when their calls return, and no goroutine of
// any node is left.
func TestConcurrentStop(t *testing.T) {
	if s := waitNoGoroutines(5 * time.Second); s != "" {
		t.Fatalf("goroutines before the test:\n%s", s)
	}
	c := newCluster(t, 3, func(i int, o *Options) { o.Keys = []string{"k"} }).start()
	c.waitMaster(c.nodes[0])
	idle, err := New(testOptions(9))
	if err != nil {
		t.Fatal(err)
	}
	nodes := append([]*Msc{idle}, c.nodes...)
	const callers = 4
	var wg sync.WaitGroup
	errs := make(chan error, callers*len(nodes))
	for _, m := range nodes {
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := m.Stop()
				if m.IsMaster() || m.IsMasterByKey("k") || m.Status().Running {
					err = fmt.Errorf("%s: Stop returned (%v) before the node stopped", m.UID(), err)
				}
				errs <- err
			}()
		}
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(settle):
		t.Fatal("concurrent Stop calls did not all return")
	}
	close(errs)
	// The call that stopped the node returns nil, every other ErrStopped.
	stopped := 0
	for err := range errs {
		switch {
		case err == nil:
			stopped++
		case !errors.Is(err, ErrStopped):
			t.Fatal(err)
		}
	}
	if stopped != len(nodes) {
		t.Fatalf("%d calls of Stop returned nil, want one per node (%d)", stopped, len(nodes))
	}
	if s := waitNoGoroutines(5 * time.Second); s != "" {
		t.Fatalf("goroutines left after concurrent Stop:\n%s", s)
	}
}

// TestMaxInboundLimit fills a node's inbound slots with idle connections
// that never speak: one slot is node 1's connection, MaxInbound-1 are
// idle; the next inbound connection is closed at once and reported as
// errTooManyInbound. Meanwhile the election is unaffected: the two nodes
// keep hearing each other and agree on node 0. Once the idle connections
// close, a new inbound connection is served again.
func TestMaxInboundLimit(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) {
		// Idle connections are closed after WaitTimeout (the handshake
		// deadline): long enough to fill every slot first.
		o.WaitTimeout = 20 * time.Second
	})
	errs := watchErrors(c.nodes[0])
	c.start()
	c.waitMaster(c.nodes[0])
	n0, n1 := c.nodes[0], c.nodes[1]
	waitFor(t, "node1's connection to node0 is up", func() bool {
		for _, p := range n0.Status().Peers {
			if p.UID == "node1" && p.Live && p.Conns == 1 {
				return true
			}
		}
		return false
	})
	addr := n0.Addr().String()
	var idle []net.Conn
	closeIdle := func() {
		for _, nc := range idle {
			nc.Close()
		}
		idle = nil
	}
	defer closeIdle()
	// served reports whether the node serves nc: it sends its hello at
	// once, where a connection over the limit is closed without a byte.
	served := func(nc net.Conn) bool {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(settle))
		var b [1]byte
		_, err := nc.Read(b[:])
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("reading from the node: %v", err)
		}
		return err == nil
	}
	dial := func() net.Conn {
		t.Helper()
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	t0 := time.Now()
	// One connection per pair, dialed by the smaller UID: node0's to
	// node1 is its own, so every inbound slot is free.
	for i := range MaxInbound {
		nc := dial()
		idle = append(idle, nc)
		if !served(nc) {
			t.Fatalf("inbound connection %d of %d closed at once", i+1, MaxInbound)
		}
	}
	over := dial()
	if served(over) {
		t.Fatalf("inbound connection %d served, over MaxInbound = %d", MaxInbound+1, MaxInbound)
	}
	over.Close()
	t.Logf("%d inbound connections opened in %v", MaxInbound, time.Since(t0).Round(time.Millisecond))
	waitFor(t, "the refused connection reported", func() bool {
		pes := errs.peerErrors(errTooManyInbound)
		return len(pes) > 0 && pes[0].Peer != ""
	})
	// The election goes on: both nodes hear each other after the flood.
	full := time.Now()
	waitFor(t, "heartbeats after the flood", func() bool {
		return heardAfter(n0, "node1", full) && heardAfter(n1, "node0", full) && c.agreed(n0)
	})
	closeIdle()
	waitFor(t, "a new inbound connection served again", func() bool {
		nc := dial()
		defer nc.Close()
		return served(nc)
	})
	if !c.agreed(n0) {
		t.Fatalf("election changed:\n%s", c.describe())
	}
}

func heardAfter(m *Msc, uid string, t time.Time) bool {
	for _, p := range m.Status().Peers {
		if p.UID == uid {
			return p.Live && p.LastHeard.After(t)
		}
	}
	return false
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
