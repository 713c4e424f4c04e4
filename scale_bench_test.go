package msc

import (
	"flag"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var scaleWindow = flag.Duration("scale.window", 10*time.Second, "BenchmarkScale: the steady window")

// BenchmarkScale runs n nodes in one process on loopback, full mesh, at
// the default Interval (100ms), and reports the time to converge and, over
// a steady window, CPU, traffic and mastership changes (it fails on any).
// Run:
//
//	go test -run '^$' -bench Scale -benchtime 1x [-scale.window 30s]
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{5, 32, 64, 128} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				scaleRun(b, n, *scaleWindow)
			}
		})
	}
}

func scaleRun(b *testing.B, n int, window time.Duration) {
	c := newCluster(b, n, func(i int, o *Options) {
		o.Interval, o.WaitTimeout = DefaultInterval, 3*DefaultInterval
	})
	t0 := time.Now()
	c.start()
	waitFor(b, "convergence", func() bool {
		if !c.agreed(c.nodes[0]) {
			return false
		}
		term := c.nodes[0].Term()
		for _, m := range c.nodes {
			st := m.Status()
			live := liveCount(st)
			if live != n-1 || st.Term != term {
				return false
			}
		}
		return true
	}, func() string {
		hist := map[int]int{}
		masters := map[string]int{}
		for _, m := range c.nodes {
			st := m.Status()
			live := liveCount(st)
			hist[live]++
			masters[st.Master]++
		}
		return fmt.Sprintf("live peers → nodes: %v; named masters: %v", hist, masters)
	})
	conv := time.Since(t0)
	var changes atomic.Int64
	for _, m := range c.nodes {
		m.OnChange(func(ch Change) {
			if ch.Key == "" {
				changes.Add(1)
			}
		})
	}
	var frames0, bytes0 uint64
	for _, m := range c.nodes {
		st := m.Status()
		frames0 += st.FramesSent
		bytes0 += st.BytesSent
	}
	cpu0 := cpuTime()
	start := time.Now()
	time.Sleep(window) // a measurement window, not a synchronisation
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	var frames, bytes uint64
	for _, m := range c.nodes {
		st := m.Status()
		frames += st.FramesSent
		bytes += st.BytesSent
	}
	moved := changes.Load() // before Stop, whose changes do not count
	if !c.agreed(c.nodes[0]) || moved != 0 {
		b.Fatalf("mastership moved during the steady window (%d changes):\n%s", moved, c.describe())
	}
	c.release()
	b.ReportMetric(float64(moved), "changes")
	perNodeMin := cpu.Seconds() / float64(n) / elapsed.Minutes()
	b.ReportMetric(float64(conv)/float64(time.Millisecond), "converge-ms")
	b.ReportMetric(perNodeMin, "cpu-s/node/min")
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds()/float64(n), "cpu%/node")
	b.ReportMetric(float64(frames-frames0)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(bytes-bytes0)/elapsed.Seconds(), "bytes/s")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScaleKeys runs n nodes in one process, full mesh, Interval
// 100ms, Balance, every node holding the same k keys, and reports the time
// until every node sees all the others live and names the same master for
// every key (and exactly one node is master of each), then, over the
// steady window, CPU, frames per second and bytes per frame, and the
// changes of any mastership (it fails on any);
// then the failover when the global master is killed, until every node
// names the new master and it says so (failover-ms), and the CPU of the
// whole process meanwhile (failover-cpu-ms: the other nodes' elections
// and the frames the dead node's keys cost). Run:
//
//	go test -run '^$' -bench ScaleKeys -benchtime 1x [-scale.window 30s]
func BenchmarkScaleKeys(b *testing.B) {
	for _, nk := range [][2]int{{20, 100}, {40, 30}, {40, 100}, {40, 1000}, {30, 1000}} {
		b.Run(fmt.Sprintf("%dx%d", nk[0], nk[1]), func(b *testing.B) {
			for b.Loop() {
				scaleKeysRun(b, nk[0], nk[1], *scaleWindow)
			}
		})
	}
}

