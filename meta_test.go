package msc

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

// TestMeta: each node's metadata reaches the peers; MasterMeta gives the
// master's, globally and per key, also on the master itself; SetMeta
// changes it at run time and the peers see it within an Interval or so;
// too much metadata is refused.
func TestMeta(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) {
		o.Meta = map[string]string{"http": fmt.Sprintf("10.0.0.%d:8080", i)}
		o.Keys = []string{"k"}
		if i == 0 {
			o.Keys = nil // node1 masters k
		}
	}).start()
	c.waitMaster(c.nodes[0])
	for i, m := range c.nodes {
		waitFor(t, fmt.Sprintf("node%d knows the master's metadata", i), func() bool {
			meta, ok := m.MasterMeta("")
			return ok && meta["http"] == "10.0.0.0:8080"
		})
	}
	waitFor(t, "node2 knows the metadata of k's master", func() bool {
		meta, ok := c.nodes[2].MasterMeta("k")
		return ok && meta["http"] == "10.0.0.1:8080"
	})
	if _, ok := c.nodes[0].MasterMeta("k"); ok {
		t.Fatal("MasterMeta of a key this node does not hold")
	}
	// The caller's map is copied both ways.
	meta, _ := c.nodes[1].MasterMeta("")
	meta["http"] = "changed"
	if again, _ := c.nodes[1].MasterMeta(""); again["http"] != "10.0.0.0:8080" {
		t.Fatal("MasterMeta returned the node's own map")
	}
	want := map[string]string{"http": "10.0.0.9:9090", "zone": "b"}
	t0 := time.Now()
	if err := c.nodes[0].SetMeta(want); err != nil {
		t.Fatal(err)
	}
	want["zone"] = "changed after SetMeta"
	waitFor(t, "peers see the new metadata", func() bool {
		for _, m := range c.nodes[1:] {
			got, _ := m.MasterMeta("")
			if !maps.Equal(got, map[string]string{"http": "10.0.0.9:9090", "zone": "b"}) {
				return false
			}
		}
		return true
	})
	took := time.Since(t0)
	t.Logf("SetMeta seen by every peer after %v", took)
	if took > testInterval+testWait {
		t.Fatalf("SetMeta took %v to reach the peers", took)
	}
	if st := c.nodes[2].Status(); st.Peers[0].Meta["zone"] != "b" || st.Meta["http"] != "10.0.0.2:8080" {
		t.Fatalf("Status: own %v, peers %+v", st.Meta, st.Peers)
	}
	big := map[string]string{"x": strings.Repeat("y", MaxMetaSize)}
	if err := c.nodes[0].SetMeta(big); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("SetMeta of %d bytes: %v", MaxMetaSize, err)
	}
	if _, err := New(Options{Key: "k", Meta: big}); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("New with Meta of %d bytes: %v", MaxMetaSize, err)
	}
}
