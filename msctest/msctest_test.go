package msctest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msc-go/msc"
)

// TestMain checks that no goroutine of msc or msctest outlived the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := goroutines()
			if left == "" {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutines left after all tests:\n%s\n", left)
				code = 1
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func goroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/msc-go/msc") && !strings.Contains(g, "testing.tRunner") &&
			!strings.Contains(g, "msctest.goroutines") && !strings.Contains(g, "msctest.TestMain") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// changes counts the global master changes a node sees.
func changes(m *msc.Msc) *atomic.Int64 {
	var n atomic.Int64
	m.OnChange(func(c msc.Change) {
		if c.Key == "" {
			n.Add(1)
		}
	})
	return &n
}

func TestKillRestart(t *testing.T) {
	c := NewCluster(t, 3, nil)
	c.WaitMaster(0)
	first := c.Node(0)
	c.Kill(0)
	if first.IsMaster() {
		t.Fatal("a killed node is master")
	}
	c.WaitMaster(1)
	c.Restart(0)
	if c.Node(0) == first {
		t.Fatal("Restart kept the node")
	}
	// Node 0 is now the youngest: node 1 stays master, and sees it.
	c.WaitMaster(1)
	poll(t, "node 1 sees two peers", func() bool { return live(c.Node(1)) == 2 })
	// A running node restarted (Stop, then a new process).
	c.Restart(1)
	c.WaitMaster(2)
}

// Kill resets the connections: the peers see the node dead at once, not
// after WaitTimeout.
func TestKillIsAbrupt(t *testing.T) {
	const wait = 20 * time.Second
	c := NewCluster(t, 3, func(i int, o *msc.Options) { o.WaitTimeout = wait; o.Interval = 100 * time.Millisecond })
	c.WaitMaster(0)
	poll(t, "all connected", func() bool { return live(c.Node(1)) == 2 && live(c.Node(2)) == 2 })
	began := time.Now()
	c.Kill(0)
	c.WaitMaster(1)
	if took := time.Since(began); took > wait/2 {
		t.Fatalf("failover after %v: the connections were not reset", took)
	}
}

func TestPartitionHeal(t *testing.T) {
	c := NewCluster(t, 3, nil)
	c.WaitMaster(0)
	ch := changes(c.Node(2))
	c.Partition([]int{0}, []int{1, 2})
	c.WaitMaster(0) // alone on its side
	c.WaitMaster(1) // the majority's
	c.Heal()
	c.WaitMaster(0)
	poll(t, "everyone sees everyone", func() bool {
		return live(c.Node(0)) == 2 && live(c.Node(1)) == 2 && live(c.Node(2)) == 2
	})
	if ch.Load() < 2 {
		t.Fatalf("node 2 saw %d changes, want the move to node 1 and back", ch.Load())
	}
	// A node in no group is alone.
	c.Partition([]int{0, 1})
	c.WaitMaster(2)
	c.WaitMaster(0)
	c.Heal()
	c.WaitMaster(0)
}

// Block is one way: node 0's bytes reach nobody, while it hears the
// others; they elect node 1. Heal gives node 0 back its mastership.
func TestBlock(t *testing.T) {
	c := NewCluster(t, 3, nil)
	c.WaitMaster(0)
	c.Block(0, 1)
	c.Block(0, 2)
	poll(t, "nodes 1 and 2 elect node 1", func() bool {
		uid, _ := c.Node(2).Master()
		return c.Node(1).IsMaster() && !c.Node(2).IsMaster() && uid == "node1" && live(c.Node(1)) == 1
	})
	c.Heal()
	c.WaitMaster(0)
}

// Cut takes down one link only: nodes 0 and 1 lose each other, node 2
// still sees both.
func TestCut(t *testing.T) {
	c := NewCluster(t, 3, nil)
	c.WaitMaster(0)
	c.Cut(0, 1)
	poll(t, "0 and 1 lose each other", func() bool {
		return live(c.Node(0)) == 1 && live(c.Node(1)) == 1 && live(c.Node(2)) == 2
	})
	if !c.Node(0).IsMaster() {
		t.Fatal("node 0, the oldest, lost its mastership to a cut link")
	}
	c.Heal()
	c.WaitMaster(0)
	poll(t, "all links back", func() bool {
		return live(c.Node(0)) == 2 && live(c.Node(1)) == 2 && live(c.Node(2)) == 2
	})
}

// Delay slows every link: the news of a Stop reaches the others the
// delay later.
func TestDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	c := NewCluster(t, 3, func(i int, o *msc.Options) { o.WaitTimeout = 2 * time.Second })
	c.WaitMaster(0)
	c.Delay(delay)
	began := time.Now()
	c.Node(0).Stop()
	c.WaitMaster(1)
	if took := time.Since(began); took < delay {
		t.Fatalf("handoff after %v, within the delay of %v", took, delay)
	}
	c.Delay(0)
}

func TestPause(t *testing.T) {
	c := NewCluster(t, 3, nil)
	c.WaitMaster(0)
	ch := changes(c.Node(0))
	c.Pause(0, 2*time.Second)
	c.WaitMaster(1) // while node 0 is paused
	// It resumes, re-joins, and, as the oldest, is master again.
	c.WaitMaster(0)
	if ch.Load() < 2 {
		t.Fatalf("node 0 saw %d changes, want to lose and retake mastership", ch.Load())
	}
}

// Defaults stay stable: over 200 intervals of a healthy cluster, the
// master does not change.
func TestSteady(t *testing.T) {
	c := NewCluster(t, 3, nil)
	c.WaitMaster(0)
	var chs []*atomic.Int64
	for i := range 3 {
		chs = append(chs, changes(c.Node(i)))
	}
	end := time.Now().Add(200 * DefaultInterval)
	poll(t, "200 intervals", func() bool { return time.Now().After(end) })
	for i, ch := range chs {
		if n := ch.Load(); n != 0 {
			t.Errorf("node %d saw %d changes of master in a steady cluster", i, n)
		}
	}
}

func live(m *msc.Msc) int {
	n := 0
	for _, p := range m.Status().Peers {
		if p.Live {
			n++
		}
	}
	return n
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
