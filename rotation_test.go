package msc

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestKeyRotation rotates a 3-node cluster's key at run time: every node
// accepts the new key, then each seals with it, then the old one is
// dropped. After each node's change, a new node configured as it is must
// connect with each of the others (one step behind, or level); node 0
// stays the one master throughout, and no frame fails authentication.
func TestKeyRotation(t *testing.T) {
	mc := newMesh(t, 3, func(i int, o *Options) { o.Key = "old key" })
	sees := func(m *Msc, uid string) bool {
		for _, p := range m.Status().Peers {
			if p.UID == uid && p.Live {
				return true
			}
		}
		return false
	}
	var mu sync.Mutex
	var authErrs []error
	for _, m := range mc.nodes {
		m.OnError(func(err error) {
			if errors.Is(err, ErrAuth) {
				mu.Lock()
				authErrs = append(authErrs, err)
				mu.Unlock()
			}
		})
	}
	mc.start()
	mc.waitSides(all3)
	// Both connections of every pair up: from here on, closing one of
	// them never leaves a peer without a connection.
	bothConns := func() bool {
		for _, m := range mc.nodes {
			st := m.Status()
			if len(st.Peers) != 2 {
				return false
			}
			for _, p := range st.Peers {
				if !p.Live || p.Conns < 2 {
					return false
				}
			}
		}
		return mc.sidesHold(all3) == ""
	}
	waitFor(t, "both connections of every pair", bothConns)
	logs := make([]changeLog, 3)
	for i, m := range mc.nodes {
		logs[i].watch(m)
	}
	meter := meterOverlap(func() []*Msc { return mc.nodes })

	// probe starts a node configured as node i now is (key, accepted
	// keys), that dials node j; both must count each other live: the
	// handshake between the two configurations works.
	probe := func(key string, accept []string, j int) {
		t.Helper()
		o := testOptions(9)
		o.Key, o.AcceptKeys, o.UID = key, accept, "probe"
		o.Listener = listen(t)
		p, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		p.AddServer("j", ServerConfig{Port: port(mc.lns[j])})
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		waitFor(t, fmt.Sprintf("probe and node%d see each other", j), func() bool {
			return sees(p, mc.nodes[j].UID()) && sees(mc.nodes[j], "probe")
		})
	}
	steps := []struct {
		name   string
		key    string
		accept []string
	}{
		{"accept the new key", "old key", []string{"new key"}},
		{"seal with the new key", "new key", []string{"old key"}},
		{"drop the old key", "new key", nil},
	}
	for _, st := range steps {
		for i, m := range mc.nodes {
			if err := m.SetKey(st.key, st.accept...); err != nil {
				t.Fatal(err)
			}
			// Node i is one step ahead of the nodes after it, and level
			// with those before: it must talk with both.
			for j := range mc.nodes {
				if j != i {
					probe(st.key, st.accept, j)
				}
			}
		}
		if bad := mc.sidesHold(all3); bad != "" {
			t.Fatalf("after %q: %s", st.name, bad)
		}
	}
	overlap, who := meter.result()
	if overlap > 0 {
		t.Fatalf("two masters (%s) for %v during the rotation", who, overlap)
	}
	mu.Lock()
	if len(authErrs) > 0 {
		t.Fatalf("authentication failed during the rotation: %v", authErrs)
	}
	mu.Unlock()
	if g := logs[0].gains(); g != 0 {
		t.Fatalf("node0 lost and regained mastership %d times during the rotation", g)
	}
	for i := 1; i < 3; i++ {
		if g := logs[i].gains(); g != 0 {
			t.Fatalf("node%d became master during the rotation", i)
		}
	}
	// A node with only the old key is now refused.
	o := testOptions(9)
	o.Key, o.Listener = "old key", listen(t)
	stale, _ := New(o)
	stale.AddServer("0", ServerConfig{Port: port(mc.lns[0])})
	stale.Start()
	defer stale.Stop()
	waitFor(t, "old key refused", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(authErrs) > 0
	})
	if err := mc.nodes[0].SetKey(""); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("SetKey(\"\"): %v", err)
	}
}
