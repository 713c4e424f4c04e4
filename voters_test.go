package msc

import (
	"errors"
	"testing"
	"time"
)

// TestVotersOption: Quorum must be a majority of Voters; the list is
// checked and copied.
func TestVotersOption(t *testing.T) {
	for _, tc := range []struct {
		voters []string
		quorum int
		want   error
	}{
		{[]string{"a", "b", "c"}, 2, nil},
		{[]string{"a", "b", "c"}, 3, nil},
		{[]string{"a", "b", "c"}, 0, nil}, // Voters without Quorum: no votes counted yet
		{[]string{"a", "b", "c"}, 1, ErrQuorum},
		{[]string{"a", "b", "c", "d"}, 2, ErrQuorum},
		{[]string{"a", "b", "c"}, 4, ErrQuorum},
		{[]string{"a", "a", "b"}, 2, ErrInvalidOption},
		{[]string{"a", "", "b"}, 2, ErrInvalidOption},
	} {
		o := testOptions(0)
		o.Voters, o.Quorum = tc.voters, tc.quorum
		m, err := New(o)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Voters %q Quorum %d: err %v, want %v", tc.voters, tc.quorum, err, tc.want)
			continue
		}
		if m != nil {
			tc.voters[0] = "changed"
			if m.cfg.Voters[0] == "changed" {
				t.Errorf("New kept the caller's Voters slice")
			}
		}
	}
}

// TestQuorumSurgeReported: Quorum 2 set for three nodes, and a fourth
// process comes (a surge pod in a rolling update): without Voters, two
// disjoint pairs could each elect a master. Every node reports it.
func TestQuorumSurgeReported(t *testing.T) {
	c := newCluster(t, 4, func(i int, o *Options) { o.Quorum = 2 })
	got := make([]chan error, 4)
	for i, m := range c.nodes {
		ch := make(chan error, 16)
		got[i] = ch
		m.OnError(func(err error) {
			if errors.Is(err, ErrQuorum) {
				select {
				case ch <- err:
				default:
				}
			}
		})
	}
	c.start()
	for i := range c.nodes {
		select {
		case err := <-got[i]:
			t.Logf("node%d: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("node%d reported no ErrQuorum with 4 voters and Quorum 2", i)
		}
	}
	if n := c.nodes[0].met.errs[causeIndex(t, "quorum")].Load(); n == 0 {
		t.Errorf("msc_errors_total{cause=\"quorum\"} is 0")
	}
}

// causeIndex returns the position of a cause in msc_errors_total.
func causeIndex(t *testing.T, name string) int {
	t.Helper()
	for i := range errCauses {
		if causeName(i) == name {
			return i
		}
	}
	t.Fatalf("no cause %q", name)
	return 0
}

// TestVotersSurgePartition: three voters and a surge process, Quorum 2,
// partitioned 2|2 by proxies that hold the bytes back. With Voters, only
// the side with two voters elects; never two masters, and no ErrQuorum.
func TestVotersSurgePartition(t *testing.T) {
	voters := []string{"node0", "node1", "node2"}
	mc := newMesh(t, 4, func(i int, o *Options) { o.Quorum, o.Voters = 2, voters })
	var quorumErrs []error
	for _, m := range mc.nodes {
		m.OnError(func(err error) {
			if errors.Is(err, ErrQuorum) {
				quorumErrs = append(quorumErrs, err)
			}
		})
	}
	mc.start()
	all := []int{0, 1, 2, 3}
	mc.waitSides(all)
	meter := meterOverlap(func() []*Msc { return mc.nodes })
	a, b := []int{0, 3}, []int{1, 2} // the master and the surge | two voters
	mc.partition(a, b)
	waitFor(t, "the side with two voters elects", func() bool { return mc.nodes[1].IsMaster() })
	hold := time.Now()
	waitFor(t, "a partition of a second", func() bool { return time.Since(hold) > time.Second })
	for _, i := range a {
		if mc.nodes[i].IsMaster() {
			t.Errorf("node%d, on the side with one voter, is master", i)
		}
	}
	mc.heal()
	mc.waitSides(all)
	overlap, who := meter.result()
	if overlap > 0 {
		t.Fatalf("two masters at once for %v (%s)", overlap, who)
	}
	mc.stopAll()
	if len(quorumErrs) > 0 {
		t.Errorf("ErrQuorum reported with Voters set: %v", quorumErrs[0])
	}
}
