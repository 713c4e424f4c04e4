package msc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// changeLog records a node's global mastership changes.
type changeLog struct {
	mu  sync.Mutex
	got []Change
}

// watch records m's changes from now on, after its state now (so that a
// term change of a node that is master already is not a gain).
func (l *changeLog) watch(m *Msc) {
	uid, _ := m.Master()
	l.add(Change{IsMaster: m.IsMaster(), Master: uid, Term: m.Term()})
	m.OnChange(l.add)
}

func (l *changeLog) add(c Change) {
	if c.Key != "" {
		return
	}
	l.mu.Lock()
	l.got = append(l.got, c)
	l.mu.Unlock()
}

// gains counts the times the node became master.
func (l *changeLog) gains() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, was := 0, false
	for i, c := range l.got {
		if c.IsMaster && !was && i > 0 { // the first is the state when watching began
			n++
		}
		was = c.IsMaster
	}
	return n
}

// freeze blocks m's elector for d, as a SIGSTOP would: no ticks, no
// heartbeats out (their writers see the elector has not ticked).
func freeze(m *Msc, d time.Duration) {
	m.call(func(*elector) { time.Sleep(d) })
}

func TestPriorityPinsMaster(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) {
		if i == 2 {
			o.Priority = 10 // the youngest, but preferred
		}
	}).start()
	c.waitMaster(c.nodes[2])
	c.nodes[2].Stop()
	c.waitMaster(c.nodes[0])
	st := c.nodes[0].Status()
	if st.Priority != 0 || len(st.Peers) == 0 || st.Peers[0].Priority != 10 {
		t.Fatalf("priorities in Status: %+v", st)
	}
}

// pauseMaster freezes node 0 (the master) until node 1 took over, then
// lets it go on, and returns how many times each node became master.
func pauseMaster(t *testing.T, sticky bool) (gains0, gains1 int) {
	c := newCluster(t, 3, func(i int, o *Options) { o.Sticky = sticky })
	logs := make([]changeLog, 3)
	for i, m := range c.nodes {
		logs[i].watch(m)
	}
	c.start()
	c.waitMaster(c.nodes[0])
	done := make(chan struct{})
	go func() {
		defer close(done)
		freeze(c.nodes[0], 3*testWait)
	}()
	waitFor(t, "node1 takes over", func() bool { return c.nodes[1].IsMaster() })
	<-done
	want := c.nodes[0]
	if sticky {
		want = c.nodes[1]
	}
	c.waitMaster(want)
	// Let a few more intervals pass: no flapping after the settle.
	deadline := time.Now().Add(5 * testWait)
	for time.Now().Before(deadline) {
		if !c.agreed(want) {
			t.Fatalf("mastership moved after settling:\n%s", c.describe())
		}
		time.Sleep(testInterval)
	}
	return logs[0].gains(), logs[1].gains()
}

func TestStickyKeepsMasterAfterPause(t *testing.T) {
	g0, g1 := pauseMaster(t, true)
	if g0 != 1 || g1 != 1 {
		t.Fatalf("with Sticky: node0 became master %d times, node1 %d; want 1 and 1", g0, g1)
	}
}

