package msc

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUpdateSendsAtOnce: Update sends a heartbeat to the peers at once.
// With an Interval of 1s, Update is called just after a periodic
// heartbeat arrived; the next one arrives within Interval/2, where the
// next periodic one is about an Interval away.
func TestUpdateSendsAtOnce(t *testing.T) {
	const interval = time.Second
	c := newCluster(t, 2, func(i int, o *Options) {
		o.Interval, o.WaitTimeout = interval, 3*interval
		o.Keys = []string{"k"}
	}).start()
	c.waitMaster(c.nodes[0])
	n0, n1 := c.nodes[0], c.nodes[1]
	// A periodic heartbeat has just arrived: a frame after half an
	// Interval with none (node 1 hears only node 0). Counting what node 0
	// sent does not do: a frame on the connection that one connection per
	// pair closes may never be read.
	got := n1.Status().FramesReceived
	last := time.Now()
	waitFor(t, "a periodic heartbeat", func() bool {
		now := n1.Status().FramesReceived
		if now == got {
			return false
		}
		quiet := time.Since(last) >= interval/2
		got, last = now, time.Now()
		return quiet
	})
	t0 := time.Now()
	n0.Update("k")
	waitFor(t, "the heartbeat of Update", func() bool { return n1.Status().FramesReceived > got })
	d := time.Since(t0)
	t.Logf("the heartbeat of Update arrived after %v", d)
	if d > interval/2 {
		t.Fatalf("the heartbeat of Update arrived after %v: not sent at once (Interval %v)", d, interval)
	}
	if !c.agreed(n0) || !n0.IsMasterByKey("k") || n1.IsMasterByKey("k") {
		t.Fatalf("Update changed the election:\n%s", c.describe())
	}
}

// TestUpdateReportsKeysNotHeld: Update re-elects every key whatever its
// arguments; it returns one error wrapping ErrUnknownKey that names the
// keys this node does not hold, not those it holds nor "" (the global
// mastership), before Start too. After Stop it returns ErrStopped.
// Nothing goes to OnError.
func TestUpdateReportsKeysNotHeld(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	o.Keys = []string{"held"}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	errs := watchErrors(m)
	if err := m.Update("before-start"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Update before Start: %v", err)
	}
	if err := m.Update("held", ""); err != nil {
		t.Fatalf("Update(held) before Start: %v", err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	for _, keys := range [][]string{nil, {"held"}, {""}} {
		if err := m.Update(keys...); err != nil {
			t.Fatalf("Update(%q): %v", keys, err)
		}
	}
	err = m.Update("held", "typo", "gone")
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"typo" "gone"`) ||
		strings.Contains(err.Error(), `"held"`) {
		t.Fatalf("Update: %v, want ErrUnknownKey naming typo and gone only", err)
	}
	if !m.IsMasterByKey("held") || !slices.Equal(m.Keys(), []string{"held"}) {
		t.Fatal("Update changed the keys")
	}
	flushCallbacks(t, m)
	if s := errs.String(); s != "" {
		t.Fatalf("reported to OnError:%s", s)
	}
	m.Stop()
	if err := m.Update("held"); !errors.Is(err, ErrStopped) {
		t.Fatalf("Update after Stop: %v", err)
	}
}
