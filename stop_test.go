package msc

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentStop calls Stop on every node of a cluster from several
// goroutines at once, plus on a node never started: per node, the call
// that stops it returns nil and every other ErrStopped, the nodes are
// stopped when their calls return, and no goroutine of any node is left.
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
