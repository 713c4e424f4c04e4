package msc

import (
	"fmt"
	"testing"
)

func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("queue-%04d", i)
	}
	return keys
}

// owners returns, if every running node agrees on one master for every
// key and exactly that node reports IsMasterByKey, the master of each key.
func owners(c *testCluster, keys []string) (map[string]string, bool) {
	run := c.running()
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		want := ""
		masters := 0
		for _, m := range run {
			uid, ok := m.MasterByKey(k)
			if !ok || want != "" && uid != want {
				return nil, false
			}
			want = uid
			if m.IsMasterByKey(k) {
				masters++
				if m.UID() != uid {
					return nil, false
				}
			}
		}
		if masters != 1 {
			return nil, false
		}
		out[k] = want
	}
	return out, true
}

func waitOwners(t *testing.T, c *testCluster, keys []string, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	var got map[string]string
	waitFor(t, "one agreed master per key", func() bool {
		var ok bool
		got, ok = owners(c, keys)
		return ok && (cond == nil || cond(got))
	})
	return got
}

func TestBalanceSpreadsAndMovesMinimally(t *testing.T) {
	const n = 5
	keys := manyKeys(1000)
	c := newCluster(t, n, func(i int, o *Options) {
		o.Keys = keys
		o.Balance = true
	}).start()
	c.waitMaster(c.nodes[0]) // the global master is still the oldest
	before := waitOwners(t, c, keys, func(o map[string]string) bool {
		live := 0
		for _, m := range c.nodes {
			for _, p := range m.Status().Peers {
				if p.Live {
					live++
				}
			}
		}
		return live == n*(n-1)
	})
	count := map[string]int{}
	for _, uid := range before {
		count[uid]++
	}
	avg := float64(len(keys)) / n
	for uid, k := range count {
		t.Logf("%s masters %d keys (%.2f× average)", uid, k, float64(k)/avg)
		if float64(k) > 1.25*avg {
			t.Errorf("%s masters %d keys, more than 1.25× the average %.0f", uid, k, avg)
		}
	}
	if len(count) != n {
		t.Fatalf("only %d nodes master any key", len(count))
	}
	// MasterKeys agrees with IsMasterByKey (polled: on a loaded machine a
	// node starved past WaitTimeout−M/2 re-joins and masters nothing for
	// a moment, between the two reads).
	waitFor(t, "MasterKeys of node2 as its IsMasterByKey", func() bool {
		n := 0
		for _, k := range keys {
			if c.nodes[2].IsMasterByKey(k) {
				n++
			}
		}
		return len(c.nodes[2].MasterKeys()) == n && n == count["node2"]
	})

	// Node 2 leaves: exactly its keys move.
	leaver := c.nodes[2]
	leaver.Stop()
	after := waitOwners(t, c, keys, func(o map[string]string) bool {
		for _, uid := range o {
			if uid == "node2" {
				return false
			}
		}
		return true
	})
	moved := 0
	for _, k := range keys {
		if before[k] != after[k] {
			moved++
			if before[k] != "node2" {
				t.Errorf("key %s moved from %s to %s, though %s stayed", k, before[k], after[k], before[k])
			}
		}
	}
	if moved != count["node2"] {
		t.Fatalf("%d keys moved, node2 mastered %d", moved, count["node2"])
	}

	// A new node joins: it takes about 1/N of the keys, and no other key
	// moves.
	joiner := c.restart(2, func(o *Options) { o.UID = "joiner" })
	again := waitOwners(t, c, keys, func(o map[string]string) bool {
		for _, uid := range o {
			if uid == "joiner" {
				return len(c.running()) == n
			}
		}
		return false
	})
	taken := 0
	for _, k := range keys {
		if after[k] != again[k] {
			taken++
			if again[k] != joiner.UID() {
				t.Errorf("key %s moved from %s to %s on a join", k, after[k], again[k])
			}
		}
	}
	t.Logf("leave moved %d keys; join took %d keys", moved, taken)
	if float64(taken) > 1.25*avg || float64(taken) < 0.75*avg {
		t.Errorf("joiner took %d keys, far from 1/N = %.0f", taken, avg)
	}
}

func TestBalanceRespectsKeyHolders(t *testing.T) {
	// Node 1 lacks key "only0": node 0 must master it whatever the weights.
	c := newCluster(t, 2, func(i int, o *Options) {
		o.Balance = true
		o.Keys = []string{"shared"}
		if i == 0 {
			o.Keys = append(o.Keys, "only0")
		}
	}).start()
	waitFor(t, "only0 on node0", func() bool {
		uid, ok := c.nodes[0].MasterByKey("only0")
		_, has := c.nodes[1].MasterByKey("only0")
		_, ok2 := owners(c, []string{"shared"})
		return ok && uid == "node0" && c.nodes[0].IsMasterByKey("only0") && !has && ok2
	})
}

// BenchmarkElectBalanced is a full election with 9 live peers holding the
// same 10,000 keys, with rendezvous hashing.
func BenchmarkElectBalanced(b *testing.B) {
	for _, balance := range []bool{true, false} {
		b.Run(fmt.Sprintf("balance=%v", balance), func(b *testing.B) {
			c, now := newCoreBench(b, 9, manyKeys(10000), balance, func(i int) int64 { return base.UnixNano() + int64(i%2) }, base.Add(1))
			if n := c.LiveCount(); n != 9 {
				b.Fatalf("%d live peers, want 9", n)
			}
			mastered := 0
			snap := c.Snap()
			for i := range snap.Len() {
				if snap.At(i).Master {
					mastered++
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				c.Elect(now)
			}
			b.ReportMetric(float64(mastered), "keys-mastered-by-self")
		})
	}
}