func TestNotStickyTakesBackAfterPause(t *testing.T) {
	g0, g1 := pauseMaster(t, false)
	if g0 != 2 || g1 != 1 {
		t.Fatalf("without Sticky: node0 became master %d times, node1 %d; want 2 and 1", g0, g1)
	}
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

func TestWatch(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) { o.Keys = []string{"k"} }).start()
	c.waitMaster(c.nodes[0])
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.nodes[1].Watch(ctx, "")
	first := <-ch
	if first.IsMaster || first.Master != "node0" {
		t.Fatalf("first value %+v, want the current state", first)
	}
	kch := c.nodes[1].Watch(ctx, "k")
	if k := <-kch; k.Key != "k" || k.IsMaster || k.Master != "node0" {
		t.Fatalf("first key value %+v", k)
	}
	// A burst of changes while nobody reads: the channel keeps the newest.
	for range 5 {
		c.nodes[1].RemoveKey("k")
		c.nodes[1].AddKey("k")
	}
	c.nodes[0].Stop()
	waitFor(t, "node1 master", c.nodes[1].IsMaster)
	var got Change
	waitFor(t, "latest state", func() bool {
		select {
		case got = <-ch:
		default:
		}
		return got.IsMaster
	})
	if got.Master != "node1" || got.Term == 0 {
		t.Fatalf("latest %+v", got)
	}
	cancel()
	waitFor(t, "closed on cancel", func() bool {
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
	// A stopped node's channel holds the last state and is closed.
	c.nodes[1].Stop()
	sch := c.nodes[1].Watch(context.Background(), "")
	if v, ok := <-sch; !ok || v.IsMaster {
		t.Fatalf("stopped node watch: %+v %v", v, ok)
	}
	if _, ok := <-sch; ok {
		t.Fatal("stopped node's watch channel not closed")
	}
}

func TestRunAsMaster(t *testing.T) {
	c := newCluster(t, 2, nil).start()
	c.waitMaster(c.nodes[0])
	type run struct {
		node  string
		term  uint64
		begin time.Time
		end   time.Time
	}
	var mu sync.Mutex
	var runs []run
	fn := func(m *Msc) func(context.Context, uint64) {
		return func(ctx context.Context, term uint64) {
			mu.Lock()
			runs = append(runs, run{node: m.UID(), term: term, begin: time.Now()})
			i := len(runs) - 1
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			runs[i].end = time.Now()
			mu.Unlock()
		}
	}
	errs := make(chan error, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, m := range c.nodes {
		go func() { errs <- m.RunAsMaster(ctx, fn(m)) }()
	}
	waitFor(t, "node0 runs", func() bool { mu.Lock(); defer mu.Unlock(); return len(runs) == 1 })
	c.nodes[0].Stop()
	if err := <-errs; !errors.Is(err, ErrStopped) {
		t.Fatalf("RunAsMaster on a stopped node: %v", err)
	}
	waitFor(t, "node1 runs", func() bool { mu.Lock(); defer mu.Unlock(); return len(runs) == 2 })
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunAsMaster after cancel: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if runs[0].node != "node0" || runs[1].node != "node1" || runs[1].term <= runs[0].term {
		t.Fatalf("runs %+v", runs)
	}
	if runs[0].end.IsZero() || runs[0].end.After(runs[1].begin) {
		t.Fatalf("node0's fn was not cancelled before node1's began: %+v", runs)
	}
	if runs[1].end.IsZero() {
		t.Fatal("fn still running after RunAsMaster returned")
	}
}

func TestHealthy(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	m, _ := New(o)
	if err := m.Healthy(); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("before Start: %v", err)
	}
	m.Start()
	if err := m.Healthy(); err != nil {
		t.Fatalf("lone node: %v", err)
	}
	m.Stop()
	if err := m.Healthy(); !errors.Is(err, ErrUnhealthy) || !errors.Is(err, ErrStopped) {
		t.Fatalf("after Stop: %v", err)
	}

	c := newCluster(t, 3, func(i int, o *Options) { o.Quorum = 2 }).start()
	c.waitMaster(c.nodes[0])
	waitFor(t, "healthy", func() bool { return c.nodes[0].Healthy() == nil })
	c.nodes[1].Stop()
	c.nodes[2].Stop()
	waitFor(t, "no quorum", func() bool { return errors.Is(c.nodes[0].Healthy(), ErrUnhealthy) })
	waitFor(t, "steps down without quorum", func() bool { return !c.nodes[0].IsMaster() })
}

func TestKeyTermSurvivesRemoveAdd(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	m, _ := New(o)
	m.Start()
	defer m.Stop()
	m.AddKey("k")
	t1 := m.TermByKey("k")
	if t1 == 0 || !m.IsMasterByKey("k") {
		t.Fatalf("term %d master %v", t1, m.IsMasterByKey("k"))
	}
	m.RemoveKey("k")
	m.AddKey("k")
	if t2 := m.TermByKey("k"); t2 <= t1 {
		t.Fatalf("key added again has term %d, not above its earlier %d", t2, t1)
	}
}
