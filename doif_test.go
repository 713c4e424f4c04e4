package msc

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDoIfMasterByKeyRunsNowOnKeyMaster: DoIfMasterByKey runs the callback
// before it returns on the master of the key, whoever is the global
// master; on a node that is not master of the key (or does not hold it)
// it does not run it at once.
func TestDoIfMasterByKeyRunsNowOnKeyMaster(t *testing.T) {
	keys := [][]string{{"a"}, {"a", "b"}}
	c := newCluster(t, 2, func(i int, o *Options) { o.Keys = keys[i] }).start()
	c.waitMaster(c.nodes[0])
	n0, n1 := c.nodes[0], c.nodes[1]
	settleKeys(t, c.nodes, "node0 master of a, node1 of b", map[string]string{"a": "node0", "b": "node1"})
	meter := meterKeys(c.nodes, "a", "b")

	for _, tc := range []struct {
		m    *Msc
		key  string
		runs bool
	}{
		{n0, "a", true},  // key master and global master
		{n1, "b", true},  // key master, not the global master
		{n1, "a", false}, // holds the key, not its master
		{n0, "b", false}, // does not hold the key
	} {
		ran := false
		tc.m.DoIfMasterByKey(tc.key, func() { ran = true })
		if ran != tc.runs {
			t.Errorf("%s: DoIfMasterByKey(%q) ran at once: %v, want %v", tc.m.UID(), tc.key, ran, tc.runs)
		}
	}
	if n1.IsMaster() {
		t.Fatal("node1 is global master")
	}
	meter.check(t)
}

// TestDoIfMasterQueue: on a node that is not master, a callback is
// queued; 2*WaitTimeout later it is dropped if the node is not master
// then (A), and the queue runs in order if it is (B0, B1, B2, queued
// after A was dropped, just before the node becomes master). The queued
// callbacks never run before 2*WaitTimeout has passed, though the node is
// master well before. Globally (DoIfMaster; node 0 stops) and per key
// (DoIfMasterByKey; node 0 removes the key, and stays global master).
func TestDoIfMasterQueue(t *testing.T) {
	const w = testWait
	for _, byKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("byKey=%v", byKey), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 2, func(i int, o *Options) { o.Keys = []string{"k"} })
			n0, n1 := c.nodes[0], c.nodes[1]
			// A barrier through n1's callback goroutine: it returns once
			// every callback n1 had handed to it before has run.
			probes := make(chan string, 8)
			n1.OnChange(func(ch Change) {
				if strings.HasPrefix(ch.Key, "probe") && ch.IsMaster {
					probes <- ch.Key
				}
			})
			barrier := func(name string) {
				t.Helper()
				n1.AddKey(name) // n1 alone holds it: it masters it
				select {
				case got := <-probes:
					if got != name {
						t.Fatalf("probe %s, want %s", got, name)
					}
				case <-time.After(settle):
					t.Fatalf("probe %s never reported", name)
				}
			}
			c.start()
			c.waitMaster(n0)
			settleKeys(t, c.nodes, "node0 master of k", map[string]string{"k": "node0"})
			meter := meterKeys(c.nodes, "k")
			do, isMaster, makeMaster := n1.DoIfMaster, n1.IsMaster, func() { n0.Stop() }
			if byKey {
				do = func(cb func()) { n1.DoIfMasterByKey("k", cb) }
				isMaster = func() bool { return n1.IsMasterByKey("k") }
				makeMaster = func() { n0.RemoveKey("k") }
			}

			var mu sync.Mutex
			var ran []string
			var at []time.Time
			record := func(name string) func() {
				return func() {
					mu.Lock()
					ran = append(ran, name)
					at = append(at, time.Now())
					mu.Unlock()
				}
			}
			got := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(ran) }

			// A: queued on a non-master, due while it is still not master.
			tA := time.Now()
			do(record("A"))
			if len(got()) != 0 {
				t.Fatal("callback ran at once on a non-master")
			}
			// Wait past A's deadline (a time, not a state), then until the
			// callbacks handed over by then have run.
			for time.Since(tA) < 2*w+w/2 {
				time.Sleep(w / 10)
			}
			barrier("probe1")
			if r := got(); len(r) != 0 {
				t.Fatalf("ran on a non-master: %v", r)
			}

			// B0-B2: queued, then the node becomes master.
			var tB []time.Time
			for i := range 3 {
				tB = append(tB, time.Now())
				do(record(fmt.Sprint("B", i)))
			}
			makeMaster()
			waitFor(t, "node1 master", isMaster)
			if r := got(); len(r) != 0 {
				t.Fatalf("queued callbacks ran as soon as the node became master: %v", r)
			}
			waitFor(t, "queued callbacks run", func() bool { return len(got()) >= 3 })
			barrier("probe2")
			meter.check(t)
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"B0", "B1", "B2"}; !slices.Equal(ran, want) {
				t.Fatalf("ran %v, want %v (A dropped, the Bs in order)", ran, want)
			}
			for i, tm := range at {
				d := tm.Sub(tB[i])
				t.Logf("%s ran %v after it was queued", ran[i], d.Round(time.Millisecond))
				if d < 2*w*9/10 || d > 2*w+time.Second {
					t.Errorf("%s ran %v after it was queued, want 2*WaitTimeout = %v", ran[i], d, 2*w)
				}
			}
		})
	}
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
