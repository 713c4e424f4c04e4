package msc

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestMain runs the package tests, then checks that no goroutine of a
// node outlived the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitNoGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of msc left after all tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func TestLoneNodeIsMasterAtOnce(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if m.IsMaster() {
		t.Fatal("master before Start")
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if !m.IsMaster() {
		t.Fatal("a node without peers is not master right after Start")
	}
	if uid, ok := m.Master(); !ok || uid != m.UID() {
		t.Fatalf("Master() = %q, %v", uid, ok)
	}
	if err := m.Start(); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	m.Stop()
	if m.IsMaster() {
		t.Fatal("a stopped node is master")
	}
	if err := m.Stop(); !errors.Is(err, ErrStopped) {
		t.Fatal("second Stop:", err)
	}
	if err := m.Start(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := m.AddServer("x", ServerConfig{Port: 1}); !errors.Is(err, ErrStopped) {
		t.Fatalf("AddServer after Stop: %v", err)
	}
}

func TestConvergeOnOldest(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			// Give the oldest node the largest UID: start time decides first.
			c := newCluster(t, n, func(i int, o *Options) { o.UID = fmt.Sprintf("z%d", n-i) }).start()
			c.waitMaster(c.nodes[0])
			waitFor(t, "everyone sees everyone", func() bool {
				for _, m := range c.nodes {
					if liveCount(m.Status()) != n-1 {
						return false
					}
				}
				return true
			})
		})
	}
}

func TestUIDBreaksStartTimeTies(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) {
		o.StartTime = base
		o.UID = []string{"b", "a", "c"}[i]
	}).start()
	c.waitMaster(c.nodes[1])
}

func TestNoMasterBeforeHearingPeers(t *testing.T) {
	// Node 1 starts while node 0 (older) is already up: it must never
	// claim mastership, not even for a moment.
	c := newCluster(t, 2, nil)
	if err := c.nodes[0].Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []Change
	c.nodes[1].OnChange(func(ch Change) {
		mu.Lock()
		changes = append(changes, ch)
		mu.Unlock()
	})
	if err := c.nodes[1].Start(); err != nil {
		t.Fatal(err)
	}
	if c.nodes[1].IsMaster() {
		t.Fatal("younger node master right after Start")
	}
	c.waitMaster(c.nodes[0])
	c.nodes[1].Stop()
	mu.Lock()
	defer mu.Unlock()
	for _, ch := range changes {
		if ch.IsMaster {
			t.Fatalf("younger node claimed mastership: %+v", changes)
		}
	}
}

func TestUnreachablePeersDoNotDelayForever(t *testing.T) {
	o := testOptions(5)
	o.Listener = listen(t)
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	// A port nobody listens on: refused at once.
	dead := listen(t)
	p := port(dead)
	dead.Close()
	m.AddServer("gone", ServerConfig{Port: p})
	var errs []error
	var mu sync.Mutex
	m.OnError(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	waitFor(t, "master", m.IsMaster)
	waitFor(t, "unreachable reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			var pe *PeerError
			if errors.Is(err, ErrUnreachable) && errors.As(err, &pe) && pe.Peer == "gone" {
				return true
			}
		}
		return false
	})
}

func TestPerKeyMasters(t *testing.T) {
	keys := [][]string{{"a"}, {"a", "b"}, {"b", "c"}}
	c := newCluster(t, 3, func(i int, o *Options) { o.Keys = keys[i] }).start()
	c.waitMaster(c.nodes[0])
	want := map[string]*Msc{"a": c.nodes[0], "b": c.nodes[1], "c": c.nodes[2]}
	waitFor(t, "per-key masters", func() bool {
		for i, m := range c.nodes {
			for _, k := range []string{"a", "b", "c"} {
				has := slices.Contains(keys[i], k)
				if m.IsMasterByKey(k) != (has && want[k] == m) {
					return false
				}
				uid, ok := m.MasterByKey(k)
				if has && (!ok || uid != want[k].UID()) || !has && ok {
					return false
				}
			}
		}
		return true
	})
	if c.nodes[0].IsMasterByKey("nope") {
		t.Fatal("master of a key never added")
	}
}

func TestAddRemoveKeyMovesMastership(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) {
		if i > 0 {
			o.Keys = []string{"k"}
		}
	}).start()
	n0, n1, n2 := c.nodes[0], c.nodes[1], c.nodes[2]
	waitFor(t, "n1 master of k", func() bool { return n1.IsMasterByKey("k") && !n2.IsMasterByKey("k") })
	n0.AddKey("k")
	waitFor(t, "n0 master of k", func() bool {
		return n0.IsMasterByKey("k") && !n1.IsMasterByKey("k") && !n2.IsMasterByKey("k")
	})
	n0.RemoveKey("k")
	if n0.IsMasterByKey("k") {
		t.Fatal("still master of a removed key when RemoveKey returned")
	}
	waitFor(t, "n1 master of k again", func() bool { return n1.IsMasterByKey("k") && !n2.IsMasterByKey("k") })
	if got := n1.Keys(); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("Keys() = %v", got)
	}
}

func TestAddKeyLoneNodeImmediate(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	m, _ := New(o)
	m.AddKey("before")
	m.Start()
	defer m.Stop()
	if !m.IsMasterByKey("before") {
		t.Fatal("key added before Start")
	}
	m.AddKey("after")
	if !m.IsMasterByKey("after") {
		t.Fatal("AddKey did not re-elect before returning")
	}
}

func TestGracefulStopHandoff(t *testing.T) {
	c := newCluster(t, 3, nil).start()
	c.waitMaster(c.nodes[0])
	start := time.Now()
	c.nodes[0].Stop()
	if c.nodes[0].IsMaster() {
		t.Fatal("stopped node still master")
	}
	// The leave message makes the others re-elect at once: far sooner
	// than WaitTimeout, though we only assert the generous deadline.
	c.waitMaster(c.nodes[1])
	t.Logf("graceful handoff in %v (WaitTimeout %v)", time.Since(start), testWait)
}

