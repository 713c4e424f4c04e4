package msc

import (
	"errors"
	"testing"
)

func TestHealthy(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	m, _ := New(o)
	if err := m.Healthy(); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("before Start: %v", err)
	}
	m.Start()
	if err := m.Healthy(); err != nil {
		t.Fatalf("lone node: %v", err)
	}
	m.Stop()
	if err := m.Healthy(); !errors.Is(err, ErrUnhealthy) || !errors.Is(err, ErrStopped) {
		t.Fatalf("after Stop: %v", err)
	}

	c := newCluster(t, 3, func(i int, o *Options) { o.Quorum = 2 }).start()
	c.waitMaster(c.nodes[0])
	waitFor(t, "healthy", func() bool { return c.nodes[0].Healthy() == nil })
	c.nodes[1].Stop()
	c.nodes[2].Stop()
	waitFor(t, "no quorum", func() bool { return errors.Is(c.nodes[0].Healthy(), ErrUnhealthy) })
	waitFor(t, "steps down without quorum", func() bool { return !c.nodes[0].IsMaster() })
}
