package msc

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkFailover measures, in one process on loopback with the default
// Interval (100ms) and WaitTimeout (300ms), how long a 3-node cluster takes
// to converge and to hand mastership over after each kind of fault. Run:
//
//	go test -run '^$' -bench Failover -benchtime 20x
//
// Each iteration builds a fresh cluster; the figures are medians and
// maxima over the iterations, in milliseconds.
func BenchmarkFailover(b *testing.B) {
	faults := []struct {
		name  string
		fault func(m *Msc)
	}{
		{"graceful", func(m *Msc) { m.Stop() }},
		{"abrupt", func(m *Msc) { m.abort() }},
		{"silent", func(m *Msc) { m.silent.Store(true) }},
	}
	for _, f := range faults {
		b.Run(f.name, func(b *testing.B) {
			var conv, hand []time.Duration
			for b.Loop() {
				c := newCluster(b, 3, func(i int, o *Options) {
					o.Interval, o.WaitTimeout = DefaultInterval, 3*DefaultInterval
				})
				t0 := time.Now()
				c.start()
				waitAgreed(b, c, c.nodes[0])
				conv = append(conv, time.Since(t0))
				t0 = time.Now()
				f.fault(c.nodes[0])
				rest := &testCluster{t: b, nodes: c.nodes[1:]}
				waitAgreed(b, rest, c.nodes[1])
				hand = append(hand, time.Since(t0))
				c.stopAll()
			}
			report(b, "converge", conv)
			report(b, "handoff", hand)
		})
	}
}

// waitAgreed polls closely (100µs) until want is the one master.
func waitAgreed(b testing.TB, c *testCluster, want *Msc) {
	deadline := time.Now().Add(settle)
	for !c.agreed(want) {
		if time.Now().After(deadline) {
			b.Fatalf("no agreement on %s:\n%s", want.UID(), c.describe())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(ds[len(ds)/2]), name+"-median-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), name+"-max-ms")
	b.Logf("%s: n=%d median %.2f ms, max %.2f ms, all %v", name, len(ds), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), fmt.Sprint(ds))
}