func TestAbruptCloseHandoff(t *testing.T) {
	c := newCluster(t, 3, nil).start()
	c.waitMaster(c.nodes[0])
	start := time.Now()
	c.nodes[0].abort()
	c.waitMaster(c.nodes[1])
	t.Logf("handoff after abrupt close in %v", time.Since(start))
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

func TestRestartNode(t *testing.T) {
	c := newCluster(t, 3, nil).start()
	c.waitMaster(c.nodes[0])
	// Node 0 restarts: a new process, same UID and start time as before.
	m := c.restart(0, nil)
	c.waitMaster(m)
	// Node 0 restarts as a young node: node 1 is now the oldest.
	m = c.restart(0, func(o *Options) { o.StartTime = base.Add(time.Hour) })
	c.waitMaster(c.nodes[1])
	_ = m
}

func TestAddRemoveServerAtRuntime(t *testing.T) {
	a, b := testOptions(0), testOptions(1)
	a.Listener, b.Listener = listen(t), listen(t)
	na, _ := New(a)
	nb, _ := New(b)
	na.Start()
	nb.Start()
	defer na.Stop()
	defer nb.Stop()
	if !na.IsMaster() || !nb.IsMaster() {
		t.Fatal("two strangers should both be master")
	}
	if err := nb.AddServer("a", ServerConfig{Port: port(a.Listener)}); err != nil {
		t.Fatal(err)
	}
	if err := nb.AddServer("a", ServerConfig{Port: port(a.Listener)}); !errors.Is(err, ErrServerExists) {
		t.Fatalf("AddServer twice: %v", err)
	}
	// One connection carries heartbeats both ways: both now agree.
	waitFor(t, "b steps down", func() bool { return na.IsMaster() && !nb.IsMaster() })
	if err := nb.RemoveServer("a"); err != nil {
		t.Fatal(err)
	}
	if err := nb.RemoveServer("a"); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("RemoveServer twice: %v", err)
	}
	waitFor(t, "both masters again", func() bool { return na.IsMaster() && nb.IsMaster() })
}

func TestDoIfMaster(t *testing.T) {
	c := newCluster(t, 2, nil).start()
	c.waitMaster(c.nodes[0])
	n0, n1 := c.nodes[0], c.nodes[1]

	ran := false
	n0.DoIfMaster(func() { ran = true })
	if !ran {
		t.Fatal("master did not run the callback at once")
	}

	// On the younger node callbacks are queued, then dropped.
	var mu sync.Mutex
	var got []int
	for i := range 3 {
		n1.DoIfMaster(func() { mu.Lock(); got = append(got, i); mu.Unlock() })
	}
	time.Sleep(3 * testWait) // past 2*WaitTimeout: the queue has fired
	mu.Lock()
	if len(got) != 0 {
		t.Fatalf("non-master ran queued callbacks: %v", got)
	}
	mu.Unlock()

	// Queued, then the master leaves: they run, in order.
	for i := range 3 {
		n1.DoIfMasterByKey("never-added", func() {}) // a key never added: never master
		n1.DoIfMaster(func() { mu.Lock(); got = append(got, i); mu.Unlock() })
	}
	n0.Stop()
	waitFor(t, "queued callbacks run", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	if !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("order %v", got)
	}
}

func TestDoIfMasterNothingAfterStop(t *testing.T) {
	c := newCluster(t, 2, nil).start()
	c.waitMaster(c.nodes[0])
	n1 := c.nodes[1]
	ran := make(chan struct{}, 1)
	n1.DoIfMaster(func() { ran <- struct{}{} })
	c.nodes[0].Stop()
	n1.Stop()
	select {
	case <-ran:
		t.Fatal("callback ran after Stop")
	case <-time.After(3 * testWait):
	}
}

func TestOnChange(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) { o.Keys = []string{"k"} })
	var mu sync.Mutex
	var got []Change
	c.nodes[1].OnChange(func(ch Change) { mu.Lock(); got = append(got, ch); mu.Unlock() })
	c.start()
	c.waitMaster(c.nodes[0])
	c.nodes[0].Stop()
	want := []Change{
		{Key: "", IsMaster: true, Master: "node1"},
		{Key: "k", IsMaster: true, Master: "node1"},
	}
	waitFor(t, "changes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ch := range got {
			term := ch.Term
			ch.Term = 0
			if slices.Contains(want, ch) {
				if term == 0 {
					t.Errorf("change without a term: %+v", ch)
				}
				n++
			}
		}
		return n == len(want)
	})
	mu.Lock()
	for _, ch := range got {
		if ch.IsMaster && ch.Master != "node1" {
			t.Errorf("odd change %+v", ch)
		}
	}
	mu.Unlock()
	c.nodes[1].Stop()
	mu.Lock()
	defer mu.Unlock()
	last := got[len(got)-1]
	if last.IsMaster {
		t.Fatalf("no step-down change on Stop: %+v", got)
	}
}

func TestNoGoroutinesAfterStop(t *testing.T) {
	if s := waitNoGoroutines(5 * time.Second); s != "" {
		t.Fatalf("goroutines before the test:\n%s", s)
	}
	c := newCluster(t, 3, func(i int, o *Options) { o.Keys = []string{"x"} }).start()
	c.waitMaster(c.nodes[0])
	c.nodes[2].DoIfMaster(func() {})
	c.stopAll()
	if s := waitNoGoroutines(5 * time.Second); s != "" {
		t.Fatalf("goroutines left after Stop:\n%s", s)
	}
}