func scaleKeysRun(b *testing.B, n, k int, window time.Duration) {
	keys := make([]string, k)
	for i := range keys {
		keys[i] = fmt.Sprintf("job-%03d", i)
	}
	c := newCluster(b, n, func(i int, o *Options) {
		o.Interval, o.WaitTimeout = DefaultInterval, 3*DefaultInterval
		o.Balance, o.Keys = true, keys
	})
	// agreed: every node sees every other live, names the same master of
	// every key and knows its term, and that node says it is master of it.
	agreed := func() bool {
		byUID := map[string]*Msc{}
		for _, m := range c.nodes {
			byUID[m.UID()] = m
		}
		for _, key := range keys {
			// Every node names the master and knows its term (a Change
			// carries it: a term that arrives later is one).
			want, ok := c.nodes[0].MasterByKey(key)
			if !ok || byUID[want] == nil || !byUID[want].IsMasterByKey(key) {
				return false
			}
			term := byUID[want].TermByKey(key)
			for _, m := range c.nodes {
				if uid, ok := m.MasterByKey(key); !ok || uid != want || m.TermByKey(key) != term {
					return false
				}
				if m.UID() != want && m.IsMasterByKey(key) {
					return false
				}
			}
		}
		for _, m := range c.nodes {
			if liveN(m) != n-1 {
				return false
			}
		}
		return true
	}
	t0 := time.Now()
	c.start()
	// Polled every 20 ms, not waitFor's 2: once the keys agree, a poll
	// reads 120,000 key states and calls every elector, 5-8.5 ms at 40 x
	// 1,000, and every 2 ms it took most of a core from the cluster it
	// measures, as that converged.
	for deadline := t0.Add(settle); !agreed(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			hist := map[int]int{}
			for _, m := range c.nodes {
				hist[liveCount(m.Status())]++
			}
			b.Fatalf("timed out waiting for convergence\nlive peers → nodes: %v", hist)
		}
	}
	conv := time.Since(t0)
	changes := recordChanges(c.nodes, t0)
	frames0, bytes0 := sent(c.nodes)
	cpu0, start := cpuTime(), time.Now()
	time.Sleep(window) // a measurement window, not a synchronisation
	cpu, elapsed := cpuTime()-cpu0, time.Since(start)
	frames, bytes := sent(c.nodes)
	moved := changes.n.Load()
	if moved != 0 || !agreed() {
		b.Fatalf("%d mastership changes during the steady window (converged at %v); the first:\n%s", moved, conv, changes.First())
	}
	// The global master dies (its sockets closed): until every other
	// node names one new master, and it says so.
	var dead *Msc
	for _, m := range c.nodes {
		if m.IsMaster() {
			dead = m
		}
	}
	if dead == nil {
		b.Fatal("no global master")
	}
	t1, cpu1 := time.Now(), cpuTime()
	dead.abort()
	newMaster := func() bool {
		want := ""
		for _, m := range c.nodes {
			if m == dead {
				continue
			}
			uid, ok := m.Master()
			if !ok || uid == dead.UID() || want != "" && uid != want {
				return false
			}
			want = uid
		}
		for _, m := range c.nodes {
			if m.UID() == want {
				return m.IsMaster()
			}
		}
		return false
	}
	for !newMaster() {
		if time.Since(t1) > time.Minute {
			b.Fatal("no new global master in a minute")
		}
		time.Sleep(100 * time.Microsecond)
	}
	failover, failoverCPU := time.Since(t1), cpuTime()-cpu1
	c.release()
	b.ReportMetric(float64(conv)/float64(time.Millisecond), "converge-ms")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
	b.ReportMetric(float64(frames-frames0)/elapsed.Seconds(), "frames/s")
	if frames > frames0 {
		b.ReportMetric(float64(bytes-bytes0)/float64(frames-frames0), "bytes/frame")
	}
	b.ReportMetric(float64(moved), "changes")
	b.ReportMetric(float64(failover)/float64(time.Millisecond), "failover-ms")
	b.ReportMetric(float64(failoverCPU)/float64(time.Millisecond), "failover-cpu-ms")
}

// sent returns the frames and bytes nodes sent since they started (the
// counters Status reports, read without its copy of every peer's keys).
func sent(nodes []*Msc) (frames, bytes uint64) {
	for _, m := range nodes {
		frames += m.framesOut.Load()
		bytes += m.bytesOut.Load()
	}
	return frames, bytes
}
