package msc

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

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
				if err == nil && (m.IsMaster() || m.IsMasterByKey("k") || m.Status().Running) {
					err = fmt.Errorf("%s: Stop returned before the node stopped", m.UID())
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
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := waitNoGoroutines(5 * time.Second); s != "" {
		t.Fatalf("goroutines left after concurrent Stop:\n%s", s)
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
