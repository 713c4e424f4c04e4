package msc

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkRecovery measures how a cluster comes back from a global fault
// (Interval 100ms, WaitTimeout 300ms): every node killed and started again
// at once, and every link dropping all bytes for 2 s. It reports the time
// from the restart (or the heal) until every node agrees on the master and
// sees every other live, and the connection attempts per node over the
// fault and the recovery. Run:
//
//	go test -run '^$' -bench Recovery -benchtime 5x
func BenchmarkRecovery(b *testing.B) {
	for _, n := range []int{5, 9} {
		opts := func(i int, o *Options) { o.Interval, o.WaitTimeout = DefaultInterval, 3*DefaultInterval }
		b.Run(fmt.Sprintf("restart-all/%d", n), func(b *testing.B) {
			var took []time.Duration
			var dials []float64
			for b.Loop() {
				c := newCluster(b, n, opts).start()
				settled(b, c.nodes)
				for _, m := range c.nodes {
					m.abort()
				}
				t0 := time.Now()
				done := make(chan struct{}, n)
				for i := range c.nodes {
					go func() {
						defer func() { done <- struct{}{} }()
						restartAborted(b, c, i)
					}()
				}
				for range n {
					<-done
				}
				settled(b, c.nodes)
				took = append(took, time.Since(t0))
				dials = append(dials, meanDials(c.nodes))
				c.stopAll()
			}
			reportRecovery(b, took, dials)
		})
		b.Run(fmt.Sprintf("links-down-2s/%d", n), func(b *testing.B) {
			var took []time.Duration
			var dials []float64
			for b.Loop() {
				mc := newMesh(b, n, opts)
				mc.start()
				settled(b, mc.nodes)
				before := meanDials(mc.nodes)
				all := make([]int, n)
				for i := range all {
					all[i] = i
				}
				for i := range n {
					mc.partition([]int{i}, slices.Delete(slices.Clone(all), i, i+1))
				}
				time.Sleep(2 * time.Second) // the fault, not a synchronisation
				t0 := time.Now()
				mc.heal()
				settled(b, mc.nodes)
				took = append(took, time.Since(t0))
				dials = append(dials, meanDials(mc.nodes)-before)
				mc.stopAll()
			}
			reportRecovery(b, took, dials)
		})
	}
}

// restartAborted starts node i again, a new process on the same port and
// with the same options, after abort.
func restartAborted(b *testing.B, c *testCluster, i int) {
	addr := c.lns[i].Addr().String()
	var ln net.Listener
	var err error
	waitFor(b, "port free again", func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	c.lns[i] = ln
	c.opts[i].Listener = ln
	c.nodes[i] = c.build(i)
	if err := c.nodes[i].Start(); err != nil {
		b.Error(err)
	}
}

// settled waits until every node names the same master, one node is
// master, and every node sees every other live.
func settled(b *testing.B, nodes []*Msc) {
	b.Helper()
	waitFor(b, "settled", func() bool {
		masters, names := 0, map[string]bool{}
		for _, m := range nodes {
			st := m.Status()
			live := liveCount(st)
			if live != len(nodes)-1 {
				return false
			}
			if st.IsMaster {
				masters++
			}
			names[st.Master] = true
		}
		return masters == 1 && len(names) == 1
	})
}

func meanDials(nodes []*Msc) float64 {
	var n uint64
	for _, m := range nodes {
		n += m.Status().Dials
	}
	return float64(n) / float64(len(nodes))
}

func reportRecovery(b *testing.B, took []time.Duration, dials []float64) {
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/float64(time.Millisecond), "settle-ms-median")
	b.ReportMetric(float64(took[len(took)-1])/float64(time.Millisecond), "settle-ms-max")
	b.ReportMetric(slices.Max(dials), "dials/node-max")
}
