package msc

import (
	"fmt"
	"testing"
	"time"
)

// TestQuorumKeyPartition: with Quorum 2 of 3, the master of key k (node 0,
// the oldest) is cut off from the two others, which hold k too, then the
// partition heals, 4 times; each node also holds a key of its own. The key
// meter runs throughout.
//
//   - While partitioned: node 0 lets k go before node 1 takes it; never two
//     masters of a key (asserted: 0).
//   - On heal: node 0 takes k back. Today node 1 and node 0 are sometimes
//     both master of k for a few hundred µs (about 1 heal in 10): on the
//     new connection node 0 first reads node 1's short heartbeat, which
//     makes node 1 live again with the key claims and view node 0 had
//     from before the partition (the short form carries a newer key-set
//     version, not the set; seen on every heal), and node 0 elects on
//     them; node 1's fresh claim of k comes in the full heartbeat right
//     after. The global mastership, whose claim travels
//     in the short heartbeat, is not affected. Reported in issue 9 (its
//     defect 1, per key); until the election core is fixed the test
//     asserts that overlap stays below an Interval per heal, and logs it.
//     Once fixed, make that bound 0.
func TestQuorumKeyPartition(t *testing.T) {
	const reps = 4
	keys := []string{"k", "own0", "own1", "own2"}
	mc := newMesh(t, 3, func(i int, o *Options) {
		o.Quorum = 2
		o.Keys = []string{"k", fmt.Sprint("own", i)}
	})
	mc.start()
	mc.waitSides(all3)
	want := func(uid string) map[string]string {
		return map[string]string{"k": uid, "own0": "node0", "own1": "node1", "own2": "node2"}
	}
	settleKeys(t, mc.nodes, "node0 master of k", want("node0"))
	var healed time.Duration
	for range reps {
		meter := meterKeys(mc.nodes, keys...)
		t0 := time.Now()
		mc.partition([]int{0}, []int{1, 2})
		// Node 0 keeps its own key only while it has a quorum.
		waitFor(t, "node1 master of k", func() bool { return mc.nodes[1].IsMasterByKey("k") })
		if mc.nodes[0].IsMasterByKey("k") || mc.nodes[0].IsMasterByKey("own0") {
			t.Fatal("node0 master of a key without quorum")
		}
		moved := time.Since(t0)
		meter.check(t)

		meter = meterKeys(mc.nodes, keys...)
		mc.heal()
		mc.waitSides(all3)
		settleKeys(t, mc.nodes, "node0 master of k again", want("node0"))
		bad := meter.result()
		meter.mu.Lock()
		healed += meter.overlap["k"]
		meter.mu.Unlock()
		t.Logf("k moved to the majority in %v; heal: %s", moved.Round(time.Millisecond), bad)
	}
	t.Logf("on %d heals, two masters of k for %v in all", reps, healed)
	if healed > 0 {
		t.Fatalf("on %d heals, two masters of k for %v", reps, healed)
	}
}
