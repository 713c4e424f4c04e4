package msc

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test timing: short intervals, a generous WaitTimeout so that a loaded
// 2-core machine running -race does not count live peers dead.
const (
	testInterval = 20 * time.Millisecond
	testWait     = 300 * time.Millisecond
	settle       = 20 * time.Second // deadline for polls
)

// nodeGoroutines returns the stacks of goroutines running code of this
// package (not tests).
func nodeGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/msc-go/msc.(") && !strings.Contains(g, "testing.tRunner") &&
			!strings.Contains(g, "nodeGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func waitNoGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		s := nodeGoroutines()
		if s == "" || time.Now().After(deadline) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listen returns a listener on a free loopback port.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// loopbackPair returns the dialed and the accepted end of a loopback TCP
// connection, closed when the test ends.
func loopbackPair(tb testing.TB) (dialed, accepted net.Conn) {
	tb.Helper()
	ln := listen(tb)
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- nc
	}()
	dc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	lc, ok := <-ch
	if !ok {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { dc.Close(); lc.Close() })
	return dc, lc
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// base is an arbitrary start time; node i of a cluster starts i seconds
// after it, so node 0 is the oldest.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testOptions(i int) Options {
	return Options{
		Key:         "test passphrase",
		Interval:    testInterval,
		WaitTimeout: testWait,
		StartTime:   base.Add(time.Duration(i) * time.Second),
		UID:         fmt.Sprintf("node%d", i),
	}
}

// testCluster is n nodes configured as a full mesh.
type testCluster struct {
	t     testing.TB
	nodes []*Msc
	opts  []Options
	lns   []net.Listener
}

// newCluster builds n nodes, each dialing all the others; mod may change
// each node's options. It does not start them.
func newCluster(t testing.TB, n int, mod func(i int, o *Options)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := 0; i < n; i++ {
		o := testOptions(i)
		o.Listener = listen(t)
		if mod != nil {
			mod(i, &o)
		}
		c.opts = append(c.opts, o)
		c.lns = append(c.lns, o.Listener)
	}
	for i := range n {
		c.nodes = append(c.nodes, c.build(i))
	}
	t.Cleanup(c.stopAll)
	return c
}

// build makes node i from its options, with every other node as a server.
func (c *testCluster) build(i int) *Msc {
	c.t.Helper()
	m, err := New(c.opts[i])
	if err != nil {
		c.t.Fatal(err)
	}
	for j := range c.opts {
		if j != i {
			if err := m.AddServer(fmt.Sprint(j), ServerConfig{Port: port(c.lns[j])}); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	return m
}

// restart replaces node i by a new one on the same port (a new process).
func (c *testCluster) restart(i int, mod func(o *Options)) *Msc {
	c.t.Helper()
	c.nodes[i].Stop()
	addr := c.lns[i].Addr().String()
	var ln net.Listener
	var err error
	waitFor(c.t, "port free again", func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	c.lns[i] = ln
	c.opts[i].Listener = ln
	if mod != nil {
		mod(&c.opts[i])
	}
	c.nodes[i] = c.build(i)
	if err := c.nodes[i].Start(); err != nil {
		c.t.Fatal(err)
	}
	return c.nodes[i]
}

func (c *testCluster) start() *testCluster {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, m := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Start()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	return c
}

func (c *testCluster) stopAll() {
	for _, m := range c.nodes {
		m.Stop()
	}
}

// running returns the nodes that are running.
func (c *testCluster) running() []*Msc {
	var out []*Msc
	for _, m := range c.nodes {
		if m.snap.Load().Running {
			out = append(out, m)
		}
	}
	return out
}

// agreed reports whether exactly one running node is master, it is want,
// and every running node names it.
func (c *testCluster) agreed(want *Msc) bool {
	masters := 0
	for _, m := range c.running() {
		if m.IsMaster() {
			masters++
			if m != want {
				return false
			}
		}
		if uid, ok := m.Master(); !ok || uid != want.UID() {
			return false
		}
	}
	return masters == 1
}

// waitMaster polls until every running node agrees that want is master.
func (c *testCluster) waitMaster(want *Msc) {
	c.t.Helper()
	waitFor(c.t, "master "+want.UID(), func() bool { return c.agreed(want) }, c.describe)
}

func (c *testCluster) describe() string {
	var b strings.Builder
	for _, m := range c.nodes {
		uid, ok := m.Master()
		fmt.Fprintf(&b, "%s: running=%v master=%v thinks=%q/%v\n", m.UID(), m.snap.Load().Running, m.IsMaster(), uid, ok)
	}
	return b.String()
}

// waitFor polls cond until it holds or the deadline passes; on failure
// it prints what each of state says.
func waitFor(t testing.TB, what string, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, s := range state {
				b.WriteString(s())
			}
			t.Fatalf("timed out waiting for %s\n%s", what, b.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// liveCount returns how many peers st counts live.
func liveCount(st Status) int {
	n := 0
	for _, p := range st.Peers {
		if p.Live {
			n++
		}
	}
	return n
}
