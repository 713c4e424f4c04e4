package msc

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

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

func TestTermsIncrease(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) { o.Keys = []string{"k"} }).start()
	c.waitMaster(c.nodes[0])
	var last uint64
	var lastMaster string
	check := func(master *Msc) {
		t.Helper()
		c.waitMaster(master)
		var term uint64
		waitFor(t, "terms agreed", func() bool {
			term = master.Term()
			for _, m := range c.running() {
				if m.Term() != term {
					return false
				}
			}
			return true
		}, func() string {
			var b strings.Builder
			for _, m := range c.running() {
				st := m.Status()
				fmt.Fprintf(&b, "%s: master %v term %d; ", m.UID(), st.IsMaster, st.Term)
				for _, p := range st.Peers {
					fmt.Fprintf(&b, "[%s live %v master %v] ", p.UID, p.Live, p.Master)
				}
				b.WriteString("\n")
			}
			return b.String()
		})
		if master.UID() != lastMaster && term <= last {
			t.Fatalf("term %d after %d: not increasing though %s took over from %s", term, last, master.UID(), lastMaster)
		}
		if master.UID() == lastMaster && term != last {
			t.Fatalf("term moved from %d to %d though %s stayed master", last, term, lastMaster)
		}
		if kt := master.TermByKey("k"); kt == 0 || !master.IsMasterByKey("k") {
			t.Fatalf("key term %d", kt)
		}
		last, lastMaster = term, master.UID()
	}
	check(c.nodes[0])
	c.nodes[0].abort()
	check(c.nodes[1])
	c.restart(0, func(o *Options) { o.StartTime = base.Add(time.Hour) })
	check(c.nodes[1])
	c.nodes[1].Stop()
	check(c.nodes[2])
	c.restart(1, func(o *Options) { o.StartTime = base.Add(-time.Hour) }) // now the oldest
	check(c.nodes[1])
}
