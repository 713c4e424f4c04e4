package msc

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// overlapMeter samples IsMaster on every node, every 100µs, and adds up
// the time during which two or more nodes answered true.
type overlapMeter struct {
	nodes   func() []*Msc
	mu      sync.Mutex
	overlap time.Duration
	worst   string
	stop    chan struct{}
	done    chan struct{}
}

func meterOverlap(nodes func() []*Msc) *overlapMeter {
	o := &overlapMeter{nodes: nodes, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		last := time.Now()
		for {
			select {
			case <-o.stop:
				return
			default:
			}
			var masters []string
			var first *Msc
			for _, m := range o.nodes() {
				if m.IsMaster() {
					if first == nil {
						first = m
					}
					masters = append(masters, m.UID())
				}
			}
			// Only a real overlap: the first master still answers true
			// after the others did. (The sampler may be descheduled
			// between two reads, and a handoff read on both sides of it.)
			if len(masters) > 1 && !first.IsMaster() {
				masters = masters[1:]
			}
			now := time.Now()
			if len(masters) > 1 {
				o.mu.Lock()
				o.overlap += now.Sub(last)
				o.worst = fmt.Sprint(masters)
				o.mu.Unlock()
			}
			last = now
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return o
}

func (o *overlapMeter) result() (time.Duration, string) {
	close(o.stop)
	<-o.done
	return o.overlap, o.worst
}

// TestQuorumPartitionNoOverlap cuts the master off from the majority, again
// and again: the majority elects a new master only after the old one has
// stepped down, and when the partition heals the old master (the oldest)
// takes over only after the other has stepped down. Never two masters.
func TestQuorumPartitionNoOverlap(t *testing.T) {
	reps := 5
	if testing.Short() {
		reps = 3
	}
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			q := n/2 + 1
			mc := newMesh(t, n, func(i int, o *Options) { o.Quorum = q })
			mc.start()
			all := make([]int, n)
			for i := range all {
				all[i] = i
			}
			mc.waitSides(all)
			minority := all[:n-q] // the master, node 0, and n-q-1 others
			majority := all[n-q:] // q nodes
			meter := meterOverlap(func() []*Msc { return mc.nodes })
			var failovers, heals []time.Duration
			for range reps {
				t0 := time.Now()
				mc.partition(minority, majority)
				waitFor(t, "majority elects", func() bool {
					return mc.nodes[majority[0]].IsMaster()
				})
				failovers = append(failovers, time.Since(t0))
				// The minority has no master.
				for _, i := range minority {
					if mc.nodes[i].IsMaster() {
						t.Fatalf("node%d of the minority %v is master", i, minority)
					}
				}
				t0 = time.Now()
				mc.heal()
				mc.waitSides(all)
				heals = append(heals, time.Since(t0))
			}
			overlap, who := meter.result()
			slices.Sort(failovers)
			slices.Sort(heals)
			t.Logf("n=%d quorum=%d, %d partitions: overlap %v; failover median %v max %v; heal median %v max %v",
				n, q, reps, overlap, failovers[len(failovers)/2].Round(time.Millisecond),
				failovers[len(failovers)-1].Round(time.Millisecond),
				heals[len(heals)/2].Round(time.Millisecond), heals[len(heals)-1].Round(time.Millisecond))
			if overlap > 0 {
				t.Fatalf("two masters at once for %v (%s)", overlap, who)
			}
		})
	}
}

// TestQuorumRunAsMasterHandoff: with Quorum, the deposed master's function
// is cancelled before the next master's starts.
func TestQuorumRunAsMasterHandoff(t *testing.T) {
	mc := newMesh(t, 3, func(i int, o *Options) { o.Quorum = 2 })
	mc.start()
	mc.waitSides(all3)
	type span struct {
		node       int
		begin, end time.Time
	}
	var mu sync.Mutex
	var spans []*span
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, m := range mc.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.RunAsMaster(ctx, func(ctx context.Context, term uint64) {
				s := &span{node: i, begin: time.Now()}
				mu.Lock()
				spans = append(spans, s)
				mu.Unlock()
				<-ctx.Done()
				mu.Lock()
				s.end = time.Now()
				mu.Unlock()
			})
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(spans) }
	waitFor(t, "node0 runs", func() bool { return count() == 1 })
	mc.partition([]int{0}, []int{1, 2})
	waitFor(t, "node1 runs", func() bool { return count() == 2 })
	mu.Lock()
	defer mu.Unlock()
	a, b := spans[0], spans[1]
	if a.node != 0 || b.node != 1 {
		t.Fatalf("runs on node%d then node%d", a.node, b.node)
	}
	if a.end.IsZero() || !a.end.Before(b.begin) {
		t.Fatalf("node0's function was not cancelled before node1's began (end %v, begin %v)", a.end, b.begin)
	}
	t.Logf("cancel-to-next-start gap: %v", b.begin.Sub(a.end))
}

func TestQuorumLoneNodeNeverMaster(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	o.Quorum = 2
	m, _ := New(o)
	m.Start()
	defer m.Stop()
	waitFor(t, "ready", func() bool { return m.Status().Ready })
	if m.IsMaster() {
		t.Fatal("a node alone is master with Quorum 2")
	}
}

// BenchmarkPartition cuts the master of a 3-node cluster off from the two
// others, with Quorum 2 and without, at the default Interval (100ms), and
// reports the time until the majority has a master and the time with two
// masters, per partition. Without Quorum the cut-off master keeps its role:
// both sides have one (split brain) until the partition heals. Run:
//
//	go test -run '^$' -bench Partition -benchtime 10x
func BenchmarkPartition(b *testing.B) {
	for _, q := range []int{0, 2} {
		b.Run(fmt.Sprintf("quorum=%d", q), func(b *testing.B) {
			mc := newMesh(b, 3, func(i int, o *Options) {
				o.Quorum = q
				o.Interval, o.WaitTimeout = DefaultInterval, 3*DefaultInterval
			})
			mc.start()
			mc.waitSides(all3)
			meter := meterOverlap(func() []*Msc { return mc.nodes })
			var failovers []time.Duration
			const hold = time.Second // how long each partition lasts
			for b.Loop() {
				t0 := time.Now()
				mc.partition([]int{0}, []int{1, 2})
				waitFor(b, "majority elects", func() bool { return mc.nodes[1].IsMaster() })
				failovers = append(failovers, time.Since(t0))
				time.Sleep(hold - time.Since(t0)) // hold the partition: a duration, not a wait for a state
				mc.heal()
				mc.waitSides(all3)
			}
			overlap, _ := meter.result()
			report(b, "failover", failovers)
			b.ReportMetric(float64(overlap)/float64(time.Millisecond)/float64(len(failovers)), "overlap-ms/partition")
		})
	}
}

// TestOverlapMeterSeesTwoMasters: the meter can fail: two nodes that do
// not know each other are both master.
func TestOverlapMeterSeesTwoMasters(t *testing.T) {
	a, b := newCluster(t, 1, nil).start(), newCluster(t, 1, func(i int, o *Options) { o.UID = "other" }).start()
	waitFor(t, "both master", func() bool { return a.nodes[0].IsMaster() && b.nodes[0].IsMaster() })
	meter := meterOverlap(func() []*Msc { return []*Msc{a.nodes[0], b.nodes[0]} })
	waitFor(t, "an overlap measured", func() bool {
		meter.mu.Lock()
		defer meter.mu.Unlock()
		return meter.overlap >= 5*time.Millisecond
	})
	if overlap, _ := meter.result(); overlap < 5*time.Millisecond {
		t.Fatalf("two masters for %v", overlap)
	}
}
